"""portal_https with certificate source `acme` against a real ACME CA: pebble
(Let's Encrypt's test server, Debian package `pebble`) on 127.0.0.1, with a
BIND9 primary master of its own for the lab zones, and one throw-away lab host.

pebble resolves the names through that BIND and validates http-01 on the
host's published HTTP port, dns-01 at BIND; both run here, on free ports.
pebble requires External Account Binding, as some CAs do. Covered: --check
on a host without a certificate, issuance by http-01 (both names) with EAB,
a second run that orders nothing, an account without EAB refused, a forced
renewal by dns-01 (TXT records added, then gone), a name that does not point
at the host and a wrong TSIG key, each leaving the old certificate serving
with nothing left behind in the zone."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import ssl
from pathlib import Path
from types import SimpleNamespace

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509

from lab.__main__ import lab_vars
from lab.bind import BindServer, TsigKey, Zone
from lab.pebble import PebbleServer
from tests.harness import LAB_INVENTORY, ansible_playbook, lab_host, podman_exec

pytestmark = pytest.mark.slow

CONTAINER = "esia-test-https-acme"
HTTP_PORT = 38780
HTTPS_PORT = 39143
HOST = "lab-portal"
MAIN = "zapis.miac99.test"
FALLBACK = "99.2dr.ru"
NOWHERE = "nowhere.miac99.test"  # in the zone, with no address: cannot point at the host
# pebble requires External Account Binding here, as some CAs do: every run binds with this key.
EAB_KID, EAB_HMAC = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", port))  # BIND also needs the UDP port
    return port


def served(name: str) -> bytes:
    """DER of the certificate the host serves for SNI `name` (not verified here)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return tls.getpeercert(binary_form=True)


def verified(name: str, cafile: Path) -> x509.Certificate:
    """The served certificate, verified for `name` against `cafile` (pebble's root)."""
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def fingerprint(name: str) -> str:
    return hashlib.sha256(served(name)).hexdigest()


def txt_at_master(state, name: str) -> list[str]:
    query = dns.message.make_query(f"_acme-challenge.{name}.", "TXT")
    answer = dns.query.tcp(query, "127.0.0.1", port=state.bind.port, timeout=5)
    return [r.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.TXT for r in rrset]


def nginx_master_pid() -> str:
    return podman_exec(CONTAINER, "cat", "/run/nginx.pid", check=True).stdout.strip()


def flat(text: str) -> str:
    return " ".join(text.replace("''", "'").replace('\\"', '"').split())


def tail(run) -> str:
    return run.output[-5000:]


def https(state, *args: str, **extra):
    return ansible_playbook(
        "playbooks/https.yml", LAB_INVENTORY, *args, extra_vars={**state.vars, **extra}, timeout=600
    )


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    work = tmp_path_factory.mktemp("portal_https_acme")
    lab = lab_vars()
    key = TsigKey(lab["portal_domain_tsig_name"], lab["vault_portal_domain_tsig_secret"], "hmac-sha256")
    bind = BindServer(
        state_dir=work / "bind",
        port=free_port(),
        keys=[key],
        zones=[
            Zone("miac99.test", records=("zapis 300 IN A 127.0.0.1",), update_key=key.name),
            Zone("2dr.ru", records=("99 300 IN A 127.0.0.1",)),
        ],
    )
    pebble = PebbleServer(
        state_dir=work / "pebble",
        ca_dir=work / "pebble-ca",
        port=free_port(),
        management_port=free_port(),
        http_port=HTTP_PORT,
        tls_port=free_port(),
        dns_server=f"127.0.0.1:{bind.port}",
        eab_keys={EAB_KID: EAB_HMAC},
    )
    bind.start(reset_zones=True)
    try:
        pebble.start()
        with lab_host(CONTAINER, HTTP_PORT, HTTPS_PORT) as host_vars:
            extra = {
                **host_vars,
                "portal_artifacts_root": str(work / "artifacts"),
                "portal_https_ownca_dir": str(work / "lab-ca"),
                "portal_https_certificate_source": "acme",
                "portal_https_acme_directory": pebble.directory_url,
                "portal_https_acme_ca_bundle": str(pebble.ca_bundle),
                "portal_https_acme_challenge": "http-01",
                "portal_https_acme_eab_kid": EAB_KID,
                "portal_https_acme_eab_hmac_key": EAB_HMAC,
                "portal_domain_dns_server": "127.0.0.1",
                "portal_domain_dns_port": bind.port,
            }
            base = ansible_playbook("playbooks/base.yml", LAB_INVENTORY, extra_vars=extra, timeout=600)
            assert base.rc == 0, tail(base)
            state = SimpleNamespace(vars=extra, work=work, bind=bind, pebble=pebble)
            state.fresh_check = https(state, "--check", "--diff")
            state.nginx_after_check = podman_exec(CONTAINER, "test", "-e", "/usr/sbin/nginx").returncode
            state.first = https(state)
            assert state.first.rc == 0, tail(state.first)
            state.root = work / "pebble-root.pem"
            state.root.write_text(pebble.roots())
            yield state
    finally:
        pebble.stop()
        bind.stop()


