"""Filters `x509_info` and `x509_require_gost2012`: read certificates by OID, GOST ones included.

`cryptography` parses GOST certificates but cannot load their public keys,
and community.crypto's info module fails on them, so everything here is read
from the OIDs and the DER bytes.
"""

from __future__ import annotations

import hashlib
import warnings
from datetime import UTC, datetime

import ansible.module_utils
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, ObjectIdentifier

_MODULE_UTILS = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
from ansible.module_utils.esia_onboard import certs  # noqa: E402

# Public-key OID -> (key_algorithm, key size in bits when the OID fixes it).
_KEY_ALGORITHMS: dict[str, tuple[str, int | None]] = {
    "1.2.643.7.1.1.1.1": ("gost2012_256", 256),
    "1.2.643.7.1.1.1.2": ("gost2012_512", 512),
    "1.2.643.2.2.19": ("gost2001", 256),
    "1.2.840.113549.1.1.1": ("rsa", None),
    "1.2.840.113549.1.1.10": ("rsa", None),  # RSASSA-PSS key
    "1.2.840.10045.2.1": ("ec", None),
    "1.3.101.112": ("ed25519", 256),
}
# Signature OIDs `cryptography` has no name for.
_SIGNATURE_NAMES: dict[str, str] = {
    "1.2.643.7.1.1.3.2": "GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)",
    "1.2.643.7.1.1.3.3": "GOST R 34.10-2012 with GOST R 34.11-2012 (512 bit)",
    "1.2.643.2.2.3": "GOST R 34.11-94 with GOST R 34.10-2001",
    "1.2.643.2.2.4": "GOST R 34.11-94 with GOST R 34.10-94",
}
_GOST2012_KEYS = frozenset({"gost2012_256", "gost2012_512"})
_GOST2012_SIGNATURES = frozenset({"1.2.643.7.1.1.3.2", "1.2.643.7.1.1.3.3"})
# How a key algorithm is named in error messages.
_KEY_NAMES = {
    "gost2012_256": "GOST R 34.10-2012 (256 bit)",
    "gost2012_512": "GOST R 34.10-2012 (512 bit)",
    "gost2001": "GOST R 34.10-2001",
}
# Russian subject attributes (as OpenSSL names them), for subject/issuer strings.
_NAME_OVERRIDES = {
    ObjectIdentifier("1.2.643.100.1"): "OGRN",
    ObjectIdentifier("1.2.643.100.3"): "SNILS",
    ObjectIdentifier("1.2.643.100.4"): "INNLE",
    ObjectIdentifier("1.2.643.100.5"): "OGRNIP",
    ObjectIdentifier("1.2.643.3.131.1.1"): "INN",
    ObjectIdentifier("2.5.4.4"): "SN",
    ObjectIdentifier("2.5.4.42"): "GN",
    ObjectIdentifier("2.5.4.12"): "title",
}


def streebog256(data: bytes) -> bytes:
    """GOST R 34.11-2012 (Streebog) 256-bit digest, byte order as OpenSSL and CryptoPro print it."""
    try:
        # Imported on use, so a controller without gostcrypto gets this message, not a load error.
        from gostcrypto import gosthash
    except ImportError as exc:
        raise AnsibleFilterError(
            "x509_info needs the Python package gostcrypto on the controller for the Streebog-256 digest"
        ) from exc
    return bytes(gosthash.new("streebog256", data=data).digest())


