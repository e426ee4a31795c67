"""esia-sign (roles/cryptopro/files/esia-sign) without a GOST engine: encoding,
configuration and PIN checks, and the CryptoPro path with fake csptest/cryptcp
scripts that record their arguments and write known bytes."""

import base64
import io
import json
import os
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

SIGNER = Path(__file__).resolve().parents[2] / "roles" / "cryptopro" / "files" / "esia-sign"


def load_signer():
    loader = SourceFileLoader("esia_sign", str(SIGNER))
    module = module_from_spec(spec_from_loader("esia_sign", loader))
    loader.exec_module(module)
    return module


signer = load_signer()

# 64 bytes, easy to tell from their reverse.
RAW = bytes(range(64))
# Like CryptoPro's tools without -password/-pin: asks for the PIN on its terminal.
FAKE_TOOL = """#!{python}
import json, os, sys
args = sys.argv[1:]
sys.stdout.write("Password for the container: ")
sys.stdout.flush()
pin = sys.stdin.readline().rstrip("\\r\\n")
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": args, "pin": pin, "tty": os.isatty(0), "environ": dict(os.environ)}}) + "\\n")
source = args[args.index("-in") + 1] if "-in" in args else args[-2]
if "FAIL" in open(source, "rb").read().decode():
    print("The password is incorrect " + pin)
    print("[ErrorCode: 0x8010006b]")
    sys.exit(1)
out = args[args.index("-out") + 1] if "-out" in args else args[-1]
with open(out, "wb") as handle:
    handle.write({payload!r})
"""


