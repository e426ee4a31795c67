"""playbooks/cryptopro.yml with the cryptopro backend against the CryptoPro
TEST DOUBLE (tests/doubles/cryptopro), on a throw-away lab host.

CryptoPro CSP cannot be installed here. The double is packaged as a fake
vendor archive (a real .deb with install.sh), so what is exercised is the
role's side: preflight of the archive, the version guard around install.sh,
licence and RNG configuration, the command lines it builds (read back from the
double's log), the parsing of csptest/certmgr output for idempotence, the
request-then-certificate flow, and esia-sign's byte reversal of csptest's
signature (verified here with the OpenSSL GOST engine). What this does NOT
prove about a real CSP is listed in roles/cryptopro/README.md."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.certs import OpenSSLError, gost_engine_available, make_cert, openssl
from tests.doubles.cryptopro.build_archive import build_archive
from tests.harness import LAB_INVENTORY, PlaybookRun, ansible_playbook, environment, lab_host

pytestmark = pytest.mark.slow

CONTAINER = "esia-test-gost-double"
HTTP_PORT, HTTPS_PORT = 38290, 38753
DER = "/var/lib/esia-portal/esia/esia_99.cer"
FACT = "/etc/ansible/facts.d/esia_cryptopro.fact"
PIN = "lab-pin-99"
LICENSE = "4040E-Q000K-9KAC2-0RXAW-F5CZY"
FQCN = "\\\\.\\HDIMAGE\\esia_99"


def host(*cmd: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", "exec", "-i", CONTAINER, *cmd], input=stdin, capture_output=True, env=environment(), check=check
    )


def double_calls(tool: str) -> list[dict]:
    logs = host("sh", "-c", "cat /var/log/cprocsp-double/calls-*.log").stdout.decode()
    lines = logs.splitlines()
    return [call for call in map(json.loads, lines) if call["tool"] == tool]


def installs() -> int:
    return len(host("cat", "/var/log/cprocsp-double-install.log", check=False).stdout.decode().splitlines())


def b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cryptopro-double")
    assert gost_engine_available(directory), "apt-get install libengine-gost-openssl (the controller verifies)"
    return directory


@pytest.fixture(scope="module")
def lab(workdir) -> Iterator[dict]:
    archive = build_archive(workdir / "linux-amd64_deb.tgz", "5.0.99999-1")
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        extra = {
            **extra,
            "portal_artifacts_root": str(workdir / "artifacts"),
            "cryptopro_backend": "cryptopro",
            "cryptopro_distribution": str(archive),
            "cryptopro_distribution_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        }
        env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts")}
        base = ansible_playbook("playbooks/base.yml", extra_vars=extra, env=env)
        assert base.rc == 0, base.output[-3000:]
        yield {"extra": extra, "env": env, "workdir": workdir, "archive": archive}


def cryptopro(lab: dict, *args: str, **more) -> PlaybookRun:
    return ansible_playbook(
        "playbooks/cryptopro.yml", LAB_INVENTORY, *args, extra_vars={**lab["extra"], **more}, env=lab["env"]
    )


@pytest.fixture(scope="module")
def request_run(lab) -> PlaybookRun:
    """The first real run: CSP installed, container and request made, no certificate yet."""
    check = cryptopro(lab, "--check")
    assert check.rc == 0, check.output[-3000:]
    run = cryptopro(lab)
    assert run.rc == 0, run.output[-4000:]
    return run


@pytest.fixture(scope="module")
def issued(lab, request_run) -> Path:
    """The test CA's certificate for the fetched request (what an operator gets from a CA)."""
    workdir = lab["workdir"]
    ca = make_cert(workdir / "ca", "gost2012_256", subject="/C=RU/CN=Test GOST CA", ca=True, name="test-ca")
    out = workdir / "issued.cer"
    openssl(
        "x509", "-req", "-in", workdir / "artifacts" / "99" / "certificate" / "esia_99.req", "-CA", ca.pem_path,
        "-CAkey", ca.key_path, "-set_serial", "0x5EED", "-days", "60", "-md_gost12_256", "-outform", "DER",
        "-out", out, directory=workdir,
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def converged(lab, issued) -> PlaybookRun:
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_license_serial=LICENSE)
    assert run.rc == 0, run.output[-4000:]
    return run


