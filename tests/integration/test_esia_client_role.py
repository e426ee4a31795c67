"""playbooks/esia.yml on a throw-away lab host (podman + systemd), after base.yml and cryptopro.yml.

Checks what an operator relies on: the configuration on the host, the application package on the
controller, idempotence and check mode, and that the self-check fails clearly, naming the step, when
the signer, the certificate or the clock is broken. The live probe is exercised against a TEST DOUBLE
of ESIA's authorisation endpoint on 127.0.0.1 (never the real ESIA)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.certs import OpenSSLError, gost_workdir, make_cert, openssl, openssl_streebog256
from tests.harness import LAB_INVENTORY, REPO, PlaybookRun, ansible_playbook, environment, lab_host

pytestmark = pytest.mark.slow

CONTAINER = "esia-lab-esia"
HTTP_PORT, HTTPS_PORT = 38380, 38843
DER_ON_HOST = "/var/lib/esia-portal/esia/esia_99.cer"
SIGNER = "/usr/local/bin/esia-sign"
CONFIG_YAML = "/etc/esia-portal/esia-client.yml"
CONFIG_ENV = "/etc/esia-portal/esia-client.env"
LAB_GROUP_VARS = REPO / "inventories" / "lab" / "group_vars" / "all"


def lab_setting(name: str, file: str = "esia_client.yml"):
    return yaml.safe_load((LAB_GROUP_VARS / file).read_text(encoding="utf-8"))[name]


def host_exec(*cmd: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", "exec", "-i", CONTAINER, *cmd], input=stdin, capture_output=True, env=environment(), check=check
    )


def host_file(path: str) -> bytes:
    return host_exec("cat", path).stdout


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return gost_workdir(tmp_path_factory, "esia-client")


@pytest.fixture(scope="module")
def lab(workdir) -> Iterator[dict]:
    """A converged host: base.yml and cryptopro.yml, then the first esia.yml run (kept for the tests)."""
    with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as extra:
        extra = {**extra, "portal_artifacts_root": str(workdir / "artifacts")}
        # A fact cache of our own: the lab inventory's host name is shared with other test hosts.
        env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts")}
        for playbook in ("playbooks/base.yml", "playbooks/cryptopro.yml"):
            run = ansible_playbook(playbook, extra_vars=extra, env=env)
            assert run.rc == 0, run.output[-3000:]
        first = ansible_playbook("playbooks/esia.yml", extra_vars=extra, env=env)
        yield {"extra": extra, "env": env, "first": first, "artifacts": workdir / "artifacts" / "99"}


def esia(lab: dict, *args: str, **extra) -> PlaybookRun:
    return ansible_playbook(
        "playbooks/esia.yml", LAB_INVENTORY, *args, extra_vars={**lab["extra"], **extra}, env=lab["env"]
    )


@contextlib.contextmanager
def replaced_on_host(path: str, content: bytes, mode: str = "0755") -> Iterator[None]:
    """Swap a file on the host for `content`, and put the original back afterwards."""
    host_exec("cp", "-p", path, path + ".esia-test-orig")
    try:
        host_exec("sh", "-c", f'cat > "$0" && chmod {mode} "$0"', path, stdin=content)
        yield
    finally:
        host_exec("mv", "-f", path + ".esia-test-orig", path)


def test_first_run_configures_and_passes_the_self_check(lab):
    run = lab["first"]
    assert run.rc == 0, run.output[-3000:]
    assert "ESIA self-check passed" in run.output
    for step in ("certificate", "sign", "verify", "clock"):
        assert f"[OK] {step}:" in run.output, step


def test_configuration_files_are_0640_for_the_service_group(lab):
    for path in (CONFIG_YAML, CONFIG_ENV):
        assert host_exec("stat", "-c", "%a %U %G", path).stdout.decode().split() == ["640", "root", "esia-portal"]


def test_yaml_configuration_has_the_test_endpoints_and_the_inventory_values(lab):
    config = yaml.safe_load(host_file(CONFIG_YAML))["esia"]
    assert config["endpoints"]["authorize"] == "https://esia-portal1.test.gosuslugi.ru/aas/oauth2/v2/ac"
    assert config["endpoints"]["token"] == "https://esia-portal1.test.gosuslugi.ru/aas/oauth2/v3/te"
    assert config["endpoints"]["logout"] == "https://esia-portal1.test.gosuslugi.ru/idp/ext/Logout"
    assert config["client_id"] == lab_setting("esia_client_mnemonic")
    assert config["scope"] == " ".join(lab_setting("esia_client_scopes"))
    assert config["redirect_uris"] == [
        "https://zapis.miac99.test/esia/callback",
        "https://99.2dr.ru/esia/callback",
    ]
    assert config["timestamp_format"] == "yyyy.MM.dd HH:mm:ss Z"
    assert config["signer"]["command"] == SIGNER


def test_client_certificate_hash_is_streebog_256_of_the_exported_der(lab, workdir):
    der = workdir / "exported.cer"
    der.write_bytes(host_file(DER_ON_HOST))
    expected = openssl_streebog256(der)  # computed by OpenSSL's GOST engine, not by the role
    config = yaml.safe_load(host_file(CONFIG_YAML))["esia"]
    assert config["client_certificate_hash"] == expected
    env = dict(line.split("=", 1) for line in host_file(CONFIG_ENV).decode().splitlines() if "=" in line)
    assert env["ESIA_CLIENT_CERTIFICATE_HASH"] == f'"{expected}"'


def test_env_file_reads_in_a_shell(lab):
    out = host_exec("sh", "-c", f'. {CONFIG_ENV} && printf "%s|%s" "$ESIA_TOKEN_URL" "$ESIA_TIMESTAMP_FORMAT"')
    assert out.stdout.decode() == "https://esia-portal1.test.gosuslugi.ru/aas/oauth2/v3/te|yyyy.MM.dd HH:mm:ss Z"


def test_application_package_is_complete(lab, workdir):
    package = lab["artifacts"] / "application"
    html = (package / "application.html").read_text(encoding="utf-8")
    text = (package / "application.txt").read_text(encoding="utf-8")
    for document in (html, text):
        for scope in lab_setting("esia_client_scopes"):
            assert re.search(rf"(?<![\w]){re.escape(scope)}(?![\w])", document), scope
        assert "zapis.miac99.test" in document
        assert "99.2dr.ru" in document
        assert lab_setting("esia_client_mnemonic") in document
        org = lab_setting("portal_org", "region.yml")
        for value in (org["ogrn"], org["inn"], org["contact"]["email"]):
            assert value in document, value
    der = workdir / "package.cer"
    der.write_bytes((package / "esia_99.cer").read_bytes())
    sha1 = openssl("x509", "-inform", "DER", "-in", der, "-noout", "-fingerprint", "-sha1", directory=workdir)
    assert sha1.decode().strip().split("=", 1)[1].replace(":", "") in html
    assert openssl_streebog256(der) in html
    mail = (package / "cover-email.txt").read_text(encoding="utf-8")
    assert "sd@sc.minsvyaz.ru" in mail
    assert "esia_99.cer" in (package / "checklist.txt").read_text(encoding="utf-8")


def test_package_certificate_is_byte_identical_to_the_exported_der(lab):
    exported = host_file(DER_ON_HOST)
    assert (lab["artifacts"] / "application" / "esia_99.cer").read_bytes() == exported
    assert (lab["artifacts"] / "certificate" / "esia_99.cer").read_bytes() == exported


def test_checklist_explains_why_the_private_key_is_not_attached(lab):
    checklist = (lab["artifacts"] / "application" / "checklist.txt").read_text(encoding="utf-8")
    assert "cryptopro_export_private_key: false" in checklist
    assert not list((lab["artifacts"] / "application").glob("*.key"))
    assert not list((lab["artifacts"] / "application").glob("*.pfx"))


def test_second_run_changes_nothing(lab):
    run = esia(lab)
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0, run.output[-3000:]


def test_check_mode_on_the_converged_host_changes_nothing(lab):
    run = esia(lab, "--check", "--diff")
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("lab-portal") == 0
    assert "ESIA self-check passed" in run.output


def test_failing_signer_fails_the_sign_step(lab):
    broken = b'#!/bin/sh\necho "esia-sign: cannot open the key container" >&2\nexit 3\n'
    with replaced_on_host(SIGNER, broken):
        run = esia(lab, esia_client_application=False)
    assert run.rc != 0
    assert "ESIA self-check failed at step(s) sign, verify" in run.output
    assert "exited 3: esia-sign: cannot open the key container" in run.output


def test_another_certificate_fails_the_certificate_step(lab, workdir):
    other = make_cert(workdir, "gost2012_256", subject="/C=RU/O=Other/CN=not-the-is", name="other")
    with replaced_on_host(DER_ON_HOST, other.der, mode="0644"):
        run = esia(lab, esia_client_application=False)
    assert run.rc != 0
    assert "ESIA self-check step 'certificate' failed" in run.output
    assert "is not the one the cryptopro role recorded" in run.output


def test_foreign_signature_and_stopped_time_sync_are_both_reported(lab):
    # Two breakages in one run: every failed step is named, not only the first.
    noise = base64.urlsafe_b64encode(bytes(range(64))).decode().rstrip("=")
    host_exec("systemctl", "stop", "chrony")
    try:
        with replaced_on_host(SIGNER, f"#!/bin/sh\ncat >/dev/null\necho {noise}\n".encode()):
            run = esia(lab, esia_client_application=False)
    finally:
        host_exec("systemctl", "start", "chrony")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "Leap status     : Normal" in host_exec("chronyc", "-n", "tracking", check=False).stdout.decode():
                break
            time.sleep(1)
    assert run.rc != 0
    assert "ESIA self-check failed at step(s) verify, clock" in run.output
    assert "does not verify against the certificate" in run.output
    assert "ESIA-007015" in run.output


def test_legacy_v1_signs_and_verifies_detached_cms(lab):
    # Check mode: the v1 configuration is not written, the self-check still signs and verifies.
    run = esia(lab, "--check", esia_client_api_version="v1", esia_client_application=False)
    assert run.rc == 0, run.output[-3000:]
    assert "[OK] verify:" in run.output
    assert "(cms)" in run.output


class FakeEsiaAuthorize(http.server.BaseHTTPRequestHandler):
    """TEST DOUBLE of ESIA's /aas/oauth2/v2/ac: checks the parameters and the GOST signature with
    OpenSSL against the IS certificate, answers like ESIA (redirect to the login page, or back to
    redirect_uri with ESIA-0070xx). `forced` makes it answer one given code."""

    certificate: ClassVar[Path]
    forced: ClassVar[str] = ""
    seen: ClassVar[list[dict]] = []

    def log_message(self, *args) -> None:
        pass

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _error(self, query: dict, code: str) -> None:
        back = query.get("redirect_uri", "https://invalid/")
        self._redirect(f"{back}?error=invalid_request&error_description=ESIA-{code}&state={query.get('state', '')}")

    def do_GET(self) -> None:
        query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        FakeEsiaAuthorize.seen.append(query)
        needed = ("client_id", "client_secret", "redirect_uri", "scope", "response_type", "state", "timestamp",
                  "access_type", "client_certificate_hash")  # fmt: skip
        if self.forced:
            return self._error(query, self.forced)
        if any(name not in query for name in needed):
            return self._error(query, "007014")
        if not re.fullmatch(r"\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d [+-]\d{4}", query["timestamp"]):
            return self._error(query, "007015")
        if query["client_certificate_hash"] != openssl_streebog256(self.certificate):
            return self._error(query, "007053")
        directory = self.certificate.parent
        message = directory / "probe-message"
        message.write_bytes(
            (
                query["client_id"]
                + query["scope"]
                + query.get("scope_org", "")
                + query["timestamp"]
                + query["state"]
                + query["redirect_uri"]
            ).encode()
        )
        signature = directory / "probe-signature"
        signature.write_bytes(
            base64.urlsafe_b64decode(query["client_secret"] + "=" * (-len(query["client_secret"]) % 4))
        )
        public = directory / "probe-public.pem"
        public.write_bytes(openssl("x509", "-inform", "DER", "-in", self.certificate, "-pubkey", "-noout",
                                   directory=directory))  # fmt: skip
        try:
            openssl("dgst", "-md_gost12_256", "-verify", public, "-signature", signature, message, directory=directory)
        except OpenSSLError:  # the signature does not verify: ESIA says 007053
            return self._error(query, "007053")
        return self._redirect("/idp/login/?from=ac")


@pytest.fixture
def fake_esia(lab, workdir) -> Iterator[str]:
    FakeEsiaAuthorize.certificate = workdir / "probe-is.cer"
    FakeEsiaAuthorize.certificate.write_bytes(host_file(DER_ON_HOST))
    FakeEsiaAuthorize.forced = ""
    FakeEsiaAuthorize.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeEsiaAuthorize)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_probe_sends_a_correctly_signed_request(lab, fake_esia):
    # Check mode: the probe runs, the stand-in URL is never written into the host's configuration.
    run = esia(lab, "--check", esia_client_probe=True, esia_client_base_url=fake_esia)
    assert run.rc == 0, run.output[-3000:]
    assert "ESIA accepted the signed request" in run.output
    (request,) = FakeEsiaAuthorize.seen
    assert request["client_id"] == lab_setting("esia_client_mnemonic")
    assert request["response_type"] == "code"
    assert request["client_secret"] not in run.output


def test_probe_translates_an_esia_error_into_the_fix(lab, fake_esia):
    FakeEsiaAuthorize.forced = "007023"
    run = esia(lab, "--check", esia_client_probe=True, esia_client_base_url=fake_esia)
    assert run.rc != 0
    assert "ESIA-007023" in run.output
    assert "redirect_uri" in run.output
    assert "Traceback" not in run.output


def test_configuration_still_points_at_esia_after_the_probe_runs(lab):
    config = yaml.safe_load(host_file(CONFIG_YAML))["esia"]
    assert config["base_url"] == "https://esia-portal1.test.gosuslugi.ru"


def test_probe_sends_scope_org_and_no_client_secret_reaches_the_output_even_verbose(lab, fake_esia):
    """scope_org is signed and sent; the signer is wrapped so that the test knows every client_secret
    made on the host (self-check and probe), and none of them may appear in -vvv output."""
    log = "/tmp/esia-signed.log"
    wrapper = (
        b"#!/bin/sh\nout=$(" + SIGNER.encode() + b'.esia-test-orig "$@") || exit $?\n'
        b'printf "%s\\n" "$out" >> ' + log.encode() + b'\nprintf "%s\\n" "$out"\n'
    )
    host_exec("rm", "-f", log)
    with replaced_on_host(SIGNER, wrapper):
        run = esia(lab, "--check", "-vvv", esia_client_probe=True, esia_client_base_url=fake_esia,
                   esia_client_org_scopes=["org_shortname", "org_ogrn"])  # fmt: skip
    assert run.rc == 0, run.output[-3000:]
    (request,) = FakeEsiaAuthorize.seen
    assert request["scope_org"] == "org_shortname org_ogrn"
    assert "org_" not in request["scope"]
    signatures = host_file(log).decode().split()
    assert len(signatures) == 2, "the self-check and the probe each sign once"
    assert request["client_secret"] in signatures
    for signature in signatures:
        assert len(signature) > 60 and signature not in run.output


# --- ESIA's certificates: several at once, on the host, in the local fact, judged by the self-check ---

FACT = "/etc/ansible/facts.d/esia_client.fact"


@pytest.fixture(scope="module")
def esia_certificates(workdir) -> dict[str, Path]:
    """Stand-ins for ESIA's certificates (ESIA's own come from esia.zip): last year's, expiring in 10
    days, and this year's, both GOST; and an RSA one (what RS256 needs)."""
    directory = workdir / "esia-certs"
    now = datetime.now(UTC)
    return {
        "old": make_cert(directory, "gost2012_256", name="esia-2025", subject="/C=RU/O=RTLabs/CN=ESIA 2025",
                         not_before=now - timedelta(days=355), not_after=now + timedelta(days=10)).der_path,
        "new": make_cert(directory, "gost2012_256", name="esia-2026", subject="/C=RU/O=RTLabs/CN=ESIA 2026",
                         days=365).pem_path,
        "rsa": make_cert(directory, "rsa", name="esia-rsa", subject="/C=RU/O=RTLabs/CN=ESIA RSA", days=365).pem_path,
    }  # fmt: skip


