"""library/cryptopro_csp.py's decisions (issue 14 point 6, issue 13 points 1 and 5)
with dpkg and CryptoPro's tools answered by a fake host: install only when the
version differs, another version only with allow_upgrade, never a downgrade,
a failed install.sh followed by the previous archive's, bio_tui removed and
cpsd registered only when needed, the licence judged."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.unit.test_cryptopro_modules import load

csp_module = load("cryptopro_csp")
DEMO = "License validity:\n5050N4003001BT72MA83QF3T0\nExpires: 94 day(s)\nLicense type: Demo.\n"
SERVER = "License validity:\n4040EQ000K9KAC20RXAWF5CZY\nExpires: permanent\nLicense type: Server.\n"


class Failed(Exception):
    pass


class FakeHost:
    """Answers the commands the module runs; `installed` is the version dpkg knows."""

    def __init__(self, installed: str = "", broken: set | None = None, rng: str = "bio_tui\n") -> None:
        self.installed, self.broken, self.rng, self.licence = installed, broken or set(), rng, DEMO
        self.commands: list[list[str]] = []

    def run_command(self, argv, cwd=None, **_):
        self.commands.append(list(argv))
        if argv[0] == "dpkg-query":
            return (0, self.installed, "") if self.installed else (1, "", "not installed")
        if argv[0] == "dpkg-deb":
            return 0, Path(argv[2]).name.split("_")[1] + "\n", ""
        if argv[0] == "tar":
            with tarfile.open(argv[2]) as archive:
                for member in archive.getmembers():
                    member.name = member.name.split("/", 1)[1]
                    archive.extract(member, argv[4])
            return 0, "", ""
        if argv[0] == "./install.sh":
            version = next(p.name.split("_")[1] for p in Path(cwd).glob("lsb-cprocsp-base_*.deb"))
            self.installed = ""  # the vendor's install.sh removes the installed CSP first
            if version in self.broken:
                return 1, "", "dpkg: error processing archive"
            self.installed = version
            return 0, "installed", ""
        if argv[1:4] == ["-hardware", "rndm", "-view"]:
            return 0, self.rng, ""
        if argv[1:3] == ["-license", "-view"]:
            return 0, self.licence, ""
        if argv[1:3] == ["-license", "-set"]:
            self.licence = SERVER
            return 0, "", ""
        return 0, "", ""


class FakeModule:
    def __init__(self, host: FakeHost, tmp: Path, version: str, check: bool = False, **params) -> None:
        archive = tmp / f"csp-{version}.tgz"
        with tarfile.open(archive, "w:gz") as out:
            for name in ("install.sh", f"lsb-cprocsp-base_{version}_all.deb"):
                info = tarfile.TarInfo(f"linux-amd64_deb/{name}")
                info.size = 2
                out.addfile(info, io.BytesIO(b"#\n"))
        cpconfig = tmp / "cpconfig"
        cpconfig.write_text("#!/bin/sh\n")
        cpconfig.chmod(0o755)
        self.params = {
            "archive": str(archive), "install_dir": str(tmp / "install"), "install_class": "kc1",
            "version_package": "lsb-cprocsp-base", "allow_upgrade": False, "cpconfig": str(cpconfig),
            "license_serial": "", "environment": "test", "license_min_days": 30, **params,
        }  # fmt: skip
        (tmp / "install").mkdir(exist_ok=True)
        self.check_mode, self.host, self.result = check, host, None

    def run_command(self, argv, **kwargs):
        return self.host.run_command(argv, **kwargs)

    def fail_json(self, **kwargs):
        self.result = {"failed": True, **kwargs}
        raise Failed(kwargs["msg"])

    def exit_json(self, **kwargs):
        self.result = kwargs
        raise SystemExit(0)


@pytest.fixture(autouse=True)
def gamma_paths(tmp_path, monkeypatch):
    """The module makes the gamma's directories: here below tmp_path, not in /var/opt."""
    monkeypatch.setattr(csp_module, "GAMMA", (str(tmp_path / "dsrf/db1/kis_1"), str(tmp_path / "dsrf/db2/kis_1")))