@pytest.fixture
def pin_file(tmp_path):
    path = tmp_path / "esia.pin"
    path.write_text("s3cret-PIN\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def cryptopro_config(tmp_path, pin_file):
    log = tmp_path / "calls.log"
    for tool, payload in (("csptest", RAW), ("cryptcp", b"0\x82CMS-DER")):
        script = tmp_path / tool
        script.write_text(FAKE_TOOL.format(python=sys.executable, log=str(log), payload=payload))
        script.chmod(0o755)
    config = {
        "backend": "cryptopro",
        "pin_file": str(pin_file),
        "csptest": str(tmp_path / "csptest"),
        "cryptcp": str(tmp_path / "cryptcp"),
        "container": "\\\\.\\HDIMAGE\\esia_77",
        "csptest_hash": "GOST12_256",
        "thumbprint": "0E4ECEBE79FFDB789FCEAA2A28CE20BDD205BD53",
    }
    path = tmp_path / "esia-sign.json"
    path.write_text(json.dumps(config))
    return path, log


def run_main(monkeypatch, capsys, args, stdin):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = signer.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestEncoding:
    def test_base64url_without_padding(self):
        assert signer.b64url(b"\xfb\xff") == "-_8"
        assert signer.b64url(b"\xfb\xff") == base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")

    def test_decode_restores_padding(self):
        assert signer.b64url_decode("-_8") == b"\xfb\xff"

    def test_decode_rejects_garbage(self):
        with pytest.raises(signer.SignError, match="not base64url"):
            signer.b64url_decode("a")


class TestConfiguration:
    def test_missing_file(self, tmp_path):
        with pytest.raises(signer.SignError, match="cannot read the configuration"):
            signer.load_config(str(tmp_path / "none.json"))

    def test_not_json(self, tmp_path):
        path = tmp_path / "c.json"
        path.write_text("backend: cryptopro")
        with pytest.raises(signer.SignError, match="is not JSON"):
            signer.load_config(str(path))

    def test_unknown_backend(self, tmp_path):
        path = tmp_path / "c.json"
        path.write_text('{"backend": "pkcs11"}')
        with pytest.raises(signer.SignError, match="backend must be openssl_gost or cryptopro"):
            signer.load_config(str(path))

    def test_pin_file_readable_by_others_is_refused(self, pin_file):
        pin_file.chmod(0o640)
        with pytest.raises(signer.SignError, match="must not be readable by others"):
            signer.pin_file({"pin_file": str(pin_file)})

    def test_missing_pin_file(self, tmp_path):
        with pytest.raises(signer.SignError, match="cannot read the PIN file"):
            signer.pin_file({"pin_file": str(tmp_path / "none")})

    def test_empty_pin(self, pin_file):
        pin_file.write_text("\n")
        with pytest.raises(signer.SignError, match="PIN file is empty"):
            signer.read_pin({"pin_file": str(pin_file)})

    def test_pin_is_first_line_without_newline(self, pin_file):
        assert signer.read_pin({"pin_file": str(pin_file)}) == "s3cret-PIN"

    def test_no_privilege_change_without_an_account(self):
        uid = os.getuid()
        signer.drop_privileges(None)
        signer.drop_privileges("root")
        assert os.getuid() == uid


class TestCryptoProBackend:
    def test_v2_reverses_csptest_output_and_passes_the_documented_arguments(
        self, cryptopro_config, monkeypatch, capsys
    ):
        config, log = cryptopro_config
        code, out, err = run_main(monkeypatch, capsys, ["--config", str(config), "--mode", "v2"], b"msg")
        assert (code, err) == (0, "")
        assert base64.urlsafe_b64decode(out.strip() + "==") == RAW[::-1]
        assert "=" not in out
        call = json.loads(log.read_text().splitlines()[0])
        argv = call["argv"]
        assert argv[:4] == ["-keyset", "-sign", "GOST12_256", "-container"]
        assert argv[argv.index("-container") + 1] == "\\\\.\\HDIMAGE\\esia_77"
        assert argv[argv.index("-keytype") + 1] == "exchange"
        assert argv[argv.index("-provtype") + 1] == "80"
        # The PIN arrives at the tool's prompt on a terminal, never in its argv or environment.
        assert call["pin"] == "s3cret-PIN"
        assert call["tty"] is True
        assert "s3cret-PIN" not in json.dumps(argv) + json.dumps(call["environ"])
        assert "-password" not in argv
        assert "-silent" not in argv

    def test_provider_type_81_reaches_csptest(self, cryptopro_config, monkeypatch, capsys):
        config, log = cryptopro_config
        data = json.loads(config.read_text())
        data.update(provider_type=81, csptest_hash="GOST12_512")
        config.write_text(json.dumps(data))
        code, _, _ = run_main(monkeypatch, capsys, ["--config", str(config), "--mode", "v2"], b"msg")
        assert code == 0
        argv = json.loads(log.read_text().splitlines()[0])["argv"]
        assert argv[argv.index("-provtype") + 1] == "81"

    def test_v1_keeps_cms_bytes_and_signs_by_thumbprint(self, cryptopro_config, monkeypatch, capsys):
        config, log = cryptopro_config
        code, out, _ = run_main(monkeypatch, capsys, ["--config", str(config), "--mode", "v1"], b"msg")
        assert code == 0
        assert base64.urlsafe_b64decode(out.strip() + "=" * (-len(out.strip()) % 4)) == b"0\x82CMS-DER"
        call = json.loads(log.read_text().splitlines()[0])
        argv = call["argv"]
        assert call["pin"] == "s3cret-PIN"
        assert "-pin" not in argv and "s3cret-PIN" not in json.dumps(argv)
        assert argv[0] == "-sign"
        assert argv[argv.index("-thumbprint") + 1] == "0E4ECEBE79FFDB789FCEAA2A28CE20BDD205BD53"
        assert {"-detached", "-der", "-nochain", "-norev"} <= set(argv)

    def test_csp_failure_is_reported_without_the_pin(self, cryptopro_config, monkeypatch, capsys):
        config, _ = cryptopro_config
        code, out, err = run_main(monkeypatch, capsys, ["--config", str(config)], b"FAIL")
        assert code == 1
        assert out == ""
        assert "csptest failed (exit 1)" in err
        assert "0x8010006b" in err
        assert "s3cret-PIN" not in err
        assert "********" in err

    def test_message_files_are_removed(self, cryptopro_config, monkeypatch, capsys, tmp_path):
        config, _ = cryptopro_config
        monkeypatch.setenv("TMPDIR", str(tmp_path / "t"))
        (tmp_path / "t").mkdir()
        import tempfile

        monkeypatch.setattr(tempfile, "tempdir", None)
        run_main(monkeypatch, capsys, ["--config", str(config)], b"msg")
        assert list((tmp_path / "t").iterdir()) == []

    def test_missing_tool(self, cryptopro_config, monkeypatch, capsys, tmp_path):
        config, _ = cryptopro_config
        data = json.loads(config.read_text())
        data["csptest"] = str(tmp_path / "absent")
        config.write_text(json.dumps(data))
        code, _, err = run_main(monkeypatch, capsys, ["--config", str(config)], b"msg")
        assert code == 1
        assert "not found" in err


class TestMain:
    def test_empty_message_is_refused(self, cryptopro_config, monkeypatch, capsys):
        config, log = cryptopro_config
        code, out, err = run_main(monkeypatch, capsys, ["--config", str(config)], b"")
        assert (code, out) == (1, "")
        assert "message on stdin is empty" in err
        assert not log.exists()

    def test_configuration_without_a_needed_key(self, tmp_path, pin_file, monkeypatch, capsys):
        config = tmp_path / "c.json"
        config.write_text(json.dumps({"backend": "cryptopro", "pin_file": str(pin_file)}))
        code, _, err = run_main(monkeypatch, capsys, ["--config", str(config)], b"m")
        assert code == 1
        assert "lacks 'csptest'" in err

    def test_config_from_environment(self, cryptopro_config, monkeypatch, capsys):
        config, _ = cryptopro_config
        monkeypatch.setenv("ESIA_SIGN_CONFIG", str(config))
        code, out, _ = run_main(monkeypatch, capsys, [], b"msg")
        assert code == 0
        assert len(base64.urlsafe_b64decode(out.strip() + "=" * (-len(out.strip()) % 4))) == 64

    def test_signer_runs_with_the_hosts_python(self):
        # The role installs it as an executable; the host has /usr/bin/python3 (Ansible needs it).
        assert SIGNER.read_text().startswith("#!/usr/bin/python3\n")


def test_verify_takes_a_signature_starting_with_a_dash(monkeypatch):
    """base64url signatures start with '-' one time in 64: `esia-sign --verify=SIG` must take
    them (seen in CI: "argument --verify: expected one argument"). The role's self-check no longer
    passes signatures on a command line at all (library/cryptopro_key.py verifies them with
    OpenSSL from files, module_utils/esia_onboard/esia.py)."""
    signature = "-ImvnHbVJqetaCg1Mc0LFpLhOAhogEge5c7q0NT-O9dP"
    argv = ["/usr/local/bin/esia-sign", "--mode", "v2", "--verify=" + signature]

    def stop(path):
        raise SystemExit(0)

    monkeypatch.setattr(signer, "load_config", stop)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"msg")))
    args = argv[1:]
    parser_seen = {}
    real_parse = signer.argparse.ArgumentParser.parse_args

    def spy(self, a=None, namespace=None):
        result = real_parse(self, a, namespace)
        parser_seen["verify"] = result.verify
        return result

    monkeypatch.setattr(signer.argparse.ArgumentParser, "parse_args", spy)
    with pytest.raises(SystemExit):
        signer.main(args)
    assert parser_seen.get("verify") == signature
