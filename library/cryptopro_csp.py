#!/usr/bin/python
"""Ansible module: CryptoPro CSP installed at the archive's version, its RNG headless, its licence read."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cryptopro_csp
short_description: Install CryptoPro CSP from the vendor archive, configure its RNG, read and set its licence
description:
  - Unpacks the vendor archive (C(linux-amd64_deb.tgz)) on the host and runs its C(install.sh) only when the
    installed version of I(version_package) differs from the archive's. Another version is installed only with
    I(allow_upgrade=true); an older one is always refused. When C(install.sh) fails, the previously installed
    archive (kept unpacked under I(install_dir)) is installed again, so the host keeps a working CSP, and the
    module fails saying so.
  - Makes the RNG headless the vendor's way - removes the interactive C(bio_tui) RNG
    (C(cpconfig -hardware rndm -del bio_tui)) and registers C(cpsd) with the gamma files
    C(/var/opt/cprocsp/dsrf/db1/kis_1) and C(db2/kis_1) (copy the vendor's gamma there with M(ansible.builtin.copy)).
  - Reads the licence (C(cpconfig -license -view)), sets I(license_serial) when another one is installed, and
    judges it - a Demo licence, or one expiring within I(license_min_days), is C(fail) in C(prod) and C(warn) in
    C(test).
  - C(cpconfig -license -set) takes the serial only on its command line (no other interface is documented), so
    the serial is on that one short command line once per host, never in the log of a run.
  - Supports check mode and diff mode.
version_added: "1.0.0"
author:
  - esia-onboard maintainers (@esia-onboard)
requirements:
  - Debian or Ubuntu (dpkg), tar, CryptoPro CSP's vendor archive for Linux (deb)
options:
  archive:
    description: Path of the vendor archive on the host.
    type: path
    required: true
  install_dir:
    description: Directory where the archive is unpacked, one subdirectory per archive content (SHA-256).
    type: path
    required: true
  install_class:
    description: Argument of C(install.sh) (C(kc1) or C(kc2)).
    type: str
    default: kc1
    choices: [kc1, kc2]
  version_package:
    description: Package whose version is the CSP's version.
    type: str
    default: lsb-cprocsp-base
  allow_upgrade:
    description: Install an archive of another (newer) version than the installed one. A downgrade is always refused.
    type: bool
    default: false
  cpconfig:
    description: Path of C(cpconfig).
    type: path
    default: /opt/cprocsp/sbin/amd64/cpconfig
  license_serial:
    description: Licence serial to set; empty keeps the installed licence.
    type: str
    default: ""
  environment:
    description: ESIA environment (C(esia_client_environment)); decides whether a weak licence fails or warns.
    type: str
    default: test
    choices: [test, prod]
  license_min_days:
    description: A licence with fewer days left than this is judged like a Demo licence.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Install CryptoPro CSP, make its RNG headless and read its licence
  cryptopro_csp:
    archive: /var/cache/esia-onboard/cryptopro/linux-amd64_deb.tgz
    install_dir: /var/cache/esia-onboard/cryptopro
    license_serial: "{{ cryptopro_license_serial }}"
    environment: prod
  register: csp
  no_log: true

- name: Fail on a Demo licence in prod
  ansible.builtin.fail:
    msg: "{{ csp.license_message }}"
  when: csp.license_verdict == 'fail'
"""

RETURN = r"""
action:
  description: What was done with the CSP - C(install), C(same), C(upgrade) (refused ones fail).
  type: str
  returned: always
version:
  description: The archive's CSP version.
  type: str
  returned: always
installed_version:
  description: The CSP version installed before the run (empty when none).
  type: str
  returned: always
csp_present:
  description: Whether the CSP's tools are there (false in check mode on a fresh host).
  type: bool
  returned: always
license:
  description: C(type), C(expires) (ISO date or null), C(days_left), C(permanent); no serial.
  type: dict
  returned: when the CSP is present
license_verdict:
  description: C(ok), C(warn) or C(fail).
  type: str
  returned: always
license_message:
  description: Why the licence is not C(ok), and the fix.
  type: str
  returned: always
"""

import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.esia_onboard import cryptopro  # noqa: E402

GAMMA = ("/var/opt/cprocsp/dsrf/db1/kis_1", "/var/opt/cprocsp/dsrf/db2/kis_1")


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_version(module: AnsibleModule, package: str) -> str:
    rc, out, _ = module.run_command(["dpkg-query", "--show", "--showformat=${Version}", package])
    return out.strip() if rc == 0 else ""


