"""module_utils/esia_onboard/certs.py: one loader of PEM, base64 and DER certificates, CA detection."""

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from module_utils.esia_onboard import certs


def make_certificate(ca: bool) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def leaf() -> x509.Certificate:
    return make_certificate(False)


def test_every_input_form_loads_the_same_certificate(leaf):
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    der = leaf.public_bytes(serialization.Encoding.DER)
    for form in (
        pem.decode(),
        pem,
        der,
        base64.b64encode(der).decode(),
        base64.b64encode(pem).decode(),
        base64.encodebytes(der).decode(),
    ):
        assert certs.load_certificate(form) == leaf


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "empty"),
        ("not base64!", "neither PEM"),
        (5, "expects PEM"),
        (base64.b64encode(b"hello").decode(), "not an X.509"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n", "not an X.509"),
    ],
)
def test_errors_say_what_the_input_is(data, fragment):
    with pytest.raises(certs.CertificateError, match=fragment):
        certs.load_certificate(data)


def test_pem_lists_and_der(leaf):
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    der = leaf.public_bytes(serialization.Encoding.DER)
    assert len(certs.pem_blocks(b"junk\n" + pem + pem)) == 2
    assert certs.load_pem_certificates(pem + pem, "chain") == [leaf, leaf]
    assert certs.load_pem_certificates("", "chain") == []
    with pytest.raises(certs.CertificateError, match="chain: certificate #2 is not a readable"):
        certs.load_pem_certificates(pem + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "chain")
    assert certs.to_der(pem) == der
    assert certs.to_der(der) == der


def test_is_ca(leaf):
    assert certs.is_ca(make_certificate(True))
    assert not certs.is_ca(leaf)
    assert not certs.is_ca(make_certificate(None))
