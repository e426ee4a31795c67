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
import os
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


def flat(output: str) -> str:
    """The run's output with YAML-folded lines joined (the callback folds long messages)."""
    return " ".join(output.split())


def role_newkeysets() -> list[dict]:
    """The role's key generations for the region's container (not the probes of the RNG test)."""
    return [c for c in double_calls("csptest") if "-newkeyset" in c["argv"] and FQCN in c["argv"]]


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
    # Stands in for the kis_1 that CryptoPro's genkpim makes (its format is the vendor's; the double
    # only needs a non-empty gamma the service account can read).
    gamma = workdir / "kis_1"
    gamma.write_bytes(os.urandom(864))
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        extra = {
            **extra,
            "portal_artifacts_root": str(workdir / "artifacts"),
            "cryptopro_backend": "cryptopro",
            "cryptopro_distribution": str(archive),
            "cryptopro_distribution_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
            "cryptopro_rng_gamma_file": str(gamma),
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
        ({"cryptopro_rng_gamma_file": ""}, "cryptopro_rng_gamma_file: got ''; the cryptopro backend needs the gamma"),
        ({"cryptopro_rng_gamma_file": "/nonexistent/kis_1"}, "no such non-empty file on the controller"),
        ({"cryptopro_provider_type": 81}, "81 (a 512-bit key) is refused for the ESIA signer"),
    ],
)
def test_unusable_archive_fails_before_the_host_is_touched(lab, override, message):
    run = cryptopro(lab, **override)
    assert run.rc != 0
    assert message in flat(run.output)
    assert host("test", "-e", "/var/cache/esia-onboard", check=False).returncode != 0
    assert host("test", "-e", "/etc/esia-onboard", check=False).returncode != 0


# ------------------------------------------------------------------ first run


def test_first_run_installs_once_and_stops_at_the_request(lab, request_run):
    assert installs() == 1
    # A fresh install has the Demo licence: a warning in the test environment.
    assert "WARNING: the installed CryptoPro CSP licence is a Demo licence" in flat(request_run.output)
    assert "certificate request are ready" in request_run.output
    assert host("test", "-e", FACT, check=False).returncode != 0
    request = x509.load_pem_x509_csr((lab["workdir"] / "artifacts" / "99" / "certificate" / "esia_99.req").read_bytes())
    assert request.signature_algorithm_oid.dotted_string == "1.2.643.7.1.1.3.2"
    assert request.subject.get_attributes_for_oid(x509.ObjectIdentifier("1.2.643.100.4"))[0].value == "7700990003"
    assert request.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)[0].value == "RU"


def test_container_is_made_headless_by_the_service_account_with_the_documented_arguments(request_run):
    rng = [call["argv"] for call in double_calls("cpconfig") if "rndm" in call["argv"] and "-view" not in call["argv"]]
    assert ["-hardware", "rndm", "-del", "bio_tui"] in rng
    assert ["-hardware", "rndm", "-add", "cpsd", "-name", "cpsd rng", "-level", "3"] in rng
    assert rng.index(["-hardware", "rndm", "-del", "bio_tui"]) == 0
    # the gamma the key was made with is the operator's file, readable by the service account's group
    gamma = host("stat", "-c", "%a %G %s", "/var/opt/cprocsp/dsrf/db1/kis_1").stdout.decode().split()
    assert gamma == ["660", "esia-portal", "864"]
    newkeyset = role_newkeysets()
    assert len(newkeyset) == 1
    call = newkeyset[0]
    assert call["user"] == "esia-portal"
    argv = call["argv"]
    assert argv[argv.index("-container") + 1] == FQCN
    assert argv[argv.index("-provtype") + 1] == "80"
    assert argv[argv.index("-keytype") + 1] == "exchange"
    assert "-exportable" not in argv
    # The PIN was typed at the double's prompt on a terminal: not in argv, not in the environment.
    assert "-password" not in argv and "-silent" not in argv
    assert call["tty"] is True
    assert PIN not in json.dumps(call)
    request = next(call for call in double_calls("cryptcp") if "-creatrqst" in call["argv"])
    assert request["user"] == "esia-portal"
    assert request["argv"][request["argv"].index("-dn") + 1].startswith("C=RU, O=")
    assert {"-nokeygen", "-both", "-ku"} <= set(request["argv"])


