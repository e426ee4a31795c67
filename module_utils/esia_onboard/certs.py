"""Certificates: loading PEM, base64 (what ``slurp`` returns) or DER, and reading what every caller asks.

One place for what filter_plugins/x509.py, roles/portal_https/filter_plugins/portal_https.py
and library/cryptopro_key.py each parsed on their own. ``cryptography`` is imported only by
the functions that need it, so a module on a host without it can still use :func:`to_der`.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+.+?-----END CERTIFICATE-----", re.DOTALL)
PEM_MARKER = b"-----BEGIN"


class CertificateError(ValueError):
    """The input is not what a certificate reader expects; the message says what it is instead."""


def certificate_bytes(data: Any) -> bytes:
    """PEM or DER bytes from PEM text, base64 of a DER or PEM file, or raw bytes."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if not isinstance(data, str):
        raise CertificateError(f"expects PEM text or base64 of a DER/PEM certificate, got {type(data).__name__}")
    if "-----BEGIN" in data:
        return data.encode("ascii", errors="replace")
    compact = "".join(data.split())
    if not compact:
        raise CertificateError("the input is empty, expected a certificate")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CertificateError(f"the input is neither PEM (no -----BEGIN line) nor base64: {exc}") from exc


def pem_blocks(data: bytes) -> list[bytes]:
    """Every ``-----BEGIN CERTIFICATE-----`` block, in order."""
    return PEM_CERTIFICATE.findall(data)


def to_der(data: bytes) -> bytes:
    """The DER of the first PEM certificate in ``data``; ``data`` itself when it holds no PEM."""
    blocks = pem_blocks(data)
    if not blocks:
        return data
    body = blocks[0].split(b"-----", 2)[2].rsplit(b"-----END", 1)[0]
    return base64.b64decode(b"".join(body.split()))


def load_certificate(data: Any) -> Any:
    """The (first) certificate in PEM text, base64 of DER or PEM, or bytes (a cryptography Certificate)."""
    from cryptography import x509

    raw = certificate_bytes(data)
    try:
        if PEM_MARKER in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise CertificateError(f"the input is not an X.509 certificate: {exc}") from exc


def load_pem_certificates(data: str | bytes, label: str) -> list[Any]:
    """Every PEM certificate in ``data``; names ``label`` and the position of one that does not load."""
    from cryptography import x509

    raw = data.encode() if isinstance(data, str) else data
    certificates = []
    for position, block in enumerate(pem_blocks(raw), start=1):
        try:
            certificates.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise CertificateError(
                f"{label}: certificate #{position} is not a readable X.509 certificate ({exc})"
            ) from exc
    return certificates


def is_ca(certificate: Any) -> bool:
    """BasicConstraints CA:TRUE (a certificate without the extension is no CA)."""
    from cryptography import x509

    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False