# ------------------------------------------------------------------ preflight


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"cryptopro_distribution": ""}, "cryptopro_distribution is empty"),
        ({"cryptopro_distribution": "/nonexistent/linux-amd64_deb.tgz"}, "does not exist on the controller"),
        ({"cryptopro_distribution_sha256": "0" * 64}, "cryptopro_distribution_sha256 does not match"),
    ],
)
def test_unusable_archive_fails_before_the_host_is_touched(lab, override, message):
    run = cryptopro(lab, **override)
    assert run.rc != 0
    assert message in run.output
    assert host("test", "-e", "/var/cache/esia-onboard", check=False).returncode != 0
    assert host("test", "-e", "/etc/esia-onboard", check=False).returncode != 0


# ------------------------------------------------------------------ first run


def test_first_run_installs_once_and_stops_at_the_request(lab, request_run):
    assert installs() == 1
    assert "certificate request are ready" in request_run.output
    assert host("test", "-e", FACT, check=False).returncode != 0
    request = x509.load_pem_x509_csr((lab["workdir"] / "artifacts" / "99" / "certificate" / "esia_99.req").read_bytes())
    assert request.signature_algorithm_oid.dotted_string == "1.2.643.7.1.1.3.2"
    assert request.subject.get_attributes_for_oid(x509.ObjectIdentifier("1.2.643.100.4"))[0].value == "7700990003"
    assert request.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)[0].value == "RU"


def test_container_is_made_headless_by_the_service_account_with_the_documented_arguments(request_run):
    rng = [call["argv"] for call in double_calls("cpconfig") if "rndm" in call["argv"] and "-view" not in call["argv"]]
    assert ["-hardware", "rndm", "-add", "cpsd", "-name", "cpsd rng", "-level", "3"] in rng
    newkeyset = [call for call in double_calls("csptest") if "-newkeyset" in call["argv"]]
    assert len(newkeyset) == 1
    call = newkeyset[0]
    assert call["user"] == "esia-portal"
    argv = call["argv"]
    assert argv[argv.index("-container") + 1] == FQCN
    assert argv[argv.index("-provtype") + 1] == "80"
    assert argv[argv.index("-keytype") + 1] == "exchange"
    assert "-exportable" not in argv
    assert argv[argv.index("-password") + 1] == "***"
    request = next(call for call in double_calls("cryptcp") if "-creatrqst" in call["argv"])
    assert request["user"] == "esia-portal"
    assert request["argv"][request["argv"].index("-dn") + 1].startswith("C=RU, O=")
    assert {"-nokeygen", "-both", "-ku"} <= set(request["argv"])


def test_key_container_files_belong_to_the_service_account(request_run):
    listing = host("sh", "-c", "stat -c '%a %U %n' /var/opt/cprocsp/keys/esia-portal/esia_99.000/*").stdout.decode()
    lines = listing.splitlines()
    assert lines
    assert all(line.startswith("600 esia-portal ") for line in lines), listing


# ------------------------------------------------------------------ certificate


def test_issued_certificate_is_installed_exported_and_described(lab, converged, issued):
    assert host("cat", DER).stdout == issued.read_bytes()
    assert (lab["workdir"] / "artifacts" / "99" / "certificate" / "esia_99.cer").read_bytes() == issued.read_bytes()
    fact = json.loads(host("cat", FACT).stdout)
    assert fact["backend"] == "cryptopro"
    assert fact["container_fqcn"] == FQCN
    assert fact["sha1_thumbprint"] == hashlib.sha1(issued.read_bytes()).hexdigest().upper()
    assert fact["self_signed"] is False
    install = next(call for call in double_calls("certmgr") if "-inst" in call["argv"])
    assert install["user"] == "esia-portal"
    assert install["argv"][install["argv"].index("-cont") + 1] == FQCN