def test_old_and_new_esia_certificates_are_installed_listed_and_judged(lab, esia_certificates):
    listed = [str(esia_certificates["old"]), str(esia_certificates["new"])]
    run = esia(lab, esia_client_esia_certificates=listed)
    assert run.rc == 0, run.output[-3000:]
    for name in ("esia-2025.der", "esia-2026.pem"):
        on_host = host_file(f"/etc/esia-portal/esia-certificates/{name}")
        assert on_host == (esia_certificates["old"] if name.endswith(".der") else esia_certificates["new"]).read_bytes()
    fact = json.loads(host_file(FACT))
    assert fact["esia_certificates"] == [
        "/etc/esia-portal/esia-certificates/esia-2025.der",
        "/etc/esia-portal/esia-certificates/esia-2026.pem",
    ]
    assert fact["token_alg"] == "GOST3410_2012_256"
    config = yaml.safe_load(host_file(CONFIG_YAML))["esia"]
    assert config["esia_certificates"] == fact["esia_certificates"]
    output = " ".join(run.output.split())  # the callback folds long lines
    assert re.search(
        r"\[WARN\] esia_certificate: /etc/esia-portal/esia-certificates/esia-2025.der .*in \d+ day", output
    )
    assert re.search(r"\[OK\] esia_certificate: /etc/esia-portal/esia-certificates/esia-2026.pem", output)
    again = esia(lab, esia_client_esia_certificates=listed)
    assert again.rc == 0 and again.changed("lab-portal") == 0, again.output[-3000:]


def test_rsa_certificate_for_a_gost_token_algorithm_is_refused_before_the_host_is_touched(lab, esia_certificates):
    run = esia(lab, esia_client_esia_certificates=[str(esia_certificates["rsa"])])
    assert run.rc != 0
    assert "esia_client_esia_certificates" in run.output and "has a rsa key" in run.output
    assert "nothing was changed on the host" in run.output
    assert run.changed("lab-portal") == 0


def test_prod_without_a_valid_esia_certificate_is_refused(lab):
    run = esia(lab, "--check", esia_client_environment="prod")
    assert run.rc != 0
    assert "production needs at least one currently valid" in run.output