def run(module: FakeModule) -> dict:
    with pytest.raises((Failed, SystemExit)):
        csp_module.Csp(module).main()
    return module.result


def test_first_install_then_nothing_to_do(tmp_path):
    host = FakeHost()
    first = run(FakeModule(host, tmp_path, "5.0.13000-7"))
    assert (first["action"], first["changed"], host.installed) == ("install", True, "5.0.13000-7")
    assert [c for c in host.commands if c[0] == "./install.sh"] == [["./install.sh", "kc1"]]
    assert [c[1:] for c in host.commands if "-del" in c] == [["-hardware", "rndm", "-del", "bio_tui"]]
    host.rng = "cpsd\n"
    host.commands.clear()
    again = run(FakeModule(host, tmp_path, "5.0.13000-7"))
    assert (again["action"], again["changed"]) == ("same", False)
    assert not [c for c in host.commands if c[0] == "./install.sh" or "-add" in c or "-del" in c]


def test_another_version_needs_allow_upgrade(tmp_path):
    host = FakeHost(installed="5.0.12500-6", rng="cpsd\n")
    with pytest.raises(Failed, match="only with cryptopro_allow_upgrade: true"):
        csp_module.Csp(FakeModule(host, tmp_path, "5.0.13000-7")).main()
    assert host.installed == "5.0.12500-6"
    upgraded = run(FakeModule(host, tmp_path, "5.0.13000-7", allow_upgrade=True))
    assert (upgraded["action"], host.installed) == ("upgrade", "5.0.13000-7")


def test_a_downgrade_is_refused_even_when_upgrades_are_allowed(tmp_path):
    host = FakeHost(installed="5.0.13000-7", rng="cpsd\n")
    result = run(FakeModule(host, tmp_path, "5.0.12500-6", allow_upgrade=True))
    assert result["failed"] and "a downgrade is never done" in result["msg"]
    assert not [c for c in host.commands if c[0] == "./install.sh"]


def test_a_failed_install_reinstalls_the_previous_archive(tmp_path):
    host = FakeHost(broken={"5.0.13000-8"}, rng="cpsd\n")
    run(FakeModule(host, tmp_path, "5.0.13000-7"))
    result = run(FakeModule(host, tmp_path, "5.0.13000-8", allow_upgrade=True))
    assert result["failed"]
    assert "CryptoPro CSP 5.0.13000-7 was installed again" in result["msg"]
    assert result["restored"] == "5.0.13000-7"
    assert host.installed == "5.0.13000-7"


def test_check_mode_changes_nothing(tmp_path):
    host = FakeHost(installed="5.0.12500-6")
    result = run(FakeModule(host, tmp_path, "5.0.13000-7", check=True, allow_upgrade=True))
    assert result["changed"] is True
    assert host.installed == "5.0.12500-6"
    assert not [c for c in host.commands if c[0] == "./install.sh" or "-del" in c or "-set" in c]


def test_licence_demo_warns_in_test_fails_in_prod_and_a_serial_fixes_it(tmp_path):
    host = FakeHost(rng="cpsd\n")
    test = run(FakeModule(host, tmp_path, "5.0.13000-7"))
    assert test["license_verdict"] == "warn"
    assert test["license"] == {"type": "Demo", "expires": test["license"]["expires"], "days_left": 94,
                               "permanent": False}  # fmt: skip
    prod = run(FakeModule(host, tmp_path, "5.0.13000-7", environment="prod"))
    assert prod["license_verdict"] == "fail" and "server licence" in prod["license_message"]
    serial = "4040E-Q000K-9KAC2-0RXAW-F5CZY"
    fixed = run(FakeModule(host, tmp_path, "5.0.13000-7", environment="prod", license_serial=serial))
    assert fixed["license_verdict"] == "ok"
    assert (fixed["license"]["type"], fixed["license"]["expires"]) == ("Server", None)
    assert serial not in str(fixed)