def test_check_mode_on_a_host_without_a_certificate(acme):
    run = acme.fresh_check
    assert run.rc == 0, tail(run)
    assert run.failed(HOST) == 0
    assert "would be ordered from " + acme.pebble.directory_url in flat(run.output), tail(run)
    assert acme.nginx_after_check != 0, "check mode installed nginx"


@pytest.mark.parametrize("name", [MAIN, FALLBACK])
def test_http_01_issues_a_certificate_for_each_name(acme, name):
    cert = verified(name, acme.root)  # the chain the host serves leads to pebble's root
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [name]
    challenges = podman_exec(CONTAINER, "find", "/var/www/esia-portal-acme/.well-known/acme-challenge", "-type", "f")
    assert challenges.stdout.strip() == "", "an http-01 answer was left behind"


def test_second_run_orders_nothing_and_changes_nothing(acme):
    before = fingerprint(MAIN), fingerprint(FALLBACK)
    run = https(acme)
    assert run.rc == 0, tail(run)
    assert run.changed(HOST) == 0, tail(run)
    assert "Open the order and read the challenges" not in run.output
    assert (fingerprint(MAIN), fingerprint(FALLBACK)) == before


def test_an_account_without_external_account_binding_is_refused(acme):
    """A new account key without EAB, at a CA that requires it: nothing changes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    before = fingerprint(MAIN)
    run = https(
        acme,
        portal_https_acme_account_key=key.decode(),
        portal_https_acme_eab_kid="",
        portal_https_acme_eab_hmac_key="",
        portal_https_acme_force_renew=True,
        portal_https_fallback_enabled=False,
    )
    assert run.rc != 0, tail(run)
    assert "the ACME account could not be used" in flat(run.output), tail(run)
    text = flat(run.output).lower().replace(" ", "")
    assert "externalaccount" in text, tail(run)  # the CA's reason (RFC 8555 externalAccountRequired)
    assert key.decode().splitlines()[1] not in run.output, "the account key leaked into the output"
    assert fingerprint(MAIN) == before


def test_a_name_not_pointing_at_the_host_fails_and_the_old_certificate_serves(acme):
    before, pid = fingerprint(MAIN), nginx_master_pid()
    run = https(acme, portal_https_extra_names=[NOWHERE])
    assert run.rc != 0, tail(run)
    text = flat(run.output)
    assert f"ACME: no new certificate for {MAIN}, {NOWHERE}" in text, tail(run)
    assert "The certificate served now stays in place" in text
    assert "nginx was not touched" in text
    assert (fingerprint(MAIN), nginx_master_pid()) == (before, pid)
    assert verified(MAIN, acme.root).extensions  # still a valid, verifiable certificate


def test_forced_renewal_by_dns_01_replaces_the_certificate_with_a_reload(acme):
    before, pid = fingerprint(MAIN), nginx_master_pid()
    fallback_before = fingerprint(FALLBACK)
    run = https(acme, portal_https_acme_challenge="dns-01", portal_https_acme_force_renew=True)
    assert run.rc == 0, tail(run)
    assert fingerprint(MAIN) != before, "the forced renewal did not replace the certificate"
    assert fingerprint(FALLBACK) != fallback_before, "the fallback (http-01, outside the zone) was not renewed"
    assert nginx_master_pid() == pid, "nginx was restarted; a new certificate must only reload it"
    assert verified(MAIN, acme.root)
    assert txt_at_master(acme, MAIN) == [], "the _acme-challenge TXT record was left in the zone"
    pairs = podman_exec(CONTAINER, "ls", "/etc/ssl/esia-portal/pairs").stdout.split()
    assert len([p for p in pairs if p.startswith(MAIN + ".")]) == 2, "the previous pair should be kept, no more"


def test_wrong_tsig_key_fails_and_leaves_nothing_behind(acme):
    before = fingerprint(MAIN)
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    run = https(
        acme,
        portal_https_acme_challenge="dns-01",
        portal_https_acme_force_renew=True,
        portal_https_fallback_enabled=False,
        portal_domain_tsig_secret=wrong,
    )
    assert run.rc != 0, tail(run)
    text = flat(run.output)
    assert "could not be put on the primary master" in text, tail(run)
    assert "The certificate served now stays in place" in text
    assert wrong not in run.output, "the TSIG secret leaked into the output"
    assert fingerprint(MAIN) == before
    assert txt_at_master(acme, MAIN) == []
