"""module_utils/esia_onboard/cryptopro.py: the rules of the cryptopro settings,
the parsers of CryptoPro's output (formats from public transcripts, see
tests/doubles/cryptopro/README.md), and the PIN typed at a tool's prompt on a
pseudo-terminal, never in its argv or environment."""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
from pathlib import Path

import ansible.module_utils
import pytest

_MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.esia_onboard import cryptopro  # noqa: E402

TODAY = datetime.date(2026, 12, 1)
# A published CSP 5.0.13003 transcript of a fresh install (Demo licence).
DEMO = "License validity:\n5050N4003001BT72MA83QF3T0\nExpires: 94 day(s)\nLicense type: Demo.\n"


class TestLicence:
    def test_demo_transcript(self):
        lic = cryptopro.parse_license(DEMO, today=TODAY)
        assert lic["type"] == "Demo"
        assert lic["serial_normalized"] == "5050N4003001BT72MA83QF3T0"
        assert lic["days_left"] == 94
        assert lic["expires"] == "2027-03-05"
        assert lic["permanent"] is False

    def test_permanent_server_licence(self):
        text = "License validity:\n4040E-Q000K-9KAC2-0RXAW-F5CZY\nExpires: permanent\nLicense type: Server.\n"
        lic = cryptopro.parse_license(text, today=TODAY)
        assert (lic["type"], lic["permanent"], lic["expires"], lic["days_left"]) == ("Server", True, None, None)
        assert lic["serial_normalized"] == "4040EQ000K9KAC20RXAWF5CZY"

    def test_months_and_dates(self):
        months = cryptopro.parse_license(DEMO.replace("94 day(s)", "3 month(s) 2 day(s)"), today=TODAY)
        assert months["days_left"] == 92
        dated = cryptopro.parse_license(DEMO.replace("94 day(s)", "11.12.2026"), today=TODAY)
        assert dated["days_left"] == 10
        assert dated["expires"] == "2026-12-11"

    def test_expired(self):
        assert cryptopro.parse_license(DEMO + "License expired.\n", today=TODAY)["days_left"] == 0

    def test_no_serial(self):
        with pytest.raises(ValueError, match="no licence serial"):
            cryptopro.parse_license("Error: no license")

    @pytest.mark.parametrize(
        ("licence", "env", "verdict"),
        [
            ({"type": "Demo", "days_left": 94, "expires": "2027-03-05"}, "prod", "fail"),
            ({"type": "Demo", "days_left": 94, "expires": "2027-03-05"}, "test", "warn"),
            ({"type": "Server", "days_left": 10, "expires": "2026-12-11"}, "prod", "fail"),
            ({"type": "Server", "days_left": 10, "expires": "2026-12-11"}, "test", "warn"),
            ({"type": "Server", "days_left": 30, "expires": "2026-12-31"}, "prod", "ok"),
            ({"type": "Server", "days_left": None, "expires": None}, "prod", "ok"),
        ],
    )
    def test_verdict(self, licence, env, verdict):
        got, message = cryptopro.license_verdict(licence, env, 30)
        assert got == verdict
        assert ("server licence" in message) == (verdict != "ok")


class TestVersions:
    @pytest.mark.parametrize(
        ("installed", "wanted", "change"),
        [
            ("", "5.0.13000-7", "install"),
            ("5.0.13000-7", "5.0.13000-7", "same"),
            ("5.0.12500-6", "5.0.13000-7", "upgrade"),
            ("5.0.13000-7", "5.0.12500-6", "downgrade"),
            ("5.0.99999-1", "5.0.99999-2", "upgrade"),
            ("5.0.9999-1", "5.0.10000-1", "upgrade"),  # numeric, not text, order
            ("5.0.13000-10", "5.0.13000-9", "downgrade"),
            ("1:4.0.9-1", "5.0.1-1", "downgrade"),  # epoch wins
        ],
    )
    def test_change(self, installed, wanted, change):
        assert cryptopro.version_change(installed, wanted) == change


