"""tools/probes.py against real servers on 127.0.0.1: BIND9 for DNS, a TLS web server for HTTPS.

The TLS server is Python's ssl module with a throw-away CA made here, so the
verification branches (good, wrong name, unknown CA, expired, refused) are
real handshakes; what they return feeds the readiness checklist.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab.bind import BindServer, Zone
from tools import probes
from tools.readiness import evaluate


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory) -> Iterator[BindServer]:
    server = BindServer(
        state_dir=tmp_path_factory.mktemp("bind"),
        port=free_port(),
        zones=[
            Zone(
                "miac42.test",
                records=("zapis 300 IN A 127.0.0.1", "multi 300 IN A 127.0.0.2", "multi 300 IN A 127.0.0.3"),
            ),
            Zone("2dr.ru", records=("42 300 IN A 127.0.0.1",)),
        ],
    )
    server.start(reset_zones=True)
    try:
        yield server
    finally:
        server.stop()


def test_resolves_through_the_given_resolver(dns_server: BindServer):
    result = probes.resolve("zapis.miac42.test", [f"127.0.0.1:{dns_server.port}"])
    assert result == {
        "name": "zapis.miac42.test",
        "resolvers": [f"127.0.0.1:{dns_server.port}"],
        "addresses": ["127.0.0.1"],
        "error": None,
    }
    assert probes.resolve("multi.miac42.test", [f"127.0.0.1:{dns_server.port}"])["addresses"] == [
        "127.0.0.2",
        "127.0.0.3",
    ]


def test_missing_name_is_nxdomain(dns_server: BindServer):
    result = probes.resolve("nothing.miac42.test", [f"127.0.0.1:{dns_server.port}"])
    assert result["addresses"] == [] and "NXDOMAIN" in result["error"]


def test_dead_resolver_is_skipped_for_the_next(dns_server: BindServer):
    dead = f"127.0.0.1:{free_port()}"
    result = probes.resolve("42.2dr.ru", [dead, f"127.0.0.1:{dns_server.port}"], timeout=1.0)
    assert result["addresses"] == ["127.0.0.1"]
    only_dead = probes.resolve("42.2dr.ru", [dead], timeout=1.0)
    assert only_dead["addresses"] == [] and only_dead["error"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:15353", ("127.0.0.1", 15353)), ("192.0.2.53", ("192.0.2.53", 53)), ("[::1]:5353", ("::1", 5353))],
)
def test_resolver_notation(text, expected):
    assert probes.split_resolver(text) == expected


# -- HTTPS --------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca, names: list[str], not_before: dt.datetime, not_after: dt.datetime, directory: Path, stem: str):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@contextmanager
def tls_server(cert_file: Path, key_file: Path, status: str = "200 OK") -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(3)
                    conn.recv(4096)
                    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            except (ssl.SSLError, OSError):
                pass  # the client refused our certificate: that is what some tests want

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca("Status Test CA")
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    now = dt.datetime.now(dt.UTC)
    names = ["zapis.miac42.test", "42.2dr.ru"]
    good = make_leaf(ca, names, now - dt.timedelta(days=1), now + dt.timedelta(days=90), directory, "good")
    soon = make_leaf(ca, names, now - dt.timedelta(days=80), now + dt.timedelta(days=5), directory, "soon")
    expired = make_leaf(ca, names, now - dt.timedelta(days=100), now - dt.timedelta(days=1), directory, "expired")
    stranger = make_leaf(
        make_ca("Stranger CA"), names, now - dt.timedelta(days=1), now + dt.timedelta(days=90), directory, "s"
    )
    return {"ca": ca_file, "good": good, "soon": soon, "expired": expired, "stranger": stranger}


def test_verified_certificate_and_http_answer(pki):
    with tls_server(*pki["good"]) as port:
        result = probes.probe_https("127.0.0.1", port, "zapis.miac42.test", str(pki["ca"]))
    assert result["verified"] is True and result["error"] is None
    assert result["http_status"] == 200
    assert result["certificate"]["issuer"] == "CN=Status Test CA"
    assert result["certificate"]["dns_names"] == ["zapis.miac42.test", "42.2dr.ru"]


def test_name_not_in_the_certificate(pki):
    with tls_server(*pki["good"]) as port:
        result = probes.probe_https("127.0.0.1", port, "other.miac42.test", str(pki["ca"]))
    assert result["verified"] is False
    assert "Hostname mismatch" in result["error"] or "other.miac42.test" in result["error"]
    # the served certificate is still described, read without verification
    assert result["certificate"]["subject"] == "CN=zapis.miac42.test"


def test_unknown_ca(pki):
    with tls_server(*pki["stranger"]) as port:
        result = probes.probe_https("127.0.0.1", port, "zapis.miac42.test", str(pki["ca"]))
    assert result["verified"] is False and "сертификат не принят" in result["error"]
    assert result["certificate"]["issuer"] == "CN=Stranger CA"


def test_expired_certificate(pki):
    with tls_server(*pki["expired"]) as port:
        result = probes.probe_https("127.0.0.1", port, "zapis.miac42.test", str(pki["ca"]))
    assert result["verified"] is False and "expired" in result["error"]


def test_refused_connection_and_missing_ca_file(pki, tmp_path):
    refused = probes.probe_https("127.0.0.1", free_port(), "zapis.miac42.test", str(pki["ca"]), timeout=2)
    assert refused["verified"] is False and "нет TLS-соединения" in refused["error"]
    missing = probes.probe_https("127.0.0.1", free_port(), "zapis.miac42.test", str(tmp_path / "none.pem"))
    assert "none.pem" in missing["error"]


def test_server_error_is_reported(pki):
    with tls_server(*pki["good"], status="502 Bad Gateway") as port:
        result = probes.probe_https("127.0.0.1", port, "zapis.miac42.test", str(pki["ca"]))
    assert result["verified"] is True and result["http_status"] == 502


def test_collect_feeds_the_checklist(dns_server: BindServer, pki):
    """DNS and both names end to end: the domain items are done with a good
    certificate and not done with one that expires in 5 days."""
    settings = {
        "portal_name": "zapis.miac42.test",
        "fallback_name": "42.2dr.ru",
        "address": "127.0.0.1",
        "resolvers": [f"127.0.0.1:{dns_server.port}"],
        "https_ca_file": str(pki["ca"]),
        "https_min_days": 14,
    }
    observations = {"host": "h", "settings": settings, "on_host": {"reachable": False}}
    for leaf, expected in (("good", "done"), ("soon", "not_done")):
        with tls_server(*pki[leaf]) as port:
            network = probes.collect({**settings, "https_port": port})
        items = {
            i["id"]: i
            for i in evaluate({**observations, "settings": {**settings, "https_port": port}}, network)["items"]
        }
        assert items["dns"]["state"] == "done"
        assert items["https"]["state"] == expected, items["https"]["evidence"]
        assert items["fallback"]["state"] == "done", items["fallback"]["evidence"]
        assert f"127.0.0.1:{port}" in items["https"]["evidence"]
