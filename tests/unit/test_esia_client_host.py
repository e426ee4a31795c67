"""The one signing self-check (module_utils/esia_onboard/esia.py signer_self_check, used by
cryptopro_key and esia_client_host), esia_client_host's reuse of the cryptopro role's result, and the
file helpers of module_utils/esia_onboard/cryptopro.py the modules write with (check, diff, validate).

Signatures are made here with the `openssl` CLI and the GOST engine (tests/certs.py), never by the
code under test; a signer that prints another key's signature must fail verification."""

from __future__ import annotations

import base64
import importlib.util
import os
import stat
from pathlib import Path

import ansible.module_utils
import pytest

from tests.certs import gost_openssl_conf, gost_workdir, make_cert, openssl

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))

from ansible.module_utils.esia_onboard import esia, files  # noqa: E402

_spec = importlib.util.spec_from_file_location("esia_client_host", REPO / "library" / "esia_client_host.py")
host_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(host_module)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return gost_workdir(tmp_path_factory, "esia-host")


def signer_script(directory: Path, key: Path, name: str = "signer") -> Path:
    """A stand-in for esia-sign: signs stdin with `key` (raw GOST v2, base64url) using openssl."""
    script = directory / name
    script.write_text(
        "#!/bin/sh\nset -e\n"
        f'OPENSSL_CONF="{gost_openssl_conf(directory)}" openssl dgst -md_gost12_256 -sign "{key}"'
        " | base64 -w0 | tr '+/' '-_' | tr -d '='\n"
    )
    script.chmod(0o755)
    return script


def test_a_signature_of_the_certificates_key_passes_and_another_keys_fails(workdir):
    mine = make_cert(workdir, "gost2012_256", name="mine")
    other = make_cert(workdir, "gost2012_256", name="other")
    der = mine.der_path.read_bytes()
    good = esia.signer_self_check(str(signer_script(workdir, mine.key_path, "good")), None, der, {"v2": "m"})
    assert good["ok"], good
    assert good["modes"]["v2"]["verified"] and good["modes"]["v2"]["tamper_rejected"]
    assert good["modes"]["v2"]["signature_bytes"] == 64
    bad = esia.signer_self_check(str(signer_script(workdir, other.key_path, "bad")), None, der, {"v2": "m"})
    assert not bad["ok"]
    assert bad["error"].startswith("v2: the signature does not verify against the certificate")


def test_a_failing_signer_is_reported_with_its_message(workdir):
    broken = workdir / "broken"
    broken.write_text('#!/bin/sh\necho "cannot open the key container" >&2\nexit 3\n')
    broken.chmod(0o755)
    der = make_cert(workdir, "gost2012_256", name="any").der_path.read_bytes()
    result = esia.signer_self_check(str(broken), None, der, {"v2": "m", "v1": "m"})
    assert not result["ok"]
    assert "exited 3: cannot open the key container" in result["error"]
    assert set(result["modes"]) == {"v2", "v1"}
    assert not any(entry["signed"] for entry in result["modes"].values())


PREVIOUS = {
    "ok": True,
    "signer": "/usr/local/bin/esia-sign",
    "run_as": "esia-portal",
    "certificate_sha1": "AB" * 20,
    "state": "s",
    "timestamp": "t",
    "modes": {
        "v2": {
            "ok": True,
            "error": "",
            "message": "m",
            "signature_bytes": 64,
            "verified": True,
            "tamper_rejected": True,
            "digest": "md_gost12_256",
        }
    },
}


@pytest.mark.parametrize(
    ("change", "reused"),
    [
        ({}, True),
        ({"ok": False}, False),
        ({"signer": "/opt/other-sign"}, False),
        ({"run_as": "root"}, False),
        ({"certificate_sha1": "CD" * 20}, False),
        ({"modes": {"v1": PREVIOUS["modes"]["v2"]}}, False),
    ],
)
def test_the_cryptopro_roles_result_is_reused_only_for_the_same_signer_account_certificate_and_mode(change, reused):
    previous = {**PREVIOUS, **change}
    assert host_module.reusable(previous, "/usr/local/bin/esia-sign", "esia-portal", "AB" * 20, "v2") is reused