class TestParsers:
    def test_containers(self):
        out = (
            "CSP (Type:80) v5.0.10010 KC1 Release Ver:5.0.12500 OS:Linux CPU:AMD64 FastCode:READY:AVX.\n"
            "AcquireContext: OK. HCRYPTPROV: 17693171\n\\\\.\\HDIMAGE\\esia_77\n\\\\.\\HDIMAGE\\other\nOK.\n"
            "Total: SYS: 0.010 sec USR: 0.040 sec UTC: 0.120 sec\n[ErrorCode: 0x00000000]\n"
        )
        assert cryptopro.parse_containers(out) == ["\\\\.\\HDIMAGE\\esia_77", "\\\\.\\HDIMAGE\\other"]
        with pytest.raises(ValueError):
            cryptopro.parse_containers("command not found")

    def test_certmgr_sha1_and_link(self):
        out = (
            'Certmgr 1.1 (c) "Crypto-Pro",  2007-2020.\n' + "=" * 77 + "\n1-------\nIssuer : CN=CA\n"
            "SHA1 Hash           : 0e4ecebe79ffdb789fceaa2a28ce20bdd205bd53\nPrivateKey Link     : Yes\n"
            "2-------\nSHA1 Thumbprint : " + "a" * 40 + "\nPrivateKey Link     : No\n" + "=" * 77 + "\n"
            "[ErrorCode: 0x00000000]\n"
        )
        assert cryptopro.parse_certmgr_sha1(out) == [
            {"sha1": "0E4ECEBE79FFDB789FCEAA2A28CE20BDD205BD53", "private_key_link": True},
            {"sha1": "A" * 40, "private_key_link": False},
        ]

    def test_rng_names(self):
        assert cryptopro.rng_names("bio_tui\ncpsd\n") == ["bio_tui", "cpsd"]
        assert "bio_tui" not in cryptopro.rng_names("cpsd\n")

    def test_nte_silent_context_is_named_with_the_fix(self):
        text = cryptopro.explain("Random number generator...\n[ErrorCode: 0x80090022]\n")
        assert "NTE_SILENT_CONTEXT" in text
        assert "cpconfig -hardware rndm -del bio_tui" in text
        assert "cryptopro_rng_gamma_file" in text
        assert cryptopro.explain("[ErrorCode: 0x00000000]") == ""

    def test_fqcn(self):
        assert cryptopro.fqcn("esia_77") == "\\\\.\\HDIMAGE\\esia_77"
        with pytest.raises(ValueError):
            cryptopro.fqcn("-bad")


class TestRules:
    def base(self, tmp_path, **more):
        gamma = tmp_path / "kis_1"
        gamma.write_bytes(b"\x01" * 864)
        archive = tmp_path / "linux-amd64_deb.tgz"
        archive.write_bytes(b"archive")
        return {
            "cryptopro_backend": "cryptopro",
            "cryptopro_provider_type": 80,
            "cryptopro_rng_gamma_file": str(gamma),
            "cryptopro_distribution": str(archive),
            "cryptopro_distribution_sha256": hashlib.sha256(b"archive").hexdigest(),
            "cryptopro_certificate_source": "issued",
            "cryptopro_license_min_days": 30,
            "cryptopro_allow_512bit_signer": False,
            "cryptopro_allow_upgrade": False,
            **more,
        }

    def test_valid(self, tmp_path):
        assert cryptopro.rules(self.base(tmp_path)) == []

    def test_gamma_is_required_and_the_message_says_how_to_make_it(self, tmp_path):
        problems = cryptopro.rules(self.base(tmp_path, cryptopro_rng_gamma_file=""))
        assert len(problems) == 1
        assert problems[0].startswith("cryptopro_rng_gamma_file: got ''")
        assert "genkpim" in problems[0]

    def test_missing_gamma_file(self, tmp_path):
        problems = cryptopro.rules(self.base(tmp_path, cryptopro_rng_gamma_file=str(tmp_path / "none")))
        assert problems and "no such non-empty file" in problems[0]

    def test_openssl_gost_needs_no_gamma_nor_archive(self, tmp_path):
        settings = self.base(tmp_path, cryptopro_backend="openssl_gost", cryptopro_rng_gamma_file="")
        settings["cryptopro_distribution"] = ""
        assert cryptopro.rules(settings) == []

    def test_512_bit_signer_needs_the_opt_in_and_then_warns(self, tmp_path):
        refused = cryptopro.rules(self.base(tmp_path, cryptopro_provider_type=81))
        assert refused and refused[0].startswith("cryptopro_provider_type: got 81")
        assert "cryptopro_allow_512bit_signer" in refused[0]
        allowed = self.base(tmp_path, cryptopro_provider_type=81, cryptopro_allow_512bit_signer=True)
        assert cryptopro.rules(allowed) == []
        assert "512-bit" in cryptopro.warnings(allowed)[0]
        assert cryptopro.warnings(self.base(tmp_path)) == []

    def test_selfsigned_is_allowed_on_cryptopro_in_test_but_not_in_prod(self, tmp_path):
        selfsigned = self.base(tmp_path, cryptopro_certificate_source="selfsigned")
        assert cryptopro.rules({**selfsigned, "esia_client_environment": "test"}) == []
        assert "prod needs `issued`" in cryptopro.rules({**selfsigned, "esia_client_environment": "prod"})[0]

    @pytest.mark.parametrize("value", ["true", 1, None])
    def test_booleans_are_booleans(self, tmp_path, value):
        problems = cryptopro.rules(self.base(tmp_path, cryptopro_allow_upgrade=value))
        assert any(p.startswith("cryptopro_allow_upgrade: got") for p in problems)

    @pytest.mark.parametrize("value", [-1, "30", True])
    def test_licence_days(self, tmp_path, value):
        problems = cryptopro.rules(self.base(tmp_path, cryptopro_license_min_days=value))
        assert any(p.startswith("cryptopro_license_min_days: got") for p in problems)

    def test_archive_checks(self, tmp_path):
        assert "is empty" in cryptopro.rules(self.base(tmp_path, cryptopro_distribution=""))[0]
        assert "does not exist" in cryptopro.rules(self.base(tmp_path, cryptopro_distribution="/none.tgz"))[0]
        wrong = cryptopro.rules(self.base(tmp_path, cryptopro_distribution_sha256="0" * 64))
        assert wrong[0].startswith("cryptopro_distribution_sha256:")