def test_bio_tui_and_no_gamma_fail_key_generation_under_silent_with_nte_silent_context(request_run):
    """The double behaves as CryptoPro does: with bio_tui registered, or without a usable gamma, a
    headless (-silent) key generation fails with 0x80090022 (NTE_SILENT_CONTEXT)."""
    cpconfig, csptest = "/opt/cprocsp/sbin/amd64/cpconfig", "/opt/cprocsp/bin/amd64/csptest"
    probe = ["setpriv", "--reuid=esia-portal", "--regid=esia-portal", "--init-groups", "--", csptest, "-keyset",
             "-newkeyset", "-container", "\\\\.\\HDIMAGE\\probe", "-silent", "-password", "x" * 8]  # fmt: skip
    host(cpconfig, "-hardware", "rndm", "-add", "bio_tui")
    try:
        result = host(*probe, check=False)
        assert result.returncode != 0
        assert b"[ErrorCode: 0x80090022]" in result.stdout
    finally:
        host(cpconfig, "-hardware", "rndm", "-del", "bio_tui")
    host("chmod", "000", "/var/opt/cprocsp/dsrf/db1/kis_1", "/var/opt/cprocsp/dsrf/db2/kis_1")
    try:
        result = host(*probe, check=False)
        assert result.returncode != 0
        assert b"no usable gamma" in result.stdout
    finally:
        host("chmod", "660", "/var/opt/cprocsp/dsrf/db1/kis_1", "/var/opt/cprocsp/dsrf/db2/kis_1")


def test_demo_licence_fails_in_prod(lab, request_run):
    run = cryptopro(lab, esia_client_environment="prod")
    assert run.rc != 0
    assert "Demo licence" in flat(run.output)
    assert "server licence" in flat(run.output)


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
    assert fact["license_type"] == "Server"
    assert fact["license_expires"] is None
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


def test_v1_signature_made_with_cryptcp_verifies_and_carries_the_certificate(lab, converged, issued):
    workdir = lab["workdir"]
    message = b"openid2026.11.25 20:00:00 +0300MIAC99PORTALstate"
    cms = b64url_decode(host("esia-sign", "--mode", "v1", stdin=message).stdout.decode())
    (workdir / "v1.msg").write_bytes(message)
    (workdir / "v1.sig").write_bytes(cms)
    openssl("x509", "-inform", "DER", "-in", issued, "-out", workdir / "issued.pem", directory=workdir)
    openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", workdir / "v1.sig", "-content", workdir / "v1.msg",
            "-certfile", workdir / "issued.pem", "-noverify", "-out", "/dev/null", directory=workdir)  # fmt: skip
    # Issue 13 point 4: the CMS carries the signer's certificate (verifies without -certfile).
    openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", workdir / "v1.sig", "-content", workdir / "v1.msg",
            "-noverify", "-out", "/dev/null", directory=workdir)  # fmt: skip
    embedded = openssl("pkcs7", "-inform", "DER", "-in", workdir / "v1.sig", "-print_certs", directory=workdir)
    assert (workdir / "issued.pem").read_bytes().strip() in embedded


def test_signatures_pass_no_pin_in_argv_or_environment(converged):
    host("esia-sign", "--mode", "v2", stdin=b"pin check")
    signs = [c for c in double_calls("csptest") + double_calls("cryptcp") if "-sign" in c["argv"]]
    assert signs
    for call in signs:
        assert PIN not in json.dumps(call), call["argv"]
        assert call["tty"] is True
    v2 = next(c for c in signs if c["tool"] == "csptest")
    assert v2["argv"][v2["argv"].index("-provtype") + 1] == "80"


def test_licence_is_set_and_secrets_stay_out_of_the_output(converged):
    assert LICENSE not in converged.output
    assert PIN not in converged.output
    # cpconfig takes the serial only as an argument (no other interface is documented): see the README.
    assert ["-license", "-set", LICENSE] in [call["argv"] for call in double_calls("cpconfig")]
    view = host("/opt/cprocsp/sbin/amd64/cpconfig", "-license", "-view").stdout.decode()
    assert LICENSE.replace("-", "") in view


def test_next_run_changes_nothing_and_never_reinstalls(lab, converged, issued):
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_license_serial=LICENSE)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0, run.output[-4000:]
    assert installs() == 1
    assert len(role_newkeysets()) == 1


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


def double_state(**change) -> None:
    state = json.loads(host("cat", "/etc/opt/cprocsp/double-state.json").stdout)
    state.update(change)
    host("sh", "-c", "cat > /etc/opt/cprocsp/double-state.json", stdin=json.dumps(state).encode())