def test_a_reused_result_signs_nothing(tmp_path):
    params = {"api_version": "v2", "previous": PREVIOUS, "run_as": "esia-portal", "client_id": "C", "scope": "openid",
              "scope_org": "", "redirect_uri": "", "timeout": 5}  # fmt: skip
    # the signer does not exist: reusing must not call it
    signed, verified = host_module.self_check(params, "/usr/local/bin/esia-sign", b"0", "AB" * 20)
    assert signed["reused"] and signed["ok"] and signed["signature_bytes"] == 64
    assert verified["ok"] and verified["digest"] == "md_gost12_256"
    params["previous"] = {**PREVIOUS, "certificate_sha1": "CD" * 20}
    signed, verified = host_module.self_check(params, str(tmp_path / "no-signer"), b"0", "AB" * 20)
    assert not signed["ok"] and not signed["reused"]
    assert "does not exist" in signed["error"]
    assert verified["error"] == "not attempted: signing failed"


def ids() -> tuple[int, int]:
    return os.getuid(), os.getgid()


def test_ensure_file_writes_once_and_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "conf")
    actions, diff = files.ensure_file(path, b"a\n", *ids(), 0o640, check=True)
    assert actions == [f"write {path}"] and diff["after"] == "a\n"
    assert not os.path.exists(path)
    files.ensure_file(path, b"a\n", *ids(), 0o640, check=False)
    assert Path(path).read_bytes() == b"a\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert files.ensure_file(path, b"a\n", *ids(), 0o640, check=False) == ([], None)
    os.chmod(path, 0o644)
    assert files.ensure_file(path, b"a\n", *ids(), 0o640, check=False)[0] == [f"set owner and mode 640 of {path}"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_secret_files_diff_does_not_show_it(tmp_path):
    _, diff = files.ensure_file(str(tmp_path / "pin"), b"sentinel-pin", *ids(), 0o600, check=True, secret=True)
    assert "sentinel-pin" not in repr(diff)


def test_a_file_that_fails_its_check_leaves_the_old_one(tmp_path):
    path = tmp_path / "conf"
    path.write_bytes(b"old\n")
    with pytest.raises(ValueError, match="failed its check"):
        files.ensure_file(str(path), b"new\n", *ids(), 0o644, check=False, validate="grep -q good %s")
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["conf"]
    files.ensure_file(str(path), b"good\n", *ids(), 0o644, check=False, validate="grep -q good %s")
    assert path.read_bytes() == b"good\n"


def test_ensure_directory(tmp_path):
    path = str(tmp_path / "d" / "e")
    assert files.ensure_directory(path, *ids(), 0o750, check=True) == [f"create the directory {path} (750)"]
    assert not os.path.exists(path)
    assert files.ensure_directory(path, *ids(), 0o750, check=False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o750
    assert files.ensure_directory(path, *ids(), 0o750, check=False) == []


def test_signature_of_v1_cms_made_by_openssl_verifies(workdir):
    """v1: a detached CMS with the signer's certificate embedded (what OpenSSL's backend makes)."""
    cert = make_cert(workdir, "gost2012_256", name="cms")
    message = workdir / "message"
    message.write_bytes(b"hello")
    out = workdir / "sig.der"
    openssl("cms", "-sign", "-binary", "-in", message, "-signer", cert.pem_path, "-inkey", cert.key_path,
            "-outform", "DER", "-out", out, directory=workdir)  # fmt: skip
    with esia_tempdir() as tmp:
        verdict = esia.check(esia.OpenSSL("openssl", "gost", tmp), cert.der_path.read_bytes(), "hello",
                             out.read_bytes(), "v1")  # fmt: skip
    assert verdict["ok"], verdict
    assert base64.b64encode(out.read_bytes())


def esia_tempdir():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="esia-test-")