class Csp:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.changed = False
        self.diff = {"before": {}, "after": {}}
        self.result: dict = {}

    def fail(self, msg: str, **extra) -> None:
        self.module.fail_json(msg=msg, changed=self.changed, **extra)

    def run(self, argv: list[str], secret: str = "") -> tuple[int, str]:
        rc, out, err = self.module.run_command(argv)
        text = (out + err).replace(secret, "********") if secret else out + err
        return rc, text

    # ---------------------------------------------------------- install

    def unpack(self) -> str:
        archive = self.p["archive"]
        if not os.path.isfile(archive):
            if self.module.check_mode:
                return ""
            self.fail(f"the CryptoPro archive {archive} is not on the host")
        target = os.path.join(self.p["install_dir"], sha256(archive))
        if not os.path.isfile(os.path.join(target, "install.sh")):
            if self.module.check_mode:
                return target
            os.makedirs(target, mode=0o700, exist_ok=True)
            rc, text = self.run(["tar", "-xzf", archive, "-C", target, "--strip-components=1", "--no-same-owner"])
            if rc != 0:
                self.fail(f"cannot unpack {archive}: {text.strip()}")
            self.changed = True
        return target

    def archive_version(self, directory: str) -> str:
        package = self.p["version_package"]
        debs = sorted(f for f in os.listdir(directory) if f.startswith(package + "_") and f.endswith(".deb"))
        if len(debs) != 1:
            self.fail(
                f"cryptopro_distribution: the archive holds {len(debs)} packages named {package}_*.deb "
                "(expected exactly one). Is it CryptoPro CSP's linux-amd64_deb.tgz?"
            )
        rc, out, err = self.module.run_command(["dpkg-deb", "--field", os.path.join(directory, debs[0]), "Version"])
        if rc != 0:
            self.fail(f"cannot read the version of {debs[0]}: {err.strip()}")
        return out.strip()

    def record_path(self) -> str:
        return os.path.join(self.p["install_dir"], "installed.json")

    def install(self) -> None:
        directory = self.unpack()
        before = installed_version(self.module, self.p["version_package"])
        self.result["installed_version"] = before
        if not directory or not os.path.isfile(os.path.join(directory, "install.sh")):
            # check mode, archive not yet copied or unpacked
            self.result.update(action="install" if not before else "unknown", version="")
            self.changed = True
            return
        wanted = self.archive_version(directory)
        action = cryptopro.version_change(before, wanted)
        self.result.update(action=action, version=wanted)
        self.diff["before"]["version"], self.diff["after"]["version"] = before, wanted
        if action == "same":
            return
        if action == "downgrade":
            self.fail(
                f"cryptopro_distribution holds CryptoPro CSP {wanted}, older than the installed {before}: "
                "a downgrade is never done (install.sh would remove the newer CSP). Put the archive of "
                f"{before} or a newer one in cryptopro_distribution."
            )
        if action == "upgrade" and not self.p["allow_upgrade"]:
            self.fail(
                f"cryptopro_distribution holds CryptoPro CSP {wanted} but {before} is installed: another "
                "version is installed only with cryptopro_allow_upgrade: true (install.sh removes the "
                "installed CSP first; the key containers stay). Set it for this run, or put the archive "
                f"of {before} back."
            )
        self.changed = True
        if self.module.check_mode:
            return
        previous = self.previous_install(before)
        rc, text = self.install_sh(directory)
        now = installed_version(self.module, self.p["version_package"])
        if rc == 0 and now == wanted:
            with open(self.record_path(), "w", encoding="utf-8") as handle:
                json.dump({"version": wanted, "dir": directory}, handle)
            return
        detail = f"install.sh of CryptoPro CSP {wanted} failed (exit {rc}, installed now: {now or 'nothing'}): "
        detail += text.strip()[-1500:]
        if previous:
            rc2, text2 = self.install_sh(previous["dir"])
            again = installed_version(self.module, self.p["version_package"])
            if rc2 == 0 and again == previous["version"]:
                self.fail(
                    detail + f" -- CryptoPro CSP {again} was installed again from {previous['dir']}, so the "
                    "host still has a working CSP; fix the new archive before the next run.",
                    restored=again,
                )
            self.fail(detail + f" -- restoring {previous['version']} failed too: {text2.strip()[-800:]}")
        self.fail(detail + " -- no earlier archive was kept on this host, so nothing could be restored.")

    def install_sh(self, directory: str) -> tuple[int, str]:
        rc, out, err = self.module.run_command(["./install.sh", self.p["install_class"]], cwd=directory)
        return rc, out + err

    def previous_install(self, before: str) -> dict | None:
        try:
            with open(self.record_path(), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        if record.get("version") == before and os.path.isfile(os.path.join(record.get("dir", ""), "install.sh")):
            return record
        return None

    # ---------------------------------------------------------- rng, licence

    def rng(self) -> None:
        cpconfig = self.p["cpconfig"]
        rc, text = self.run([cpconfig, "-hardware", "rndm", "-view"])
        names = cryptopro.rng_names(text) if rc == 0 else []
        self.diff["before"]["rng"] = names
        commands = []
        if "bio_tui" in names:
            commands.append([cpconfig, "-hardware", "rndm", "-del", "bio_tui"])
        if "cpsd" not in names:
            commands.append([cpconfig, "-hardware", "rndm", "-add", "cpsd", "-name", "cpsd rng", "-level", "3"])
            for index, path in enumerate(GAMMA, start=1):
                commands.append(
                    [cpconfig, "-hardware", "rndm", "-configure", "cpsd", "-add", "string", f"/db{index}/kis_1", path]
                )
        self.diff["after"]["rng"] = [n for n in names if n != "bio_tui"] + ([] if "cpsd" in names else ["cpsd"])
        if not commands:
            return
        self.changed = True
        if self.module.check_mode:
            return
        for argv in commands:
            rc, text = self.run(argv)
            if rc != 0:
                self.fail(f"{' '.join(argv[1:])} failed (exit {rc}): {text.strip()} {cryptopro.explain(text)}")

    def licence(self) -> None:
        cpconfig, serial = self.p["cpconfig"], self.p["license_serial"].strip()
        rc, text = self.run([cpconfig, "-license", "-view"], secret=serial)
        try:
            current = cryptopro.parse_license(text) if rc == 0 else None
        except ValueError:
            current = None
        wanted = serial.replace("-", "").upper()
        if wanted and (current is None or current["serial_normalized"] != wanted):
            self.changed = True
            self.diff["before"]["license"], self.diff["after"]["license"] = "another licence", "the vault's serial"
            if self.module.check_mode:
                current = None
            else:
                rc, out = self.run([cpconfig, "-license", "-set", serial.upper()], secret=serial)
                if rc != 0:
                    self.fail(f"cpconfig -license -set refused cryptopro_license_serial (exit {rc}): {out.strip()}")
                rc, text = self.run([cpconfig, "-license", "-view"], secret=serial)
                current = cryptopro.parse_license(text)
        if current is None:
            self.result.update(license=None, license_verdict="ok", license_message="")
            return
        shown = {k: current[k] for k in ("type", "expires", "days_left", "permanent")}
        verdict, message = cryptopro.license_verdict(shown, self.p["environment"], self.p["license_min_days"])
        self.result.update(license=shown, license_verdict=verdict, license_message=message)

    def main(self) -> None:
        self.install()
        present = os.access(self.p["cpconfig"], os.X_OK)
        self.result["csp_present"] = present
        if present:
            if not self.module.check_mode:
                for path in GAMMA:  # where the gamma is copied next
                    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            self.rng()
            self.licence()
        else:
            self.result.update(license=None, license_verdict="ok", license_message="")
        self.result.setdefault("action", "same")
        self.result.setdefault("version", "")
        self.result.setdefault("installed_version", "")
        self.module.exit_json(changed=self.changed, diff=self.diff, **self.result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "archive": {"type": "path", "required": True},
            "install_dir": {"type": "path", "required": True},
            "install_class": {"type": "str", "default": "kc1", "choices": ["kc1", "kc2"]},
            "version_package": {"type": "str", "default": "lsb-cprocsp-base"},
            "allow_upgrade": {"type": "bool", "default": False},
            "cpconfig": {"type": "path", "default": "/opt/cprocsp/sbin/amd64/cpconfig"},
            "license_serial": {"type": "str", "default": "", "no_log": True},
            "environment": {"type": "str", "default": "test", "choices": ["test", "prod"]},
            "license_min_days": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    Csp(module).main()


if __name__ == "__main__":
    main()