def test_licence_expiring_soon_warns_in_test_and_fails_in_prod(lab, converged, issued):
    double_state(license_days=10)
    try:
        run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_license_serial=LICENSE)
        assert run.rc == 0, run.output[-3000:]
        assert "expires in 10 day(s), fewer than cryptopro_license_min_days (30)" in flat(run.output)
        assert json.loads(host("cat", FACT).stdout)["license_expires"] is not None
        prod = cryptopro(
            lab,
            cryptopro_certificate_file=str(issued),
            cryptopro_license_serial=LICENSE,
            esia_client_environment="prod",
        )
        assert prod.rc != 0
        assert "expires in 10 day(s)" in flat(prod.output)
    finally:
        double_state(license_days=None)


def test_cpverify_disagreeing_with_client_certificate_hash_fails_naming_esia_007053(lab, converged, issued):
    double_state(cpverify_corrupt=True)
    try:
        run = cryptopro(lab, cryptopro_certificate_file=str(issued))
        assert run.rc != 0
        assert "ESIA-007053" in flat(run.output)
    finally:
        double_state(cpverify_corrupt=False)
    calls = [c["argv"] for c in double_calls("cpverify")]
    assert ["-mk", "-alg", "GR3411_2012_256", DER] in calls


def archive(lab: dict, name: str, version: str, broken: bool = False) -> dict:
    (lab["workdir"] / name).mkdir()
    path = build_archive(lab["workdir"] / name / "linux-amd64_deb.tgz", version, broken=broken)
    return {
        "cryptopro_distribution": str(path),
        "cryptopro_distribution_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def test_another_version_needs_allow_upgrade_and_a_downgrade_is_refused(lab, converged, issued):
    newer = archive(lab, "newer-refused", "5.0.99999-2")
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), **newer)
    assert run.rc != 0
    assert "cryptopro_allow_upgrade: true" in flat(run.output)
    older = archive(lab, "older", "5.0.99998-1")
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_allow_upgrade=True, **older)
    assert run.rc != 0
    assert "a downgrade is never done" in flat(run.output)
    assert installs() == 1


def test_a_failed_install_restores_the_working_csp(lab, converged, issued):
    broken = archive(lab, "broken", "5.0.99999-3", broken=True)
    run = cryptopro(lab, cryptopro_certificate_file=str(issued), cryptopro_allow_upgrade=True, **broken)
    assert run.rc != 0
    assert "was installed again" in flat(run.output)
    assert host("dpkg-query", "-W", "-f=${Version}", "lsb-cprocsp-base").stdout.decode() == "5.0.99999-1"
    assert host("esia-sign", stdin=b"still signs after the failed install").returncode == 0
    assert installs() == 3  # the broken one, then the restore


def test_a_new_csp_version_is_installed_once_and_keeps_the_container(lab, converged, issued):
    before = installs()
    upgrade = {**archive(lab, "newer", "5.0.99999-2"), "cryptopro_certificate_file": str(issued)}
    run = cryptopro(lab, cryptopro_allow_upgrade=True, **upgrade)
    assert run.rc == 0, run.output[-3000:]
    assert installs() == before + 1
    lab["extra"].update(archive for archive in upgrade.items() if archive[0].startswith("cryptopro_distribution"))
    assert host("dpkg-query", "-W", "-f=${Version}", "lsb-cprocsp-base").stdout.decode() == "5.0.99999-2"
    assert len(role_newkeysets()) == 1
    assert host("esia-sign", stdin=b"still signs").returncode == 0


def test_selfsigned_certificate_with_cryptopro_for_the_test_environment(lab, converged):
    """Issue 13 point 2: csptest -keyset -newkeyset -makecert makes the test certificate in the container."""
    run = cryptopro(lab, cryptopro_container="esia_self", cryptopro_certificate_source="selfsigned")
    assert run.rc == 0, run.output[-4000:]
    made = [c["argv"] for c in double_calls("csptest") if "-makecert" in c["argv"]]
    assert len(made) == 1 and "-newkeyset" in made[0]
    der = host("cat", "/var/lib/esia-portal/esia/esia_self.cer").stdout
    cert = x509.load_der_x509_certificate(der)
    assert cert.issuer == cert.subject
    fact = json.loads(host("cat", FACT).stdout)
    assert fact["self_signed"] is True
    assert fact["container"] == "esia_self"
    again = cryptopro(lab, cryptopro_container="esia_self", cryptopro_certificate_source="selfsigned")
    assert again.rc == 0
    assert again.changed("lab-portal") == 0, again.output[-3000:]
