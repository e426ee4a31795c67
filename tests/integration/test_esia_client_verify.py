"""library/esia_signature_verify.py with the real OpenSSL GOST engine: it accepts what a GOST key
signed, and rejects another key's signature, a changed message and a broken certificate.

Signatures are made here with the `openssl` CLI directly (tests/certs.py), not with the module."""

from __future__ import annotations

import base64
import importlib.util
import shutil
import tempfile
from pathlib import Path

import ansible.module_utils
import pytest

from tests.certs import CertFiles, gost_workdir, make_cert, openssl

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))
_spec = importlib.util.spec_from_file_location("esia_signature_verify", REPO / "library" / "esia_signature_verify.py")
verify_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(verify_module)

MESSAGE = (
    "MIAC77PORTAL"
    "openid fullname snils"
    "2025.09.02 13:00:29 +0300"
    "4b4e2a3c-6e3f-4d7a-9a3e-0c1f5f6a7b8c"
    "https://zapis.miac77.ru/esia/callback"
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return gost_workdir(tmp_path_factory, "esia-verify")


@pytest.fixture(scope="module")
def certs(workdir) -> dict[str, CertFiles]:
    return {
        "gost256": make_cert(workdir, "gost2012_256", name="is-256"),
        "other256": make_cert(workdir, "gost2012_256", name="other-256"),
        "gost512": make_cert(workdir, "gost2012_512", name="is-512"),
    }


def raw_signature(cert: CertFiles, message: str, digest: str, workdir: Path) -> str:
    path = workdir / "message.txt"
    path.write_bytes(message.encode("utf-8"))
    raw = openssl("dgst", f"-{digest}", "-sign", cert.key_path, path, directory=workdir)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cms_signature(cert: CertFiles, message: str, workdir: Path) -> str:
    path = workdir / "message-cms.txt"
    path.write_bytes(message.encode("utf-8"))
    der = openssl(
        "cms", "-sign", "-binary", "-noattr", "-nocerts", "-outform", "DER",
        "-signer", cert.pem_path, "-inkey", cert.key_path, "-in", path, directory=workdir,
    )  # fmt: skip
    return base64.urlsafe_b64encode(der).decode().rstrip("=")


def check(cert: CertFiles, message: str, signature: str, mode: str = "v2") -> dict:
    # The module runs openssl with -engine gost and no OPENSSL_CONF of ours, as on a controller.
    with tempfile.TemporaryDirectory() as directory:
        runner = verify_module.OpenSSL(shutil.which("openssl"), "gost", directory)
        der = base64.b64encode(cert.der).decode()
        return verify_module.check(
            runner, verify_module.certificate_der(der), message, verify_module.decode_base64url(signature), mode
        )


def test_v2_signature_of_the_certificates_key_verifies(certs, workdir):
    result = check(certs["gost256"], MESSAGE, raw_signature(certs["gost256"], MESSAGE, "md_gost12_256", workdir))
    assert result == {"ok": True, "error": "", "verified": True, "tamper_rejected": True, "digest": "md_gost12_256"}


def test_512_bit_key_is_verified_with_streebog_512(certs, workdir):
    result = check(certs["gost512"], MESSAGE, raw_signature(certs["gost512"], MESSAGE, "md_gost12_512", workdir))
    assert result["ok"] is True
    assert result["digest"] == "md_gost12_512"


def test_signature_by_another_key_is_rejected(certs, workdir):
    signature = raw_signature(certs["other256"], MESSAGE, "md_gost12_256", workdir)
    result = check(certs["gost256"], MESSAGE, signature)
    assert result["ok"] is False
    assert result["verified"] is False
    assert "another key" in result["error"]


def test_signature_over_another_message_is_rejected(certs, workdir):
    signature = raw_signature(certs["gost256"], MESSAGE + "x", "md_gost12_256", workdir)
    assert check(certs["gost256"], MESSAGE, signature)["ok"] is False


def test_byte_reversed_signature_is_rejected(certs, workdir):
    # What CryptoPro's csptest prints before the signer reverses it: must not pass for OpenSSL's order.
    signature = raw_signature(certs["gost256"], MESSAGE, "md_gost12_256", workdir)
    reversed_signature = base64.urlsafe_b64encode(verify_module.decode_base64url(signature)[::-1]).decode()
    assert check(certs["gost256"], MESSAGE, reversed_signature)["ok"] is False


def test_wrong_signature_length_is_named(certs):
    result = check(certs["gost256"], MESSAGE, base64.urlsafe_b64encode(b"\x01" * 32).decode())
    assert result["ok"] is False
    assert "32" in result["error"]


def test_pem_certificate_is_accepted_too(certs, workdir):
    signature = raw_signature(certs["gost256"], MESSAGE, "md_gost12_256", workdir)
    der = verify_module.certificate_der(certs["gost256"].pem)
    assert der == certs["gost256"].der
    with tempfile.TemporaryDirectory() as directory:
        runner = verify_module.OpenSSL(shutil.which("openssl"), "gost", directory)
        result = verify_module.check(runner, der, MESSAGE, verify_module.decode_base64url(signature), "v2")
    assert result["ok"] is True


def test_garbage_certificate_is_refused():
    with pytest.raises(ValueError, match="not DER"):
        verify_module.certificate_der(base64.b64encode(b"\x04\x05not a certificate").decode())
    with pytest.raises(ValueError, match="neither PEM nor base64"):
        verify_module.certificate_der("%%% not base64 %%%")


def test_v1_detached_cms_verifies_and_a_changed_message_does_not(certs, workdir):
    v1_message = "openid fullname2025.09.02 13:00:29 +0300MIAC77PORTAL4b4e2a3c-6e3f-4d7a-9a3e-0c1f5f6a7b8c"
    signature = cms_signature(certs["gost256"], v1_message, workdir)
    result = check(certs["gost256"], v1_message, signature, mode="v1")
    assert result["ok"] is True, result
    assert result["tamper_rejected"] is True
    assert check(certs["other256"], v1_message, signature, mode="v1")["ok"] is False
