"""The lab CA on the controller (root -> issuing CA, EC P-256, 10 years): one
maker for the portal_https `ownca` source (library/portal_https_certificates.py)
and the lab's pebble (lab/pebble.py), which serves its directory with a
certificate from the same CA. Controller-side only; needs `cryptography`.
"""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_file(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def lab_name(label: str):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "esia-onboard lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, label),
        ]
    )


def _ca_certificate(subject, key, issuer, issuer_key, path_length):
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def ensure_lab_ca(directory: str) -> tuple[bool, str, str]:
    """The lab CA in `directory`, kept when present, made when missing.

    Returns (made now, issuing certificate path, issuing key path).
    """
    cert_path, key_path = f"{directory}/issuing-ca.crt", f"{directory}/issuing-ca.key"
    if os.path.exists(cert_path):
        return False, cert_path, key_path
    os.makedirs(directory, mode=0o700, exist_ok=True)
    root_key, issuing_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root_name = lab_name("esia-onboard lab root CA")
    root = _ca_certificate(root_name, root_key, root_name, root_key, None)
    issuing = _ca_certificate(lab_name("esia-onboard lab issuing CA"), issuing_key, root_name, root_key, 0)
    for path, key in ((f"{directory}/root-ca.key", root_key), (key_path, issuing_key)):
        write_file(
            path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            0o600,
        )
    write_file(f"{directory}/root-ca.crt", root.public_bytes(serialization.Encoding.PEM), 0o644)
    write_file(cert_path, issuing.public_bytes(serialization.Encoding.PEM), 0o644)
    return True, cert_path, key_path
