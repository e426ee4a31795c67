"""library/cryptopro_key.py's cryptopro backend against the CryptoPro TEST
DOUBLE, without a lab host: the double runs from a scratch root
(CPROCSP_DOUBLE_ROOT). Proves the module's side of issue 13 points 1, 2 and 7:
the container, request, certificate install and DER export; the self-signed
certificate of `csptest -newkeyset -makecert`; idempotence and check mode;
NTE_SILENT_CONTEXT named with its fix; and that every call the double saw
got the PIN at its terminal prompt, never in argv or environment."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.certs import gost_openssl_conf, gost_workdir
from tests.doubles.cryptopro.build_archive import OPENSSL_CONF
from tests.unit.test_cryptopro_modules import load, run_module

ROOT = Path(__file__).resolve().parents[2]
PIN = "Double-PIN-" + os.urandom(4).hex()
FQCN = "\\\\.\\HDIMAGE\\esia_77"


@pytest.fixture
def double(tmp_path_factory) -> Path:
    base = gost_workdir(tmp_path_factory, "cryptopro-key-double")
    root = base / "root"
    for directory in ("var/opt/cprocsp/keys", "var/opt/cprocsp/users", "var/log/cprocsp-double", "etc/opt/cprocsp"):
        (root / directory).mkdir(parents=True)
    lib = base / "lib"
    lib.mkdir()
    shutil.copy(ROOT / "tests/doubles/cryptopro/cprocsp_double.py", lib / "cprocsp_double.py")
    (lib / "openssl-gost.cnf").write_text(OPENSSL_CONF)
    for tool in ("csptest", "certmgr", "cryptcp", "cpconfig", "cpverify"):
        wrapper = base / tool
        wrapper.write_text(
            f'#!/bin/sh\nCPROCSP_DOUBLE_ROOT={root} exec {sys.executable} {lib}/cprocsp_double.py {tool} "$@"\n'
        )
        wrapper.chmod(0o755)
    gamma = base / "kis_1"
    gamma.write_bytes(os.urandom(864))
    state = {"license": "", "rng": ["cpsd"], "rng_strings": {"/db1/kis_1": str(gamma)}}
    (root / "etc/opt/cprocsp/double-state.json").write_text(json.dumps(state))
    (base / "esia").mkdir()
    return base


def args(base: Path, **more) -> dict:
    return {
        "backend": "cryptopro",
        "container": "esia_77",
        "pin": PIN,
        "run_as": "root",
        "certificate_source": "issued",
        "request_file": str(base / "esia" / "esia_77.req"),
        "der_file": str(base / "esia" / "esia_77.cer"),
        "subject": "C=RU, O=MIAC, CN=MIAC",
        "csptest": str(base / "csptest"),
        "certmgr": str(base / "certmgr"),
        "cryptcp": str(base / "cryptcp"),
        **more,
    }


def calls(base: Path) -> list[dict]:
    logs = base / "root/var/log/cprocsp-double"
    return [json.loads(line) for log in logs.glob("calls-*.log") for line in log.read_text().splitlines()]


def issue(base: Path) -> Path:
    env = {**os.environ, "OPENSSL_CONF": str(gost_openssl_conf(base))}

    def openssl(*a: str) -> None:
        subprocess.run(["openssl", *a], check=True, capture_output=True, env=env, cwd=base)

    openssl("genpkey", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A", "-out", "ca.key")
    openssl("req", "-new", "-x509", "-key", "ca.key", "-subj", "/CN=Test GOST CA", "-days", "30", "-out", "ca.pem")
    openssl("x509", "-req", "-in", str(base / "esia/esia_77.req"), "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "7", "-days", "20", "-md_gost12_256", "-outform", "DER", "-out", "issued.cer")  # fmt: skip
    return base / "issued.cer"


def test_issued_flow_converges_and_the_pin_is_only_typed_at_prompts(double, monkeypatch, capsys):
    module = load("cryptopro_key")
    check = run_module(module, args(double), monkeypatch, capsys, check=True)
    assert check["changed"] is True and check["ready"] is False
    assert not calls(double) or all("-newkeyset" not in c["argv"] for c in calls(double))
    first = run_module(module, args(double), monkeypatch, capsys)
    assert first.get("failed") is not True, first
    assert first["actions"][:2] == [f"create container {FQCN}", "make the certificate request"]
    assert (first["ready"], first["certificate"]) == (True, False)
    issued = issue(double)
    second = run_module(module, args(double, issued_file=str(issued)), monkeypatch, capsys)
    assert second.get("failed") is not True, second
    assert "install the certificate with its key" in second["actions"]
    assert (double / "esia/esia_77.cer").read_bytes() == issued.read_bytes()
    third = run_module(module, args(double, issued_file=str(issued)), monkeypatch, capsys)
    assert third["changed"] is False, third["actions"]
    seen = calls(double)
    newkeyset = [c for c in seen if "-newkeyset" in c["argv"]]
    assert len(newkeyset) == 1
    assert "-silent" not in newkeyset[0]["argv"] and "-password" not in newkeyset[0]["argv"]
    needing_pin = [c for c in seen if {"-newkeyset", "-creatrqst", "-inst"} & set(c["argv"])]
    assert len(needing_pin) >= 3
    assert all(c["tty"] for c in needing_pin)
    assert all(PIN not in json.dumps(c) for c in seen)
    assert PIN not in json.dumps([first, second, third])


def test_a_certificate_for_another_key_is_refused_with_the_fix(double, monkeypatch, capsys):
    module = load("cryptopro_key")
    run_module(module, args(double), monkeypatch, capsys)
    other = double / "other.cer"
    env = {**os.environ, "OPENSSL_CONF": str(gost_openssl_conf(double))}
    argv = ["openssl", "req", "-x509", "-newkey", "gost2012_256", "-pkeyopt", "paramset:A", "-nodes", "-keyout",
            str(double / "other.key"), "-subj", "/CN=someone", "-outform", "DER", "-out", str(other)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, env=env)
    failed = run_module(module, args(double, issued_file=str(other)), monkeypatch, capsys)
    assert failed["failed"] is True
    assert "was issued for another key" in failed["msg"]
    assert "CRYPT_E_KEY_MISMATCH" in failed["msg"]


def test_selfsigned_with_makecert(double, monkeypatch, capsys):
    module = load("cryptopro_key")
    result = run_module(module, args(double, certificate_source="selfsigned"), monkeypatch, capsys)
    assert result.get("failed") is not True, result
    assert result["certificate"] is True
    made = [c["argv"] for c in calls(double) if "-makecert" in c["argv"]]
    assert len(made) == 1
    der = (double / "esia/esia_77.cer").read_bytes()
    assert der[:1] == b"\x30"
    assert not (double / "esia/esia_77.req").exists()  # csptest -makecert needs no request
    store = json.loads((double / "root/var/opt/cprocsp/users/root/stores/my.json").read_text())
    assert [e["container"] for e in store] == ["esia_77"]
    assert hashlib.sha1(bytes.fromhex(store[0]["der"])).digest() == hashlib.sha1(der).digest()
    again = run_module(module, args(double, certificate_source="selfsigned"), monkeypatch, capsys)
    assert again["changed"] is False, again["actions"]


def test_bio_tui_fails_key_generation_with_nte_silent_context_and_the_fix(double, monkeypatch, capsys):
    state_file = double / "root/etc/opt/cprocsp/double-state.json"
    state = json.loads(state_file.read_text())
    state["rng"].append("bio_tui")
    state_file.write_text(json.dumps(state))
    failed = run_module(load("cryptopro_key"), args(double), monkeypatch, capsys)
    assert failed["failed"] is True
    assert "0x80090022 is NTE_SILENT_CONTEXT" in failed["msg"]
    assert "cpconfig -hardware rndm -del bio_tui" in failed["msg"]


def test_wrong_pin_is_refused_after_one_retry_without_hanging(double, monkeypatch, capsys):
    module = load("cryptopro_key")
    run_module(module, args(double), monkeypatch, capsys)
    (double / "esia/esia_77.req").unlink()
    failed = run_module(module, args(double, pin="Wrong-PIN-000"), monkeypatch, capsys)
    assert failed["failed"] is True
    assert "0x8010006b" in failed["msg"]
    assert "Wrong-PIN-000" not in failed["msg"]
