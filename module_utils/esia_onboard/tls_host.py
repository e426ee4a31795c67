"""Host-side TLS state of portal_https (library/portal_https_tls.py).

Reading needs nothing beyond the standard library; making a key, a request or
a self-signed certificate imports ``cryptography`` (python3-cryptography on
the host, installed by the role before it makes keys there).

Installing a pair keeps the guarantee the tests check: key and certificate
never change in place. Each pair gets its own directory
(``pairs/<name>.<first 16 hex of the leaf's SHA-256>``), written in full
first; then the link ``live/<name>`` is switched to it in one rename, so a
run interrupted at any point leaves ``live/<name>`` on a complete, matching
pair (the old one or the new one). The previous pair is kept, older ones
removed.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import tempfile

SUBJECT_OIDS = {
    "commonName": "COMMON_NAME",
    "CN": "COMMON_NAME",
    "countryName": "COUNTRY_NAME",
    "C": "COUNTRY_NAME",
    "stateOrProvinceName": "STATE_OR_PROVINCE_NAME",
    "ST": "STATE_OR_PROVINCE_NAME",
    "localityName": "LOCALITY_NAME",
    "L": "LOCALITY_NAME",
    "organizationName": "ORGANIZATION_NAME",
    "O": "ORGANIZATION_NAME",
    "organizationalUnitName": "ORGANIZATIONAL_UNIT_NAME",
    "OU": "ORGANIZATIONAL_UNIT_NAME",
    "emailAddress": "EMAIL_ADDRESS",
    "streetAddress": "STREET_ADDRESS",
    "serialNumber": "SERIAL_NUMBER",
}

_NAMESERVER = re.compile(r"^\s*nameserver\s+(\S+)", re.MULTILINE)


def read_text(path: str) -> str:
    """The file's text, "" when it does not exist or cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def resolvers(resolv_conf: str) -> list[str]:
    """The name servers of resolv.conf text, IPv6 addresses in brackets (nginx's resolver syntax)."""
    found = []
    for address in _NAMESERVER.findall(resolv_conf):
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"
        found.append(address)
    return found


def pair_name(file: str, leaf_pem: str) -> str:
    """pairs/<file>.<16 hex>: the pair directory of one certificate."""
    return f"{file}.{hashlib.sha256(leaf_pem.encode()).hexdigest()[:16]}"


# --- keys, requests, self-signed certificates (need cryptography) ----------


def _crypto():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    return x509, hashes, serialization, ec, rsa, ExtendedKeyUsageOID, NameOID


def _curve(ec, name: str):
    curves = {
        "secp256r1": ec.SECP256R1,
        "prime256v1": ec.SECP256R1,
        "secp384r1": ec.SECP384R1,
        "secp521r1": ec.SECP521R1,
    }
    if name not in curves:
        raise ValueError(f"portal_https_key_curve: {name!r} is not one of {', '.join(sorted(curves))}")
    return curves[name]()


def load_key(text: str):
    _x509, _hashes, serialization, *_ = _crypto()
    try:
        return serialization.load_pem_private_key(text.encode(), password=None)
    except (TypeError, ValueError):
        return None


def key_fits(key, key_type: str, size: int, curve: str) -> bool:
    _x509, _hashes, _ser, ec, rsa, *_ = _crypto()
    if key_type == "rsa":
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size == size
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == _curve(ec, curve).name


def new_key(key_type: str, size: int, curve: str) -> tuple[object, str]:
    _x509, _hashes, serialization, ec, rsa, *_ = _crypto()
    key = rsa.generate_private_key(65537, size) if key_type == "rsa" else ec.generate_private_key(_curve(ec, curve))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, pem.decode()


def public_pem(key) -> str:
    _x509, _hashes, serialization, *_ = _crypto()
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _subject_name(subject: dict, common_name: str):
    x509, _h, _s, _ec, _rsa, _eku, NameOID = _crypto()
    attributes = []
    for key, value in subject.items():
        if not value or key in ("commonName", "CN"):
            continue
        if key not in SUBJECT_OIDS:
            raise ValueError(
                f"portal_https_csr_subject: {key!r} is not a subject attribute ({', '.join(SUBJECT_OIDS)})"
            )
        attributes.append(x509.NameAttribute(getattr(NameOID, SUBJECT_OIDS[key]), str(value)))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(x509, key_type: str):
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_type == "rsa",
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def request_fits(csr_pem: str, key, names: list[str], subject: dict, key_type: str) -> bool:
    """The request on the host is the one the settings ask for, and carries the key's public half."""
    x509, _h, serialization, *_ = _crypto()
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if csr.public_key().public_bytes(serialization.Encoding.DER, spki) != key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        return False
    if set(csr.subject) != set(_subject_name(subject, names[0])):
        return False
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = csr.extensions.get_extension_for_class(x509.KeyUsage)
        eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    wanted_usage = _key_usage(x509, key_type)
    return (
        san.get_values_for_type(x509.DNSName) == list(names)
        and usage.critical
        and usage.value == wanted_usage
        and [u.dotted_string for u in eku] == ["1.3.6.1.5.5.7.3.1"]
    )


def new_request(key, names: list[str], subject: dict, key_type: str) -> str:
    x509, hashes, serialization, _ec, _rsa, ExtendedKeyUsageOID, _n = _crypto()
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_subject_name(subject, names[0]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(_key_usage(x509, key_type), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def selfsigned_fits(cert_pem: str, key, names: list[str], renew_days: int) -> bool:
    """A self-signed certificate made before stays while it is this key's, covers the names and is not due."""
    x509, _h, serialization, *_ = _crypto()
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    same_key = cert.public_key().public_bytes(serialization.Encoding.DER, spki) == key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    )
    due = cert.not_valid_after_utc - datetime.timedelta(days=renew_days) <= datetime.datetime.now(datetime.UTC)
    return same_key and san.get_values_for_type(x509.DNSName) == list(names) and not due


def new_selfsigned(key, csr_pem: str, days: int) -> str:
    x509, hashes, serialization, *_ = _crypto()
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(csr.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
    )
    for extension in csr.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


# --- files -------------------------------------------------------------------


def write_file(path: str, text: str, mode: int) -> None:
    """Write `text` to `path` atomically (a temporary file in the same directory, then one rename), root-owned."""
    directory = os.path.dirname(path)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".portal_https.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chown(temporary, 0, 0) if os.geteuid() == 0 else None
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def ensure_directory(path: str, mode: int) -> bool:
    """Create or fix one root-owned directory; True when something changed."""
    changed = False
    if not os.path.isdir(path):
        if os.path.lexists(path):
            os.unlink(path)
        os.mkdir(path, mode)
        changed = True
    state = os.stat(path)
    if state.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        changed = True
    if os.geteuid() == 0 and (state.st_uid, state.st_gid) != (0, 0):
        os.chown(path, 0, 0)
        changed = True
    return changed


def link_points_at(path: str, target: str) -> bool:
    return os.path.islink(path) and os.readlink(path) == target


def switch_link(path: str, target: str) -> None:
    """Point the symbolic link `path` at `target` in one rename."""
    temporary = f"{path}.portal_https-new"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, path)


def file_differs(path: str, text: str, mode: int) -> bool:
    if not os.path.isfile(path) or os.path.islink(path):
        return True
    state = os.stat(path)
    if state.st_mode & 0o7777 != mode or (os.geteuid() == 0 and (state.st_uid, state.st_gid) != (0, 0)):
        return True
    return read_text(path) != text