def test_v2_signature_is_byte_reversed_and_verifies(lab, converged, issued):
    workdir = lab["workdir"]
    message = b"MIAC99PORTALopenid2026.11.25 20:00:00 +0300state"
    signature = b64url_decode(host("esia-sign", "--mode", "v2", stdin=message).stdout.decode())
    (workdir / "message").write_bytes(message)
    (workdir / "v2.sig").write_bytes(signature)
    (workdir / "v2-reversed.sig").write_bytes(signature[::-1])
    openssl(
        "x509", "-inform", "DER", "-in", issued, "-pubkey", "-noout", "-out", workdir / "pub.pem", directory=workdir
    )
    verify = ("dgst", "-md_gost12_256", "-verify", workdir / "pub.pem", "-signature")
    assert openssl(*verify, workdir / "v2.sig", workdir / "message", directory=workdir).strip() == b"Verified OK"
    with pytest.raises(OpenSSLError, match=r"signature mismatch|Verification failure"):
        openssl(*verify, workdir / "v2-reversed.sig", workdir / "message", directory=workdir)


def test_v1_signature_made_with_cryptcp_verifies(lab, converged, issued):
    workdir = lab["workdir"]
    message = b"openid2026.11.25 20:00:00 +0300MIAC99PORTALstate"
    cms = b64url_decode(host("esia-sign", "--mode", "v1", stdin=message).stdout.decode())
    (workdir / "v1.msg").write_bytes(message)
    (workdir / "v1.sig").write_bytes(cms)
    openssl("x509", "-inform", "DER", "-in", issued, "-out", workdir / "issued.pem", directory=workdir)
    openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", workdir / "v1.sig", "-content", workdir / "v1.msg",
            "-certfile", workdir / "issued.pem", "-noverify", "-out", "/dev/null", directory=workdir)  # fmt: skip


def test_licence_is_set_and_secrets_stay_out_of_the_output(converged):
    assert LICENSE not in converged.output
    assert PIN not in converged.output
    assert ["-license", "-set", "***"] in [call["argv"] for call in double_calls("cpconfig")]
    view = host("/opt/cprocsp/sbin/amd64/cpconfig", "-license", "-view").stdout.decode()
    assert LICENSE.replace("-", "") in view


def test_next_run_changes_nothing_and_never_reinstalls(lab, converged, issued):
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_license_serial=LICENSE)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0, run.output[-4000:]
    assert installs() == 1
    assert len([c for c in double_calls("csptest") if "-newkeyset" in c["argv"]]) == 1


def test_check_diff_on_the_converged_host_changes_nothing(lab, converged, issued):
    run = cryptopro(lab, "--check", "--diff", cryptopro_certificate_file=str(issued), cryptopro_license_serial=LICENSE)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0, run.output[-4000:]


def test_certificate_for_another_key_is_refused(lab, converged):
    other = make_cert(lab["workdir"] / "other", "gost2012_256", subject="/C=RU/CN=someone else", name="other")
    run = cryptopro(lab, cryptopro_certificate_file=str(other.der_path))
    assert run.rc != 0
    assert "Public keys in certificate and container are not identical" in run.output
    assert "was issued for another key" in run.output
    assert PIN not in run.output


def test_private_key_of_a_non_exportable_container_is_not_exported(lab, converged, issued):
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_export_private_key=True)
    assert run.rc != 0
    assert "without cryptopro_exportable" in run.output
    assert not (lab["workdir"] / "artifacts" / "99" / "private" / "esia_99.pfx").exists()


def test_a_new_csp_version_is_installed_once_and_keeps_the_container(lab, converged, issued):
    (lab["workdir"] / "newer").mkdir()
    newer = build_archive(lab["workdir"] / "newer" / "linux-amd64_deb.tgz", "5.0.99999-2")
    upgrade = {
        "cryptopro_distribution": str(newer),
        "cryptopro_distribution_sha256": hashlib.sha256(newer.read_bytes()).hexdigest(),
        "cryptopro_certificate_file": str(issued),
    }
    run = cryptopro(lab, **upgrade)
    assert run.rc == 0, run.output[-3000:]
    assert installs() == 2
    assert host("dpkg-query", "-W", "-f=${Version}", "lsb-cprocsp-base").stdout.decode() == "5.0.99999-2"
    assert len([c for c in double_calls("csptest") if "-newkeyset" in c["argv"]]) == 1
    assert host("esia-sign", stdin=b"still signs").returncode == 0
