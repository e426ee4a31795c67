"""Make test certificates with the real `openssl` CLI (and the GOST engine for GOST keys).

For tests of every role and filter: nothing here computes a certificate field
in Python, so tests can compare what our code reads against what OpenSSL made
and prints. The GOST engine is enabled through a private OPENSSL_CONF written
into the caller's directory; the system-wide configuration is never touched.

    from tests.certs import make_cert
    cert = make_cert(tmp_path, "gost2012_256", subject="/C=RU/O=MIAC/CN=esia_77")
    cert.pem, cert.der, cert.key_path, cert.der_path

    expired = make_cert(tmp_path, "gost2012_256", not_before=datetime(2023, 1, 1, tzinfo=UTC),
                        not_after=datetime(2024, 1, 1, tzinfo=UTC))
    tls = make_cert(tmp_path, "rsa", subject="/CN=zapis.miac77.ru", san=["zapis.miac77.ru", "77.2dr.ru"])
    leaf = make_cert(tmp_path, "ec", issuer=make_cert(tmp_path, "rsa", ca=True, name="ca"))
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

KeyAlgorithm = Literal["gost2012_256", "gost2012_512", "gost2001", "rsa", "ec", "ed25519"]

# The digest each key type signs with; None = the key type has its own (Ed25519).
_DIGEST: dict[str, str | None] = {
    "gost2012_256": "md_gost12_256",
    "gost2012_512": "md_gost12_512",
    "gost2001": "md_gost94",
    "rsa": "sha256",
    "ec": "sha256",
    "ed25519": None,
}
_GOST_KEYS = frozenset({"gost2012_256", "gost2012_512", "gost2001"})

# Engine section as in shared/notes/lab.md, plus empty [req]/[ca] sections so
# `openssl req -config` and `openssl ca -config` can use the same file.
_OPENSSL_CONF = """\
openssl_conf = openssl_def
{oid_section}

[openssl_def]
engines = engine_section

[engine_section]
gost = gost_section

[gost_section]
engine_id = gost
default_algorithms = ALL

[req]
distinguished_name = req_dn
prompt = no

[req_dn]
"""
# OpenSSL 3.0 does not know INNLE (1.2.643.100.4, INN of a legal entity) and
# silently drops it from -subj; 3.1+ knows it and refuses to define it again.
_INNLE_OID_SECTION = "oid_section = new_oids\n\n[new_oids]\nINNLE = 1.2.643.100.4\n"

_CA_CONF = """\
[ca]
default_ca = test_ca

[test_ca]
dir = {directory}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
policy = policy_any
unique_subject = no
# Subject attributes not named in the policy are dropped by `openssl ca`.
preserve = yes
copy_extensions = none
default_md = default

[policy_any]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = optional
emailAddress = optional
street = optional
title = optional
givenName = optional
surname = optional
OGRN = optional
OGRNIP = optional
INN = optional
SNILS = optional
INNLE = optional
"""


class OpenSSLError(RuntimeError):
    """An openssl command failed; the message carries its command line and stderr."""


@dataclass(frozen=True)
class CertFiles:
    """A key and its certificate on disk, in PEM and DER."""

    key_algorithm: str
    key_path: Path
    pem_path: Path
    der_path: Path

    @property
    def pem(self) -> str:
        return self.pem_path.read_text(encoding="ascii")

    @property
    def der(self) -> bytes:
        return self.der_path.read_bytes()

    @property
    def key_pem(self) -> str:
        return self.key_path.read_text(encoding="ascii")


def openssl_binary() -> str:
    path = shutil.which("openssl")
    if path is None:
        raise OpenSSLError("the openssl command is not installed")
    return path


@functools.cache
def _openssl_conf_text() -> str:
    version = subprocess.run(
        [openssl_binary(), "version"], capture_output=True, text=True, check=True, timeout=30,
        env={**os.environ, "OPENSSL_CONF": os.devnull},
    ).stdout  # fmt: skip
    needs_innle = version.startswith("OpenSSL 3.0.") or version.startswith("OpenSSL 1.")
    return _OPENSSL_CONF.format(oid_section=_INNLE_OID_SECTION if needs_innle else "")


def gost_openssl_conf(directory: Path) -> Path:
    """Write (once) the private OPENSSL_CONF enabling the GOST engine into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "openssl-gost.cnf"
    if not conf.exists():
        conf.write_text(_openssl_conf_text(), encoding="ascii")
    return conf