# A stand-in for a CryptoPro tool without -password: asks on its terminal, records what it got.
PROMPTING_TOOL = """#!{python}
import json, os, sys, termios
fd = os.open("/dev/tty", os.O_RDWR)
attrs = termios.tcgetattr(fd)
attrs[3] &= ~termios.ECHO
termios.tcsetattr(fd, termios.TCSAFLUSH, attrs)
os.write(fd, b"Password for the container \\\\\\\\.\\\\HDIMAGE\\\\x: ")
line = b""
while not line.endswith(b"\\n"):
    line += os.read(fd, 1)
got = line.decode().strip()
with open(sys.argv[1], "w") as out:
    json.dump({{"pin": got, "argv": sys.argv, "environ": dict(os.environ)}}, out)
print("wrong PIN" if got != "{expected}" else "OK.")
sys.exit(0 if got == "{expected}" else 1)
"""


class TestRunWithPin:
    def tool(self, tmp_path, expected="s3cret-PIN"):
        path = tmp_path / "csptest"
        path.write_text(PROMPTING_TOOL.format(python=sys.executable, expected=expected))
        path.chmod(0o755)
        return path

    def test_pin_is_typed_at_the_prompt_and_is_in_no_argv_or_environment(self, tmp_path):
        record = tmp_path / "record.json"
        rc, output = cryptopro.run_with_pin([str(self.tool(tmp_path)), str(record)], "s3cret-PIN", timeout=30)
        assert rc == 0, output
        seen = json.loads(record.read_text())
        assert seen["pin"] == "s3cret-PIN"
        assert "s3cret-PIN" not in json.dumps(seen["argv"]) + json.dumps(seen["environ"])
        assert "s3cret-PIN" not in output  # echo was off, and the output is masked anyway

    def test_wrong_pin_fails(self, tmp_path):
        rc, output = cryptopro.run_with_pin(
            [str(self.tool(tmp_path, expected="other")), str(tmp_path / "r")], "s3cret-PIN", timeout=30
        )
        assert rc == 1
        assert "wrong PIN" in output

    def test_a_prompt_without_a_pin_to_give_fails_instead_of_hanging(self, tmp_path):
        rc, output = cryptopro.run_with_pin([str(self.tool(tmp_path)), str(tmp_path / "r")], None, timeout=30)
        assert rc != 0
        assert "asked for a PIN" in output

    def test_plain_tool_output(self):
        rc, output = cryptopro.run_with_pin(["/bin/echo", "[ErrorCode: 0x00000000]"], None, timeout=30)
        assert rc == 0
        assert cryptopro.error_code(output) == "0x00000000"
