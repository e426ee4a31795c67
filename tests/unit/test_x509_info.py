"""x509_info / x509_require_gost2012 without the GOST engine.

RSA, EC and Ed25519 certificates are built with `cryptography`'s builder;
GOST-shaped ones are assembled as DER by hand below (parsing does not check
signatures), which also gives combinations OpenSSL would not make, such as a
GOST 2012 key under an RSA signature. The engine-made certificates are in
tests/integration/test_x509_gost_engine.py.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from datetime import UTC, datetime

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from gostcrypto import gosthash

from filter_plugins.x509 import FilterModule, x509_info, x509_require_gost2012

GOST2012_256_KEY = "1.2.643.7.1.1.1.1"
GOST2012_512_KEY = "1.2.643.7.1.1.1.2"
GOST2001_KEY = "1.2.643.2.2.19"
GOST2012_256_SIGNATURE = "1.2.643.7.1.1.3.2"
GOST2012_512_SIGNATURE = "1.2.643.7.1.1.3.3"
GOST2001_SIGNATURE = "1.2.643.2.2.3"
SHA256_RSA_SIGNATURE = "1.2.840.113549.1.1.11"


# --- a minimal DER writer, enough for a certificate ---------------------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        encoded = bytes([length])
    else:
        size = length.to_bytes((length.bit_length() + 7) // 8, "big")
        encoded = bytes([0x80 | len(size)]) + size
    return bytes([tag]) + encoded + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([first * 40 + second])
    for number in rest:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode())


def utc_time(moment: datetime) -> bytes:
    return tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())


def name(*attributes: tuple[str, str]) -> bytes:
    return seq(*(tlv(0x31, seq(oid(attr_oid), utf8(value))) for attr_oid, value in attributes))


def gost_like_certificate(
    *,
    key_oid: str = GOST2012_256_KEY,
    signature_oid: str = GOST2012_256_SIGNATURE,
    not_before: datetime = datetime(2020, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2040, 1, 1, tzinfo=UTC),
    serial: int = 0x0123456789ABCDEF,
    key_bytes: int = 64,
) -> bytes:
    """DER of a v3 certificate with the given OIDs, a random-looking key and signature."""
    subject = name(
        ("2.5.4.6", "RU"),
        ("2.5.4.10", "ГБУЗ МИАЦ"),
        ("1.2.643.100.1", "1027700000000"),
        ("1.2.643.100.4", "7700000000"),
        ("2.5.4.3", "esia_77"),
    )
    paramset = seq(oid("1.2.643.7.1.2.1.1.1"), oid("1.2.643.7.1.1.2.2"))
    public_key = tlv(0x03, b"\x00" + tlv(0x04, bytes(range(key_bytes))))
    tbs = seq(
        tlv(0xA0, integer(2)),
        integer(serial),
        seq(oid(signature_oid)),
        subject,
        seq(utc_time(not_before), utc_time(not_after)),
        subject,
        seq(seq(oid(key_oid), paramset), public_key),
    )
    return seq(tbs, seq(oid(signature_oid)), tlv(0x03, b"\x00" + bytes(range(64, 128))))


def pem_of(der: bytes) -> str:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


# --- certificates from cryptography's builder ---------------------------------------------------


def built_certificate(private_key, *, san=None, ca=False, serial=4242, algorithm=None):
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "RU"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MIAC 77"),
            x509.NameAttribute(NameOID.COMMON_NAME, "zapis.miac77.ru"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC))
        .not_valid_after(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(private_key, algorithm)


@pytest.fixture(scope="module")
def rsa_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    san = [
        x509.DNSName("zapis.miac77.ru"),
        x509.DNSName("77.2dr.ru"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    return built_certificate(key, san=san, algorithm=hashes.SHA256())


@pytest.fixture(scope="module")
def ec_certificate():
    return built_certificate(ec.generate_private_key(ec.SECP384R1()), ca=True, algorithm=hashes.SHA384())


@pytest.fixture(scope="module")
def ed25519_certificate():
    return built_certificate(ed25519.Ed25519PrivateKey.generate(), serial=0xFF)


def test_rsa_certificate_with_san(rsa_certificate):
    der = rsa_certificate.public_bytes(serialization.Encoding.DER)
    info = x509_info(rsa_certificate.public_bytes(serialization.Encoding.PEM).decode())
    assert info["key_algorithm"] == "rsa"
    assert info["key_size"] == 2048
    assert info["public_key_oid"] == "1.2.840.113549.1.1.1"
    assert info["signature_algorithm_oid"] == SHA256_RSA_SIGNATURE
    assert info["signature_algorithm"] == "sha256WithRSAEncryption"
    assert info["dns_names"] == ["zapis.miac77.ru", "77.2dr.ru"]
    assert info["ip_addresses"] == ["127.0.0.1"]
    assert info["subject"] == "CN=zapis.miac77.ru,O=MIAC 77,C=RU"
    assert info["subject_fields"] == {"C": "RU", "O": "MIAC 77", "CN": "zapis.miac77.ru"}
    assert info["issuer"] == info["subject"]
    assert info["self_issued"] is True
    assert info["is_ca"] is False
    assert info["version"] == 3
    assert info["serial_number"] == "1092"  # 4242
    assert info["serial_number_decimal"] == "4242"
    assert info["not_before"] == "2025-03-01T12:00:00Z"
    assert info["not_after"] == "2026-03-01T12:00:00Z"
    assert info["sha1_thumbprint"] == rsa_certificate.fingerprint(hashes.SHA1()).hex().upper()
    assert info["sha256_fingerprint"] == rsa_certificate.fingerprint(hashes.SHA256()).hex().upper()
    assert info["streebog256"] == gosthash.new("streebog256", data=der).hexdigest().upper()


def test_ec_certificate(ec_certificate):
    info = x509_info(ec_certificate.public_bytes(serialization.Encoding.PEM).decode())
    assert (info["key_algorithm"], info["key_size"]) == ("ec", 384)
    assert info["public_key_oid"] == "1.2.840.10045.2.1"
    assert info["signature_algorithm_oid"] == "1.2.840.10045.4.3.3"
    assert info["is_ca"] is True
    assert info["dns_names"] == []


def test_ed25519_certificate(ed25519_certificate):
    info = x509_info(ed25519_certificate.public_bytes(serialization.Encoding.PEM).decode())
    assert (info["key_algorithm"], info["key_size"], info["public_key_oid"]) == ("ed25519", 256, "1.3.101.112")
    assert info["serial_number"] == "FF"


@pytest.mark.parametrize(
    ("key_oid", "key_algorithm", "key_size"),
    [
        (GOST2012_256_KEY, "gost2012_256", 256),
        (GOST2012_512_KEY, "gost2012_512", 512),
        (GOST2001_KEY, "gost2001", 256),
        ("1.2.3.4.5", "unknown", None),
    ],
)
def test_key_algorithm_from_the_oid(key_oid, key_algorithm, key_size):
    info = x509_info(pem_of(gost_like_certificate(key_oid=key_oid)))
    assert (info["key_algorithm"], info["key_size"], info["public_key_oid"]) == (key_algorithm, key_size, key_oid)


def test_gost_certificate_fields():
    der = gost_like_certificate(serial=0x0123456789ABCDEF)
    info = x509_info(pem_of(der))
    assert info["subject"] == "CN=esia_77,INNLE=7700000000,OGRN=1027700000000,O=ГБУЗ МИАЦ,C=RU"
    assert info["subject_fields"]["OGRN"] == "1027700000000"
    assert info["subject_fields"]["INNLE"] == "7700000000"
    assert info["subject_fields"]["O"] == "ГБУЗ МИАЦ"
    assert info["serial_number"] == "0123456789ABCDEF"
    assert info["serial_number_decimal"] == str(0x0123456789ABCDEF)
    assert info["signature_algorithm_oid"] == GOST2012_256_SIGNATURE
    assert info["signature_algorithm"] == "GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)"
    assert info["sha1_thumbprint"] == hashlib.sha1(der).hexdigest().upper()
    assert len(info["streebog256"]) == 64
    assert info["streebog256"] == info["streebog256"].upper()
    assert info["dns_names"] == []
    assert info["is_ca"] is False


def test_every_interface_key_is_present():
    info = x509_info(pem_of(gost_like_certificate()))
    interface_keys = {
        "subject", "issuer", "serial_number", "not_before", "not_after", "key_algorithm", "key_size", "public_key_oid",
        "signature_algorithm_oid", "dns_names", "sha1_thumbprint", "sha256_fingerprint", "streebog256",
    }  # fmt: skip
    assert interface_keys <= set(info)


# --- input forms --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gost_der():
    return gost_like_certificate()


def test_same_info_from_every_input_form(gost_der):
    pem = pem_of(gost_der)
    reference = x509_info(pem)
    forms = {
        "base64 of DER (slurp of a .cer)": base64.b64encode(gost_der).decode(),
        "base64 of PEM (slurp of a .pem)": base64.b64encode(pem.encode()).decode(),
        "base64 with line breaks": base64.encodebytes(gost_der).decode(),
        "DER bytes": gost_der,
        "PEM bytes": pem.encode(),
        "PEM after other text": "Bag Attributes\n    friendlyName: esia\n" + pem,
        "PEM with CRLF": pem.replace("\n", "\r\n"),
    }
    for form, value in forms.items():
        assert x509_info(value) == reference, form


def test_first_certificate_of_a_bundle(gost_der, rsa_certificate):
    bundle = pem_of(gost_der) + rsa_certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert x509_info(bundle)["key_algorithm"] == "gost2012_256"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (42, "got int"),
        (None, "got NoneType"),
        (["-----BEGIN CERTIFICATE-----"], "got list"),
        ("", "empty"),
        ("   \n", "empty"),
        ("not base64 at all!", "neither PEM"),
        (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), "not an X.509 certificate"),
        (base64.b64encode(b"hello world").decode(), "not an X.509 certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not an X.509 certificate"),
        (b"\x00\x01\x02", "not an X.509 certificate"),
    ],
)
def test_rejects_what_is_not_a_certificate(bad, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        x509_info(bad)


def test_rejects_a_private_key():
    key_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    with pytest.raises(AnsibleFilterError, match=r"not an X\.509 certificate"):
        x509_info(key_pem)


# --- x509_require_gost2012 ----------------------------------------------------------------------


def require_error(data, at="2030-06-01T00:00:00Z") -> str:
    with pytest.raises(AnsibleFilterError) as caught:
        x509_require_gost2012(data, at)
    return str(caught.value)


@pytest.mark.parametrize(
    ("key_oid", "signature_oid"),
    [
        (GOST2012_256_KEY, GOST2012_256_SIGNATURE),
        (GOST2012_512_KEY, GOST2012_512_SIGNATURE),
        (GOST2012_256_KEY, GOST2012_512_SIGNATURE),  # a 256-bit key certified by a 512-bit CA
    ],
)
def test_accepts_gost2012(key_oid, signature_oid):
    der = gost_like_certificate(key_oid=key_oid, signature_oid=signature_oid)
    info = x509_require_gost2012(pem_of(der), "2030-06-01T00:00:00Z")
    assert info == x509_info(der)


def test_accepts_gost2012_now_by_default():
    assert x509_require_gost2012(gost_like_certificate(not_after=datetime(2049, 12, 31, tzinfo=UTC)))


def test_rejects_rsa(rsa_certificate):
    message = require_error(rsa_certificate.public_bytes(serialization.Encoding.PEM).decode(), "2025-06-01T00:00:00Z")
    assert "the public key is rsa (OID 1.2.840.113549.1.1.1)" in message
    assert f"the signature algorithm is sha256WithRSAEncryption (OID {SHA256_RSA_SIGNATURE})" in message
    assert "expired" not in message


def test_rejects_ec(ec_certificate):
    assert "the public key is ec" in require_error(ec_certificate.public_bytes(serialization.Encoding.PEM).decode())


def test_rejects_gost2001():
    message = require_error(gost_like_certificate(key_oid=GOST2001_KEY, signature_oid=GOST2001_SIGNATURE))
    assert "the public key is GOST R 34.10-2001 (OID 1.2.643.2.2.19)" in message
    assert "GOST R 34.11-94 with GOST R 34.10-2001 (OID 1.2.643.2.2.3)" in message


def test_rejects_gost2012_key_under_an_rsa_signature():
    message = require_error(gost_like_certificate(signature_oid=SHA256_RSA_SIGNATURE))
    assert "public key" not in message
    assert "the signature algorithm is sha256WithRSAEncryption" in message


def test_rejects_unknown_key():
    assert "the public key is unknown (OID 1.2.3.4.5)" in require_error(gost_like_certificate(key_oid="1.2.3.4.5"))


def test_expired_names_the_date():
    der = gost_like_certificate(not_before=datetime(2023, 1, 1, tzinfo=UTC), not_after=datetime(2024, 1, 1, tzinfo=UTC))
    message = require_error(der, "2024-01-01T00:00:01Z")
    assert "expired on 2024-01-01T00:00:00Z" in message
    assert "'CN=esia_77," in message
    assert "serial 0123456789ABCDEF" in message


def test_expired_by_default_clock():
    der = gost_like_certificate(not_before=datetime(2023, 1, 1, tzinfo=UTC), not_after=datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(AnsibleFilterError, match=r"expired on 2024-01-01T00:00:00Z"):
        x509_require_gost2012(der)


def test_not_yet_valid_names_the_date():
    der = gost_like_certificate(not_before=datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC))
    assert "not yet valid until 2031-02-03T04:05:06Z" in require_error(der, "2030-06-01T00:00:00Z")


@pytest.mark.parametrize("at", ["2020-01-01T00:00:00Z", "2040-01-01T00:00:00+00:00", "2040-01-01T03:00:00+03:00"])
def test_validity_bounds_are_inclusive(at):
    assert x509_require_gost2012(gost_like_certificate(), at)


def test_naive_time_is_utc():
    with pytest.raises(AnsibleFilterError, match="expired"):
        x509_require_gost2012(gost_like_certificate(), "2040-01-01T00:00:01")
    assert x509_require_gost2012(gost_like_certificate(), datetime(2030, 1, 1))


def test_reports_every_problem_at_once(rsa_certificate):
    message = require_error(rsa_certificate.public_bytes(serialization.Encoding.PEM).decode(), "2027-01-01T00:00:00Z")
    assert "public key is rsa" in message
    assert "signature algorithm is sha256WithRSAEncryption" in message
    assert "expired on 2026-03-01T12:00:00Z" in message


@pytest.mark.parametrize(("at", "message"), [("tomorrow", "ISO 8601 time"), (20300101, "got int")])
def test_bad_moment(at, message):
    with pytest.raises(AnsibleFilterError, match=message):
        x509_require_gost2012(gost_like_certificate(), at)


def test_require_rejects_what_is_not_a_certificate():
    with pytest.raises(AnsibleFilterError, match="neither PEM"):
        x509_require_gost2012("nonsense!")


def test_filters_are_registered_under_their_public_names():
    filters = FilterModule().filters()
    assert filters["x509_info"] is x509_info
    assert filters["x509_require_gost2012"] is x509_require_gost2012