def gost_openssl_env(directory: Path) -> dict[str, str]:
    """os.environ plus OPENSSL_CONF pointing at the private GOST-engine configuration."""
    return {**os.environ, "OPENSSL_CONF": str(gost_openssl_conf(directory))}


def openssl(*args: str | Path, directory: Path, stdin: bytes | None = None) -> bytes:
    """Run `openssl ARGS` with the GOST engine configuration of `directory`; return stdout."""
    command = [openssl_binary(), *map(str, args)]
    result = subprocess.run(
        command, input=stdin, capture_output=True, env=gost_openssl_env(directory), check=False, timeout=60
    )
    if result.returncode != 0:
        raise OpenSSLError(
            f"{' '.join(command)} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
        )
    return result.stdout


def gost_engine_available(directory: Path) -> bool:
    """True when openssl can generate a GOST R 34.10-2012 key (engine installed and loadable)."""
    try:
        openssl("genpkey", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A", directory=directory)
    except OpenSSLError:
        return False
    return True


def gost_workdir(tmp_path_factory, name: str) -> Path:
    """A scratch directory for openssl with the GOST engine; a missing engine
    fails the test (it is installed by `make setup`), it never skips."""
    directory = tmp_path_factory.mktemp(name)
    assert gost_engine_available(directory), (
        "the OpenSSL GOST engine is missing: apt-get install libengine-gost-openssl"
    )
    return directory


def make_key(directory: Path, key_algorithm: KeyAlgorithm, name: str, *, paramset: str = "A",
             rsa_bits: int = 2048, ec_curve: str = "prime256v1") -> Path:  # fmt: skip
    """Generate a private key (PEM, unencrypted) at directory/name.key."""
    key_path = directory / f"{name}.key"
    options: list[str]
    if key_algorithm in _GOST_KEYS:
        options = ["-algorithm", key_algorithm, "-pkeyopt", f"paramset:{paramset}"]
    elif key_algorithm == "rsa":
        options = ["-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{rsa_bits}"]
    elif key_algorithm == "ec":
        options = ["-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{ec_curve}"]
    elif key_algorithm == "ed25519":
        options = ["-algorithm", "ED25519"]
    else:
        raise ValueError(f"unknown key algorithm {key_algorithm!r}")
    openssl("genpkey", *options, "-out", key_path, directory=directory)
    key_path.chmod(0o600)
    return key_path


def _extensions(san: list[str], ca: bool) -> list[str]:
    lines = ["basicConstraints = critical, CA:TRUE" if ca else "basicConstraints = CA:FALSE"]
    lines.append("keyUsage = critical, keyCertSign, cRLSign" if ca else "keyUsage = critical, digitalSignature")
    if san:
        lines.append("subjectAltName = " + ", ".join(f"DNS:{name}" for name in san))
    lines.append("subjectKeyIdentifier = hash")
    return lines


def _asn1_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("give not_before/not_after as timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def make_cert(
    directory: Path,
    key_algorithm: KeyAlgorithm = "gost2012_256",
    *,
    subject: str = "/C=RU/O=Test MIAC/CN=esia-test",
    san: list[str] | None = None,
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    issuer: CertFiles | None = None,
    ca: bool = False,
    name: str | None = None,
    paramset: str = "A",
    rsa_bits: int = 2048,
    ec_curve: str = "prime256v1",
) -> CertFiles:
    """Make a key and a certificate with openssl; return their paths.

    Self-signed unless `issuer` (a CertFiles made with ca=True) is given. With
    `not_before`/`not_after` (aware datetimes, e.g. in the past for an expired
    certificate or in the future for a not-yet-valid one) or an issuer, the
    certificate is made by `openssl ca`; otherwise by `openssl req -x509 -days`.
    `subject` is in openssl's /K=V/ form; `san` lists DNS names.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or f"{key_algorithm}-{len(list(directory.glob('*.key'))) + 1}"
    key_path = make_key(directory, key_algorithm, name, paramset=paramset, rsa_bits=rsa_bits, ec_curve=ec_curve)
    pem_path, der_path = directory / f"{name}.pem", directory / f"{name}.der"
    # openssl 3.0's req has no -extfile: the extensions go into a per-certificate config.
    conf = directory / f"{name}.cnf"
    conf.write_text(
        _openssl_conf_text() + "\n[ext]\n" + "\n".join(_extensions(list(san or []), ca)) + "\n", encoding="ascii"
    )
    # The request is signed with the subject's key, the certificate with the signer's
    # (a GOST 2012/512 CA signs a 2012/256 key with Streebog-512).
    own_digest = _DIGEST[key_algorithm]
    digest_options = [f"-{own_digest}"] if own_digest else []
    signer_digest = _DIGEST[issuer.key_algorithm] if issuer else own_digest

    if issuer is None and not_before is None and not_after is None:
        openssl(
            "req", "-config", conf, "-utf8", "-new", "-x509", "-key", key_path, *digest_options, "-subj", subject,
            "-days", str(days), "-extensions", "ext", "-set_serial", _next_serial(directory),
            "-out", pem_path, directory=directory,
        )  # fmt: skip
    else:
        csr_path = directory / f"{name}.csr"
        openssl("req", "-config", conf, "-utf8", "-new", "-key", key_path, *digest_options, "-subj", subject,
                "-out", csr_path, directory=directory)  # fmt: skip
        start = not_before or datetime.now(UTC)
        end = not_after or datetime.fromtimestamp(start.timestamp() + days * 86400, UTC)
        ca_dir = directory / f"{name}.ca"
        ca_dir.mkdir(exist_ok=True)
        (ca_dir / "index.txt").write_text("", encoding="ascii")
        (ca_dir / "serial").write_text(_next_serial(directory).removeprefix("0x") + "\n", encoding="ascii")
        with conf.open("a", encoding="ascii") as stream:
            stream.write(_CA_CONF.format(directory=ca_dir))
        signer = (
            ["-cert", issuer.pem_path, "-keyfile", issuer.key_path] if issuer else ["-selfsign", "-keyfile", key_path]
        )
        openssl(
            "ca", "-batch", "-notext", "-utf8", "-config", conf, *signer, "-md", signer_digest or "default",
            "-startdate", _asn1_time(start), "-enddate", _asn1_time(end),
            "-extensions", "ext", "-in", csr_path, "-out", pem_path, directory=directory,
        )  # fmt: skip
    openssl("x509", "-in", pem_path, "-outform", "DER", "-out", der_path, directory=directory)
    return CertFiles(key_algorithm=key_algorithm, key_path=key_path, pem_path=pem_path, der_path=der_path)


def _next_serial(directory: Path) -> str:
    """A serial number unique within `directory` (a counter file), in openssl's 0x form."""
    counter = directory / ".serial-counter"
    value = int(counter.read_text(encoding="ascii")) + 1 if counter.exists() else 0x1001
    counter.write_text(str(value), encoding="ascii")
    return f"0x{value:06X}"


def openssl_x509_field(cert: CertFiles, *options: str) -> str:
    """What `openssl x509 -noout OPTIONS` prints for the certificate (for comparisons in tests)."""
    return openssl("x509", "-in", cert.pem_path, "-noout", *options, directory=cert.pem_path.parent).decode().strip()


def openssl_streebog256(path: Path) -> str:
    """Upper-case hex Streebog-256 of a file's bytes, as `openssl dgst -md_gost12_256 -r` computes it."""
    output = openssl("dgst", "-md_gost12_256", "-r", path, directory=path.parent).decode()
    return output.split()[0].upper()
