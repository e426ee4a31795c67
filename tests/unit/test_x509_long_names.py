"""x509_info must not let cryptography's long-attribute warning reach stderr:
Ansible reports any stderr from a worker as an error-looking message."""

import datetime
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from filter_plugins.x509 import x509_info

LONG_CN = "Государственное бюджетное учреждение здравоохранения МИАЦ — портал записи"


def long_name_certificate() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LONG_CN, _validate=False)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_long_subject_is_read_without_warnings():
    pem = long_name_certificate()
    assert len(LONG_CN) > 64
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = x509_info(pem)
    assert LONG_CN in info["subject"]
    assert [str(w.message) for w in caught] == []
