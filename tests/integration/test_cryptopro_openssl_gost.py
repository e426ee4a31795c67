"""playbooks/cryptopro.yml with the openssl_gost backend on a throw-away lab
host (podman + systemd), after base.yml.

Everything the esia_client role relies on is checked from the controller with
independent tools: the DER certificate is read with `cryptography` by OID,
esia-sign's v2 and v1 signatures (made on the host by root and by the service
account) are verified here with the OpenSSL GOST engine, and the local fact is
compared with what OpenSSL computes from the DER."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.certs import OpenSSLError, gost_engine_available, gost_openssl_conf, openssl, openssl_streebog256
from tests.harness import LAB_INVENTORY, PlaybookRun, ansible_playbook, environment, lab_host

pytestmark = pytest.mark.slow

CONTAINER = "esia-lab-gost"
HTTP_PORT, HTTPS_PORT = 38280, 38743
HOME = "/var/lib/esia-portal"
DER = f"{HOME}/esia/esia_99.cer"
KEY = f"{HOME}/private/esia_99.key"
PIN_FILE = f"{HOME}/private/esia_99.pin"
PIN = "lab-pin-99"  # the lab vault's vault_cryptopro_pin (public on purpose)
FACT = "/etc/ansible/facts.d/esia_cryptopro.fact"
GOST2012_256_KEY = "1.2.643.7.1.1.1.1"
GOST2012_256_SIGNATURE = "1.2.643.7.1.1.3.2"
AS_SERVICE_ACCOUNT = ("setpriv", "--reuid=esia-portal", "--regid=esia-portal", "--init-groups")


def host(*cmd: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", "exec", "-i", CONTAINER, *cmd], input=stdin, capture_output=True, env=environment(), check=check
    )


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cryptopro-gost")
    assert gost_engine_available(directory), "apt-get install libengine-gost-openssl (the controller verifies)"
    return directory


@pytest.fixture(scope="module")
def lab(workdir) -> Iterator[dict]:
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        extra = {**extra, "portal_artifacts_root": str(workdir / "artifacts")}
        env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts")}
        base = ansible_playbook("playbooks/base.yml", extra_vars=extra, env=env)
        assert base.rc == 0, base.output[-3000:]
        fresh_check = cryptopro(extra, env, "--check", "--diff")
        first = cryptopro(extra, env)
        assert first.rc == 0, first.output[-4000:]
        yield {"extra": extra, "env": env, "first": first, "fresh_check": fresh_check, "workdir": workdir}


def cryptopro(extra: dict, env: dict, *args: str, **more) -> PlaybookRun:
    return ansible_playbook("playbooks/cryptopro.yml", LAB_INVENTORY, *args, extra_vars={**extra, **more}, env=env)


@pytest.fixture(scope="module")
def der(lab) -> bytes:
    return host("cat", DER).stdout


def test_check_mode_on_a_fresh_host_does_not_fail(lab):
    run = lab["fresh_check"]
    assert run.rc == 0, run.output[-3000:]
    # a warning of cryptopro_key, folded to the terminal width
    assert "[WARNING]: Check mode: lab-portal has no key container yet" in " ".join(run.output.split())


def test_der_is_a_gost_2012_256_certificate(der):
    certificate = x509.load_der_x509_certificate(der)
    assert certificate.public_key_algorithm_oid.dotted_string == GOST2012_256_KEY
    assert certificate.signature_algorithm_oid.dotted_string == GOST2012_256_SIGNATURE
    organisation = certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value
    assert organisation == "ГБУЗ «МИАЦ» (лаборатория)"
    ogrn = certificate.subject.get_attributes_for_oid(x509.ObjectIdentifier("1.2.643.100.1"))[0].value
    inn = certificate.subject.get_attributes_for_oid(x509.ObjectIdentifier("1.2.643.100.4"))[0].value
    assert (ogrn, inn) == ("1027799000008", "7700990003")


def test_controller_copy_is_the_hosts_der(lab, der):
    assert (lab["workdir"] / "artifacts" / "99" / "certificate" / "esia_99.cer").read_bytes() == der
    request = (lab["workdir"] / "artifacts" / "99" / "certificate" / "esia_99.req").read_text()
    assert request.startswith("-----BEGIN CERTIFICATE REQUEST-----")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"{HOME}/private", "700 esia-portal esia-portal"),
        (KEY, "600 esia-portal esia-portal"),
        (PIN_FILE, "600 esia-portal esia-portal"),
        (f"{HOME}/esia", "750 esia-portal esia-portal"),
        (DER, "644 esia-portal esia-portal"),
        ("/usr/local/bin/esia-sign", "755 root root"),
        ("/etc/esia-onboard/esia-sign.json", "640 root esia-portal"),
    ],
)
def test_permissions(lab, path, expected):
    assert host("stat", "-c", "%a %U %G", path).stdout.decode().strip() == expected


def test_key_is_encrypted_with_the_pin(lab):
    head = host("head", "-1", KEY).stdout.decode().strip()
    assert head == "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    assert host("cat", PIN_FILE).stdout.decode() == PIN


def test_system_openssl_configuration_is_untouched(lab):
    assert b"gost" not in host("cat", "/etc/ssl/openssl.cnf").stdout.lower()


@pytest.mark.parametrize("as_service_account", [False, True], ids=["root", "service-account"])
def test_v2_signature_verifies_with_the_certificate(lab, der, workdir, as_service_account):
    message = b"MIAC99PORTALopenid fullname2026.11.25 20:00:00 +03004b0f3c6e-3f5b-4c8a-9a7d-1d5b2c3e4f50"
    prefix = AS_SERVICE_ACCOUNT if as_service_account else ()
    signature = b64url_decode(host(*prefix, "esia-sign", "--mode", "v2", stdin=message).stdout.decode())
    assert len(signature) == 64
    (workdir / "cert.der").write_bytes(der)
    (workdir / "message").write_bytes(message)
    (workdir / "raw.sig").write_bytes(signature)
    openssl("x509", "-inform", "DER", "-in", workdir / "cert.der", "-pubkey", "-noout", "-out", workdir / "pub.pem",
            directory=workdir)  # fmt: skip
    verified = openssl("dgst", "-md_gost12_256", "-verify", workdir / "pub.pem", "-signature", workdir / "raw.sig",
                       workdir / "message", directory=workdir)  # fmt: skip
    assert verified.strip() == b"Verified OK"


def test_v2_signature_of_another_message_does_not_verify(lab, der, workdir):
    signature = b64url_decode(host("esia-sign", "--mode", "v2", stdin=b"one message").stdout.decode())
    (workdir / "cert.der").write_bytes(der)
    (workdir / "other").write_bytes(b"another message")
    (workdir / "other.sig").write_bytes(signature)
    openssl("x509", "-inform", "DER", "-in", workdir / "cert.der", "-pubkey", "-noout", "-out", workdir / "pub.pem",
            directory=workdir)  # fmt: skip
    result = subprocess.run(
        ["openssl", "dgst", "-md_gost12_256", "-verify", str(workdir / "pub.pem"), "-signature",
         str(workdir / "other.sig"), str(workdir / "other")],
        env={"OPENSSL_CONF": str(gost_openssl_conf(workdir)), "PATH": "/usr/bin:/bin"}, capture_output=True,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0


@pytest.mark.parametrize("as_service_account", [False, True], ids=["root", "service-account"])
def test_v1_detached_cms_verifies_with_the_certificate(lab, der, workdir, as_service_account):
    message = b"openid2026.11.25 20:00:00 +0300MIAC99PORTALstate-1"
    prefix = AS_SERVICE_ACCOUNT if as_service_account else ()
    cms = b64url_decode(host(*prefix, "esia-sign", "--mode", "v1", stdin=message).stdout.decode())
    assert cms[:1] == b"\x30"  # DER SEQUENCE
    (workdir / "cert.der").write_bytes(der)
    openssl("x509", "-inform", "DER", "-in", workdir / "cert.der", "-out", workdir / "cert.pem", directory=workdir)
    (workdir / "v1.msg").write_bytes(message)
    (workdir / "v1.sig").write_bytes(cms)
    openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", workdir / "v1.sig", "-content", workdir / "v1.msg",
            "-certfile", workdir / "cert.pem", "-noverify", "-out", "/dev/null", directory=workdir)  # fmt: skip
    # Issue 13 point 4: the v1 CMS carries the signer's certificate (no -nocerts), as cryptcp's does.
    openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", workdir / "v1.sig", "-content", workdir / "v1.msg",
            "-noverify", "-out", "/dev/null", directory=workdir)  # fmt: skip
    embedded = openssl("pkcs7", "-inform", "DER", "-in", workdir / "v1.sig", "-print_certs", directory=workdir)
    assert (workdir / "cert.pem").read_bytes().strip() in embedded


def test_signer_refuses_an_empty_message_and_never_takes_a_pin_argument(lab):
    empty = host("esia-sign", stdin=b"", check=False)
    assert empty.returncode == 1
    assert b"empty" in empty.stderr
    with_pin = host("esia-sign", "--pin", PIN, stdin=b"x", check=False)
    assert with_pin.returncode == 2


def test_local_fact_matches_the_der(lab, der, workdir):
    fact = json.loads(host("cat", FACT).stdout)
    (workdir / "fact.der").write_bytes(der)
    assert fact["backend"] == "openssl_gost"
    assert fact["container"] == "esia_99"
    assert fact["provider_type"] == 80
    assert fact["certificate_der"] == DER
    assert fact["signer"] == "/usr/local/bin/esia-sign"
    assert fact["streebog256"] == openssl_streebog256(workdir / "fact.der")
    sha1 = openssl("x509", "-inform", "DER", "-in", workdir / "fact.der", "-noout", "-fingerprint", "-sha1",
                   directory=workdir).decode().split("=")[1].replace(":", "").strip()  # fmt: skip
    assert fact["sha1_thumbprint"] == sha1
    assert fact["key_algorithm"] == "gost2012_256"


def test_second_run_changes_nothing(lab):
    run = cryptopro(lab["extra"], lab["env"])
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0, run.output[-4000:]


def test_check_diff_on_the_converged_host_changes_nothing(lab):
    run = cryptopro(lab["extra"], lab["env"], "--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0, run.output[-4000:]


def test_pin_never_appears_in_the_output(lab):
    assert PIN not in lab["first"].output


def test_subject_change_renews_request_and_certificate_but_keeps_the_key(lab, der):
    key_before = host("sha256sum", KEY).stdout
    subject = [{"type": "C", "value": "RU"}, {"type": "CN", "value": "esia test renewal"}]
    run = cryptopro(lab["extra"], lab["env"], cryptopro_subject=subject)
    assert run.rc == 0, run.output[-3000:]
    assert host("sha256sum", KEY).stdout == key_before
    renewed = x509.load_der_x509_certificate(host("cat", DER).stdout)
    assert renewed.subject.rfc4514_string() == "CN=esia test renewal,C=RU"
    assert renewed.public_key_algorithm_oid.dotted_string == GOST2012_256_KEY


def test_wrong_pin_fails_with_a_clear_message_and_keeps_the_key(lab):
    key_before = host("sha256sum", KEY).stdout
    run = cryptopro(lab["extra"], lab["env"], cryptopro_pin="another-pin")
    try:
        assert run.rc != 0
        assert "does not open with cryptopro_pin" in run.output
        assert "another-pin" not in run.output
        assert host("sha256sum", KEY).stdout == key_before
    finally:
        restored = cryptopro(lab["extra"], lab["env"])
        assert restored.rc == 0, restored.output[-3000:]


def test_private_key_export_is_pkcs8_der_0600_and_opens_with_the_pin(lab, workdir):
    run = cryptopro(lab["extra"], lab["env"], cryptopro_export_private_key=True)
    assert run.rc == 0, run.output[-3000:]
    assert "WARNING: cryptopro_export_private_key is true" in run.output
    exported = workdir / "artifacts" / "99" / "private" / "esia_99.p8.der"
    assert oct(exported.stat().st_mode & 0o777) == "0o600"
    assert oct(exported.parent.stat().st_mode & 0o777) == "0o700"
    assert host("stat", "-c", "%a %U", f"{HOME}/private/esia_99.p8.der").stdout.decode().split() == [
        "600",
        "esia-portal",
    ]
    (workdir / "pin").write_text(PIN)
    plain = openssl("pkcs8", "-inform", "DER", "-in", exported, "-passin", f"file:{workdir / 'pin'}", "-nocrypt",
                    "-topk8", "-outform", "PEM", directory=workdir)  # fmt: skip
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    with pytest.raises(OpenSSLError, match="pkcs8"):
        openssl("pkcs8", "-inform", "DER", "-in", exported, "-passin", "pass:wrong", directory=workdir)