def _iso8601(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _certificate_bytes(data: object, filter_name: str) -> bytes:
    """PEM or DER bytes from PEM text, base64 of DER or PEM (what `slurp` returns), or raw bytes."""
    try:
        return certs.certificate_bytes(data)
    except certs.CertificateError as exc:
        separator = " " if str(exc).startswith("expects") else ": "
        raise AnsibleFilterError(f"{filter_name}{separator}{exc}") from exc


def load_certificate(data: object, filter_name: str = "x509_info") -> x509.Certificate:
    """The (first) certificate in PEM text, base64 of DER or PEM, or bytes."""
    raw = _certificate_bytes(data, filter_name)
    try:
        return certs.load_certificate(raw)
    except certs.CertificateError as exc:
        raise AnsibleFilterError(f"{filter_name}: {exc}") from exc


def _name_string(name: x509.Name) -> str:
    return name.rfc4514_string(_NAME_OVERRIDES)


def _name_fields(name: x509.Name) -> dict[str, str]:
    """Attribute short name -> value; the first value when an attribute repeats."""
    fields: dict[str, str] = {}
    for attribute in name:
        key = _NAME_OVERRIDES.get(attribute.oid) or attribute.rfc4514_attribute_name
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        fields.setdefault(key, value)
    return fields


def _key_size(certificate: x509.Certificate, key_algorithm: str, fixed_size: int | None) -> int | None:
    """The OID's size for GOST/Ed25519; RSA and EC keys are loaded to read theirs; None otherwise."""
    if fixed_size is not None or key_algorithm not in {"rsa", "ec"}:
        return fixed_size
    try:
        return getattr(certificate.public_key(), "key_size", None)
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return None


def _san(certificate: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        extension = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return [], []
    names = extension.value
    return names.get_values_for_type(x509.DNSName), [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]


def _is_ca(certificate: x509.Certificate) -> bool:
    return certs.is_ca(certificate)


def _serial_hex(serial: int) -> str:
    digits = f"{serial:X}"
    return digits.zfill(len(digits) + len(digits) % 2)


def signature_algorithm_name(oid: str) -> str:
    """A readable name for a signature OID (the dotted OID when nobody knows it)."""
    if oid in _SIGNATURE_NAMES:
        return _SIGNATURE_NAMES[oid]
    name = getattr(ObjectIdentifier(oid), "_name", "")
    return name if name and name != "Unknown OID" else oid


def x509_info(data: object) -> dict:
    """What a certificate says, read by OIDs (see x509_info.yml for the keys)."""
    # cryptography warns on stderr about attributes longer than X.520 allows
    # (CryptoPro and CAs issue such names); Ansible would print that warning
    # as "errantly sent data directly to stderr". The values are kept as is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _x509_info(data)


def _x509_info(data: object) -> dict:
    certificate = load_certificate(data, "x509_info")
    der = certificate.public_bytes(serialization.Encoding.DER)
    public_key_oid = certificate.public_key_algorithm_oid.dotted_string
    signature_oid = certificate.signature_algorithm_oid.dotted_string
    key_algorithm, fixed_size = _KEY_ALGORITHMS.get(public_key_oid, ("unknown", None))
    dns_names, ip_addresses = _san(certificate)
    return {
        "subject": _name_string(certificate.subject),
        "subject_fields": _name_fields(certificate.subject),
        "issuer": _name_string(certificate.issuer),
        "issuer_fields": _name_fields(certificate.issuer),
        "self_issued": certificate.subject == certificate.issuer,
        "is_ca": _is_ca(certificate),
        "version": certificate.version.value + 1,
        "serial_number": _serial_hex(certificate.serial_number),
        "serial_number_decimal": str(certificate.serial_number),
        "not_before": _iso8601(certificate.not_valid_before_utc),
        "not_after": _iso8601(certificate.not_valid_after_utc),
        "key_algorithm": key_algorithm,
        "key_size": _key_size(certificate, key_algorithm, fixed_size),
        "public_key_oid": public_key_oid,
        "signature_algorithm": signature_algorithm_name(signature_oid),
        "signature_algorithm_oid": signature_oid,
        "dns_names": dns_names,
        "ip_addresses": ip_addresses,
        "sha1_thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        "sha256_fingerprint": hashlib.sha256(der).hexdigest().upper(),
        "streebog256": streebog256(der).hex().upper(),
    }


def _moment(at: object) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if isinstance(at, datetime):
        moment = at
    elif isinstance(at, str):
        try:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00") if at.endswith("Z") else at)
        except ValueError as exc:
            raise AnsibleFilterError(f"x509_require_gost2012: 'at' must be an ISO 8601 time, got {at!r}") from exc
    else:
        raise AnsibleFilterError(f"x509_require_gost2012: 'at' must be an ISO 8601 string, got {type(at).__name__}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def x509_require_gost2012(data: object, at: object = None) -> dict:
    """x509_info of the certificate when its key and signature are GOST R 34.10-2012 and it is
    valid at `at` (default: now); otherwise raise naming everything that is wrong."""
    info = x509_info(data)
    certificate = load_certificate(data, "x509_require_gost2012")
    moment = _moment(at)
    problems = []
    if info["key_algorithm"] not in _GOST2012_KEYS:
        found = _KEY_NAMES.get(info["key_algorithm"], info["key_algorithm"])
        problems.append(f"the public key is {found} (OID {info['public_key_oid']}), not GOST R 34.10-2012")
    if info["signature_algorithm_oid"] not in _GOST2012_SIGNATURES:
        problems.append(
            f"the signature algorithm is {info['signature_algorithm']} (OID {info['signature_algorithm_oid']}),"
            " not GOST R 34.10-2012 with Streebog"
        )
    if moment < certificate.not_valid_before_utc:
        problems.append(f"not yet valid until {info['not_before']}")
    if moment > certificate.not_valid_after_utc:
        problems.append(f"expired on {info['not_after']}")
    if problems:
        raise AnsibleFilterError(
            f"x509_require_gost2012: certificate {info['subject']!r} (serial {info['serial_number']}): "
            + "; ".join(problems)
        )
    return info


class FilterModule:
    def filters(self) -> dict:
        return {"x509_info": x509_info, "x509_require_gost2012": x509_require_gost2012}
