"""Build a FAKE CryptoPro vendor archive around the test double.

The result looks like the operator's `linux-amd64_deb.tgz` from the role's
point of view: a top directory `linux-amd64_deb/` with `install.sh`,
`uninstall.sh` and a real Debian package `lsb-cprocsp-base_<version>_all.deb`
(built with dpkg-deb) that puts the double's `csptest`, `certmgr`, `cryptcp`
and `cpconfig` at CryptoPro's paths. Like the vendor's script, install.sh
removes an installed CSP before installing; every run of it is logged to
/var/log/cprocsp-double-install.log so a test can count reinstalls.

    python -m tests.doubles.cryptopro.build_archive OUT.tgz [--version V]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = "lsb-cprocsp-base"
TOOLS = {
    "opt/cprocsp/bin/amd64/csptest": "csptest",
    "opt/cprocsp/bin/amd64/certmgr": "certmgr",
    "opt/cprocsp/bin/amd64/cryptcp": "cryptcp",
    "opt/cprocsp/sbin/amd64/cpconfig": "cpconfig",
    "opt/cprocsp/bin/amd64/cpverify": "cpverify",
}
OPENSSL_CONF = """\
# OpenSSL configuration of the CryptoPro TEST DOUBLE (GOST engine).
openssl_conf = openssl_def
[openssl_def]
engines = engine_section
oid_section = esia_oids
[esia_oids]
INNLE = 1.2.643.100.4
[engine_section]
gost = gost_section
[gost_section]
engine_id = gost
default_algorithms = ALL
"""
INSTALL_SH = """\
#!/bin/sh
# FAKE CryptoPro install.sh (test double): like the vendor's, it removes an
# installed CSP first, then installs the packages of this directory.
set -e
cd "$(dirname "$0")"
echo "install.sh $* $(date -u +%FT%TZ)" >> /var/log/cprocsp-double-install.log
case "$1" in kc1|kc2) ;; *) echo "usage: install.sh kc1|kc2" >&2; exit 2 ;; esac
if dpkg-query -W {package} >/dev/null 2>&1; then dpkg --purge {package} >/dev/null; fi
{fault}dpkg -i ./*.deb >/dev/null
echo "CryptoPro CSP (TEST DOUBLE) installed."
"""
# A broken archive for fault tests: like a real failed install, the old CSP is already gone.
FAULT = 'echo "install.sh: dpkg: error processing archive (TEST DOUBLE fault)" >&2; exit 1\n'

UNINSTALL_SH = """\
#!/bin/sh
# FAKE CryptoPro uninstall.sh (test double).
dpkg --purge {package}
"""


def build_deb(version: str, out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text(
            f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\nMaintainer: esia-onboard tests\n"
            "Description: TEST DOUBLE of CryptoPro CSP command-line tools (not CryptoPro)\n"
        )
        lib = root / "opt/cprocsp/lib/double"
        lib.mkdir(parents=True)
        (lib / "cprocsp_double.py").write_bytes((HERE / "cprocsp_double.py").read_bytes())
        (lib / "openssl-gost.cnf").write_text(OPENSSL_CONF)
        for path, tool in TOOLS.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(
                f"#!/bin/sh\n# TEST DOUBLE of CryptoPro {tool}\n"
                f'exec python3 /opt/cprocsp/lib/double/cprocsp_double.py {tool} "$@"\n'
            )
            target.chmod(0o755)
        # CryptoPro's state directories: per-user key and store directories
        # below world-writable sticky parents, the cpsd gamma directories.
        for directory, mode in (("keys", 0o1777), ("users", 0o1777), ("dsrf/db1", 0o755), ("dsrf/db2", 0o755)):
            path = root / "var/opt/cprocsp" / directory
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(mode)
        calls = root / "var/log/cprocsp-double"
        calls.mkdir(parents=True)
        calls.chmod(0o1777)
        deb = out_dir / f"{PACKAGE}_{version}_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True
        )
        return deb


def build_archive(out: Path, version: str = "5.0.99999-1", broken: bool = False) -> Path:
    """Write the fake linux-amd64_deb.tgz to `out` and return it (`broken`: its install.sh
    removes the installed CSP and then fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        deb = build_deb(version, Path(tmp))
        with tarfile.open(out, "w:gz") as archive:
            for name, text in (("install.sh", INSTALL_SH), ("uninstall.sh", UNINSTALL_SH)):
                data = text.format(package=PACKAGE, fault=FAULT if broken else "").encode()
                info = tarfile.TarInfo(f"linux-amd64_deb/{name}")
                info.size, info.mode = len(data), 0o755
                archive.addfile(info, io.BytesIO(data))
            archive.add(deb, arcname=f"linux-amd64_deb/{deb.name}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", default="5.0.99999-1")
    args = parser.parse_args()
    print(build_archive(args.out, args.version))


if __name__ == "__main__":
    main()
