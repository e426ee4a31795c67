"""library/cryptopro_key.py and library/cryptopro_csp.py: documentation matches
the argument spec (what `ansible-doc -M library` renders), and cryptopro_key's
openssl_gost backend for real with the OpenSSL GOST engine: key, request,
self-signed certificate, DER, idempotence, check mode, and the PKCS#8 export
whose password goes on stdin."""

from __future__ import annotations

import getpass
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import ansible.module_utils
import pytest
import yaml
from ansible.module_utils import basic

from tests.certs import gost_openssl_conf, gost_workdir

ROOT = Path(__file__).resolve().parents[2]
_MODULE_UTILS = str(ROOT / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["cryptopro_key", "cryptopro_csp"])
def test_documentation_matches_the_argument_spec_and_ansible_doc_renders(name, monkeypatch):
    module = load(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    assert doc["author"] and doc["requirements"]
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
    captured = {}

    class Stop(Exception):
        pass

    def fake(**kwargs):
        captured.update(kwargs)
        raise Stop

    monkeypatch.setattr(module, "AnsibleModule", fake)
    with pytest.raises(Stop):
        module.main()
    spec = captured["argument_spec"]
    assert captured["supports_check_mode"] is True
    assert set(spec) == set(doc["options"])
    for option, details in spec.items():
        documented = doc["options"][option]
        assert documented.get("type", "str") == details.get("type", "str"), option
        assert documented.get("default") == details.get("default"), option
    rendered = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-M", str(ROOT / "library"), name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "check_mode" in rendered.stdout or "check mode" in rendered.stdout.lower()


def run_module(module, args: dict, monkeypatch, capsys, check: bool = False) -> dict:
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps(payload).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    with pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def gost(tmp_path_factory) -> Path:
    return gost_workdir(tmp_path_factory, "cryptopro-key-module")


def openssl_args(directory: Path) -> dict:
    pin = directory / "esia.pin"
    pin.write_text("s3cret-PIN-7")
    pin.chmod(0o600)
    return {
        "backend": "openssl_gost",
        "container": "esia_77",
        "pin": "s3cret-PIN-7",
        "run_as": getpass.getuser(),
        "certificate_source": "selfsigned",
        "request_file": str(directory / "esia_77.req"),
        "der_file": str(directory / "esia_77.cer"),
        "subject": "/C=RU/O=MIAC/CN=MIAC",
        "key_file": str(directory / "esia_77.key"),
        "pem_file": str(directory / "esia_77.pem"),
        "pin_file": str(pin),
        "openssl_conf": str(gost_openssl_conf(directory)),
    }


def test_openssl_gost_key_certificate_and_der_then_nothing_to_do(gost, monkeypatch, capsys):
    module = load("cryptopro_key")
    directory = gost / "converge"
    directory.mkdir()
    args = openssl_args(directory)
    check = run_module(module, args, monkeypatch, capsys, check=True)
    assert check["changed"] is True and check["ready"] is False
    assert not (directory / "esia_77.key").exists()
    first = run_module(module, args, monkeypatch, capsys)
    assert first.get("failed") is not True, first
    assert {"generate the private key", "make the certificate request", "sign the self-signed certificate",
            "export the certificate in DER"} <= set(first["actions"])  # fmt: skip
    assert first["certificate"] is True
    der = (directory / "esia_77.cer").read_bytes()
    assert der[:1] == b"\x30"
    assert (directory / "esia_77.key").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in (directory / "esia_77.key").read_bytes()
    again = run_module(module, args, monkeypatch, capsys)
    assert again["changed"] is False, again["actions"]
    assert (directory / "esia_77.cer").read_bytes() == der
    converged_check = run_module(module, args, monkeypatch, capsys, check=True)
    assert converged_check["changed"] is False
    # A new subject re-makes request and certificate, never the key.
    key = (directory / "esia_77.key").read_bytes()
    renamed = run_module(module, {**args, "subject": "/C=RU/O=MIAC/CN=MIAC 2"}, monkeypatch, capsys)
    assert "make the certificate request" in renamed["actions"]
    assert (directory / "esia_77.key").read_bytes() == key


def test_openssl_gost_wrong_pin_fails_without_touching_the_key(gost, monkeypatch, capsys):
    module = load("cryptopro_key")
    directory = gost / "wrong-pin"
    directory.mkdir()
    args = openssl_args(directory)
    run_module(module, args, monkeypatch, capsys)
    key = (directory / "esia_77.key").read_bytes()
    (directory / "esia.pin").write_text("another-PIN")
    failed = run_module(module, {**args, "pin": "another-PIN"}, monkeypatch, capsys)
    assert failed["failed"] is True
    assert "does not open with cryptopro_pin" in failed["msg"]
    assert "another-PIN" not in failed["msg"]
    assert (directory / "esia_77.key").read_bytes() == key


def test_openssl_gost_private_key_export_opens_with_the_pin(gost, monkeypatch, capsys):
    module = load("cryptopro_key")
    directory = gost / "export"
    directory.mkdir()
    args = {**openssl_args(directory), "export_private_key": str(directory / "esia_77.p8.der")}
    result = run_module(module, args, monkeypatch, capsys)
    assert "export the private key (PKCS#8 DER)" in result["actions"]
    exported = directory / "esia_77.p8.der"
    assert exported.stat().st_mode & 0o777 == 0o600
    opened = subprocess.run(
        ["openssl", "pkcs8", "-inform", "DER", "-in", str(exported), "-passin", "pass:s3cret-PIN-7"],
        capture_output=True,
        env={"OPENSSL_CONF": args["openssl_conf"], "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert opened.returncode == 0, opened.stderr
    assert b"PRIVATE KEY" in opened.stdout
