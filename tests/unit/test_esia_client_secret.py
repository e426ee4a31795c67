"""library/esia_client_secret.py: the signed string, the timestamp, the signer's output checks and how a
broken signer is reported (fake signers are small shell scripts)."""

from __future__ import annotations

import base64
import datetime
import importlib.util
import os
import re
import stat
import tempfile
from pathlib import Path

import ansible.module_utils
import pytest

REPO = Path(__file__).resolve().parents[2]


_MODULE_UTILS = str(Path(__file__).resolve().parents[2] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "library" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


secret = _load("esia_client_secret")

CLIENT_ID = "MIAC77PORTAL"
SCOPE = "openid fullname"
TIMESTAMP = "2025.09.02 13:00:29 +0300"
STATE = "4b4e2a3c-6e3f-4d7a-9a3e-0c1f5f6a7b8c"
REDIRECT = "https://zapis.miac77.ru/esia/callback"


def test_v2_message_is_client_id_scope_timestamp_state_redirect_uri():
    # The order ESIA documents for v2/ac, written out by hand.
    expected = (
        "MIAC77PORTAL"
        + "openid fullname"
        + "2025.09.02 13:00:29 +0300"
        + STATE
        + "https://zapis.miac77.ru/esia/callback"
    )
    assert secret.build_message("v2", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT) == expected


def test_v3_token_message_appends_the_code():
    message = secret.build_message("v2", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT, code="abc.def")
    assert message.endswith(REDIRECT + "abc.def")
    assert message.startswith(CLIENT_ID + SCOPE)


def test_v1_message_is_scope_timestamp_client_id_state_without_redirect_uri():
    message = secret.build_message("v1", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT)
    assert message == "openid fullname2025.09.02 13:00:29 +0300MIAC77PORTAL" + STATE
    assert REDIRECT not in message


def test_unknown_api_version_is_refused():
    with pytest.raises(ValueError, match="v3"):
        secret.build_message("v3", CLIENT_ID, SCOPE, TIMESTAMP, STATE)


def test_timestamp_has_esia_format_with_numeric_offset():
    moscow = datetime.timezone(datetime.timedelta(hours=3))
    moment = datetime.datetime(2025, 9, 2, 13, 0, 29, tzinfo=moscow)
    assert secret.esia_timestamp(moment) == "2025.09.02 13:00:29 +0300"
    assert re.fullmatch(r"\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d [+-]\d{4}", secret.esia_timestamp())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("length", [64, 128])
def test_raw_gost_signature_of_64_or_128_bytes_is_accepted(length):
    text, raw = secret.check_signature(_b64url(bytes(range(length))) + "\n", "v2")
    assert raw == bytes(range(length))
    assert "=" not in text


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("", "nothing"),
        ("   \n", "nothing"),
        ("abc+def/ghi=", "not base64url"),
        ("Error: key not found", "not base64url"),
        (_b64url(b"x" * 32), "32 bytes"),
        (_b64url(b"x" * 65), "65 bytes"),
    ],
)
def test_bad_v2_signer_output_is_named(output, problem):
    with pytest.raises(ValueError, match=problem):
        secret.check_signature(output, "v2")


def test_v1_signature_must_be_der():
    secret.check_signature(_b64url(b"\x30\x82\x01\x00" + b"\x00" * 256), "v1")
    with pytest.raises(ValueError, match="not DER"):
        secret.check_signature(_b64url(b"\x04" * 64), "v1")


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "esia-sign"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def test_signer_gets_the_message_on_stdin_and_the_mode_as_argument(tmp_path):
    record = tmp_path / "record"
    signer = _script(tmp_path, f'cat > {record}; echo "$@" >> {record}.args; printf AAAA')
    assert secret.sign(signer, "MIAC" + "openid" + "\u0442\u0435\u0441\u0442", "v2", None, 10) == "AAAA"
    assert record.read_text(encoding="utf-8") == "MIACopenid\u0442\u0435\u0441\u0442"  # Cyrillic, as UTF-8
    assert (tmp_path / "record.args").read_text().split() == ["--mode", "v2"]


def test_failing_signer_is_reported_with_its_exit_code_and_stderr(tmp_path):
    signer = _script(tmp_path, 'echo "esia-sign: cannot read PIN file /var/lib/esia-portal/private/pin" >&2; exit 3')
    with pytest.raises(ValueError) as error:
        secret.sign(signer, "msg", "v2", None, 10)
    assert "exited 3" in str(error.value)
    assert "cannot read PIN file" in str(error.value)


def test_missing_signer_points_at_the_cryptopro_playbook(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist.*cryptopro"):
        secret.sign(str(tmp_path / "absent"), "msg", "v2", None, 10)


def test_non_executable_signer_is_named(tmp_path):
    path = tmp_path / "esia-sign"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="not executable"):
        secret.sign(str(path), "msg", "v2", None, 10)


def test_hanging_signer_times_out(tmp_path):
    signer = _script(tmp_path, "sleep 5")
    with pytest.raises(ValueError, match="within 1 s"):
        secret.sign(signer, "msg", "v2", None, 1)


def test_unknown_account_is_named(tmp_path):
    signer = _script(tmp_path, "printf AAAA")
    with pytest.raises(ValueError, match="no-such-account-esia"):
        secret.sign(signer, "msg", "v2", "no-such-account-esia", 10)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching accounts needs root")
def test_signer_runs_as_the_given_account():
    # pytest's tmp_path lives under a 0700 directory the other account cannot enter.
    with tempfile.TemporaryDirectory() as directory:
        Path(directory).chmod(0o755)
        signer = _script(Path(directory), "id -un")
        assert secret.sign(signer, "msg", "v2", "nobody", 10).strip() == "nobody"


def test_scope_org_is_signed_right_after_scope():
    # ilimurzin/esia 4.x, src/Esia/Esia.php: clientId . scopes . organizationScopes . timestamp . state . redirectUrl
    expected = "MIAC77PORTAL" + "openid fullname" + "org_shortname org_ogrn" + TIMESTAMP + STATE + REDIRECT
    message = secret.build_message("v2", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT, None, "org_shortname org_ogrn")
    assert message == expected


def test_scope_org_precedes_the_code_in_the_token_request():
    message = secret.build_message("v2", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT, "CODE1", "org_ogrn")
    assert message.endswith(REDIRECT + "CODE1")
    assert message.index("org_ogrn") == len(CLIENT_ID + SCOPE)


def test_no_scope_org_signs_what_it_always_did():
    assert secret.build_message("v2", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT) == secret.build_message(
        "v2", CLIENT_ID, SCOPE, TIMESTAMP, STATE, REDIRECT, None, ""
    )


def test_scope_org_with_v1_is_refused():
    with pytest.raises(ValueError, match="v2 parameter"):
        secret.build_message("v1", CLIENT_ID, SCOPE, TIMESTAMP, STATE, "", None, "org_ogrn")
