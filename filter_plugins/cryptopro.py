"""Filters for the cryptopro role: certificate subjects on the command line of
OpenSSL and CryptoPro, and the output of CryptoPro CSP's command-line tools.

The output formats are those CryptoPro CSP 4.0/5.0 print on Linux (see
tests/doubles/cryptopro/README.md for the sources of every format)."""

from __future__ import annotations

import re

import ansible.module_utils
from ansible.errors import AnsibleFilterError

_MODULE_UTILS = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
from ansible.module_utils.esia_onboard import cryptopro as _rules  # noqa: E402
from ansible.module_utils.esia_onboard import names as _names  # noqa: E402
from ansible.module_utils.esia_onboard import subjects as _subjects  # noqa: E402

# Attribute types: (OpenSSL -subj name, CryptoPro -dn name). Russian
# qualified-certificate attributes go by OID on CryptoPro's side, whose name
# table varies between CSP versions; OpenSSL learns INNLE from the role's
# OpenSSL configuration (oid_section).
_DN_TYPES: dict[str, tuple[str, str]] = {
    "C": ("C", "C"),
    "ST": ("ST", "S"),
    "S": ("ST", "S"),
    "L": ("L", "L"),
    "STREET": ("street", "STREET"),
    "O": ("O", "O"),
    "OU": ("OU", "OU"),
    "CN": ("CN", "CN"),
    "E": ("emailAddress", "E"),
    "EMAIL": ("emailAddress", "E"),
    "T": ("title", "T"),
    "SN": ("SN", "SN"),
    "G": ("GN", "G"),
    "OGRN": ("OGRN", "1.2.643.100.1"),
    "SNILS": ("SNILS", "1.2.643.100.3"),
    "INNLE": ("INNLE", "1.2.643.100.4"),
    "INN": ("INN", "1.2.643.3.131.1.1"),
}
_OID = re.compile(r"^[0-2](\.[0-9]+)+$")
# Upper bounds of X.520 (ub-common-name etc.); CAs and ESIA reject longer values.
# (C is checked below as a two-letter code.)
_DN_LIMITS = {**{k: v for k, v in _subjects.LIMITS.items() if k != "C"}, "S": _subjects.LIMITS["ST"]}
# Characters that make CryptoAPI's CertStrToName need a quoted value.
_CRYPTOAPI_SPECIAL = set(',+="\n<>#;')


def _require_str(name: str, value: object, what: str) -> str:
    if not isinstance(value, str):
        raise AnsibleFilterError(f"{name} expects {what}, got {type(value).__name__}")
    return value


def cryptopro_dn(subject: list, style: str = "openssl") -> str:
    """Render a subject given as a list of {type, value} for OpenSSL's `-subj`
    (style `openssl`) or CryptoPro's `cryptcp -dn` (style `cryptopro`)."""
    if style not in ("openssl", "cryptopro"):
        raise AnsibleFilterError(f"cryptopro_dn: style must be 'openssl' or 'cryptopro', got {style!r}")
    if not isinstance(subject, list) or not subject:
        raise AnsibleFilterError(
            f"cryptopro_dn expects a non-empty list of {{type, value}}, got {type(subject).__name__}"
        )
    parts: list[str] = []
    for index, item in enumerate(subject):
        if not isinstance(item, dict) or set(item) != {"type", "value"}:
            raise AnsibleFilterError(
                f"cryptopro_dn: item {index} must be a dict with exactly 'type' and 'value': {item!r}"
            )
        kind, value = item["type"], item["value"]
        if not isinstance(kind, str) or not isinstance(value, (str, int)) or isinstance(value, bool):
            raise AnsibleFilterError(f"cryptopro_dn: item {index} needs a string type and a string value: {item!r}")
        value = str(value)
        if not value.strip():
            raise AnsibleFilterError(f"cryptopro_dn: item {index} ({kind}) has an empty value")
        if any(ord(ch) < 0x20 for ch in value):
            raise AnsibleFilterError(f"cryptopro_dn: item {index} ({kind}) contains a control character")
        limit = _DN_LIMITS.get(kind.upper())
        if limit is not None and len(value) > limit:
            raise AnsibleFilterError(
                f"cryptopro_dn: {kind} may hold at most {limit} characters (X.520), got {len(value)}: {value!r}"
            )
        if kind.upper() == "C" and not re.fullmatch(r"[A-Z]{2}", value):
            raise AnsibleFilterError(f"cryptopro_dn: C must be a two-letter country code such as RU, got {value!r}")
        if _OID.match(kind):
            names = (kind, kind)
        elif kind.upper() in _DN_TYPES:
            names = _DN_TYPES[kind.upper()]
        else:
            known = ", ".join(sorted(_DN_TYPES))
            raise AnsibleFilterError(f"cryptopro_dn: unknown attribute type {kind!r} (known: {known}, or a dotted OID)")
        if style == "openssl":
            escaped = value.replace("\\", "\\\\").replace("/", "\\/")
            parts.append(f"/{names[0]}={escaped}")
        else:
            needs_quotes = value != value.strip() or any(ch in _CRYPTOAPI_SPECIAL for ch in value)
            rendered = '"' + value.replace('"', '""') + '"' if needs_quotes else value
            parts.append(f"{names[1]}={rendered}")
    return "".join(parts) if style == "openssl" else ", ".join(parts)


def cryptopro_fqcn(name: str, reader: str = "HDIMAGE") -> str:
    """`esia_77` -> `\\\\.\\HDIMAGE\\esia_77`, refusing names CryptoPro or a
    file system would mangle."""
    _require_str("cryptopro_fqcn", name, "a container name")
    if not _names.container_valid(name):
        raise AnsibleFilterError(
            f"cryptopro_fqcn: container name {name!r} must be 1-64 characters of letters, digits, '_', '-', '.'"
            " and must not start with '.' or '-'"
        )
    return f"\\\\.\\{reader}\\{name}"


def cryptopro_containers(output: str) -> dict:
    """Parse `csptest -keyset -enum_cont -fqcn -verifyc` (already decoded
    from cp1251): the fully qualified container names and their short names
    (the parser of module_utils/esia_onboard/cryptopro.py, which the modules use)."""
    _require_str("cryptopro_containers", output, "the text of `csptest -keyset -enum_cont -fqcn -verifyc`")
    try:
        listed = _rules.container_list(output)
    except ValueError as exc:
        raise AnsibleFilterError(f"cryptopro_containers: {exc}") from exc
    containers = listed["containers"]
    return {
        **listed,
        "names": [c["name"] for c in containers],
        "fqcns": [c["fqcn"] for c in containers],
    }


def cryptopro_certmgr_list(output: str) -> dict:
    """Parse `certmgr -list [...]`: one dict per certificate with subject,
    issuer, serial (upper-case hex), sha1 (upper-case hex), not_before /
    not_after (ISO 8601 UTC), private_key_link, container, provider_type
    (the parser of module_utils/esia_onboard/cryptopro.py)."""
    _require_str("cryptopro_certmgr_list", output, "the text of `certmgr -list`")
    try:
        return _rules.certmgr_list(output)
    except ValueError as exc:
        raise AnsibleFilterError(f"cryptopro_certmgr_list: {exc}") from exc


def cryptopro_license(output: str) -> dict:
    """Parse `cpconfig -license -view`: the serial shown, whether the licence
    is valid, its expiry text and type. `serial_normalized` drops the dashes
    (compare it with the wanted serial the same way). The parser of
    module_utils/esia_onboard/cryptopro.py; `expires` is the text CryptoPro
    prints, `expires_on` the date it means, `days_left` the days until then."""
    _require_str("cryptopro_license", output, "the text of `cpconfig -license -view`")
    try:
        parsed = _rules.parse_license(output)
    except ValueError as exc:
        raise AnsibleFilterError(f"cryptopro_license: {exc}") from exc
    return {
        "serial": parsed["serial"],
        "serial_normalized": parsed["serial_normalized"],
        "valid": parsed["valid"],
        "expires": parsed["expires_text"],
        "expires_on": parsed["expires"],
        "days_left": parsed["days_left"],
        "permanent": parsed["permanent"],
        "type": parsed["type"],
    }


def cryptopro_problems(settings: dict) -> list:
    """Every problem of the cryptopro settings (module_utils/esia_onboard/cryptopro.py:rules),
    including the controller's files (vendor archive, gamma); empty when all is well."""
    if not isinstance(settings, dict):
        raise AnsibleFilterError(f"cryptopro_problems expects a dict of settings, got {type(settings).__name__}")
    return _rules.rules(settings)


def cryptopro_warnings(settings: dict) -> list:
    """Advice about the cryptopro settings that does not fail a run."""
    return _rules.warnings(settings)


def cryptopro_file_b64(path: str) -> str:
    """Base64 of a file on the controller (a DER certificate is binary; the file lookup reads text only)."""
    import base64

    _require_str("cryptopro_file_b64", path, "a path on the controller")
    try:
        with open(path, "rb") as handle:
            return base64.b64encode(handle.read()).decode("ascii")
    except OSError as exc:
        raise AnsibleFilterError(f"cryptopro_file_b64: cannot read {path} on the controller: {exc.strerror}") from exc


def _x509():
    """filter_plugins/x509.py (loaded once, by module_utils/esia_onboard/esia.py)."""
    from ansible.module_utils.esia_onboard import esia

    return esia.x509_filters()


_KEY_BY_PROVIDER = {80: "gost2012_256", 81: "gost2012_512"}


def cryptopro_certificate(
    der: str, provider_type: object = 80, der_file: str = "the DER export", cpverify_hash: str = ""
) -> dict:
    """The certificate the cryptopro role leaves (base64 of DER): GOST R 34.10-2012, valid now, a key of
    the size cryptopro_provider_type means, and (cryptopro backend) CryptoPro's cpverify hash equal to
    the toolkit's Streebog-256 (client_certificate_hash). Its x509_info; raises naming what is wrong."""
    info = _x509().x509_require_gost2012(der)
    wanted = _KEY_BY_PROVIDER.get(int(str(provider_type)))
    if info["key_algorithm"] != wanted:
        raise AnsibleFilterError(
            f"The certificate in {der_file} carries a {info['key_algorithm']} key but cryptopro_provider_type "
            f"{provider_type} means {wanted}. The role never replaces a key: set the provider type back, or "
            "move the old key away deliberately (runbook 03, «Замена ключа»)."
        )
    if cpverify_hash and cpverify_hash.strip().upper() != info["streebog256"]:
        raise AnsibleFilterError(
            f"cpverify -mk -alg GR3411_2012_256 {der_file} gives {cpverify_hash.strip()} but the toolkit's "
            f"Streebog-256 (client_certificate_hash) is {info['streebog256']}: ESIA would answer ESIA-007053 "
            "(client_secret / certificate hash wrong). Check that the DER file is the certificate registered "
            "for the client_id and that CryptoPro CSP is intact."
        )
    return info


class FilterModule:
    def filters(self) -> dict:
        return {
            "cryptopro_dn": cryptopro_dn,
            "cryptopro_fqcn": cryptopro_fqcn,
            "cryptopro_containers": cryptopro_containers,
            "cryptopro_certmgr_list": cryptopro_certmgr_list,
            "cryptopro_license": cryptopro_license,
            "cryptopro_problems": cryptopro_problems,
            "cryptopro_warnings": cryptopro_warnings,
            "cryptopro_file_b64": cryptopro_file_b64,
            "cryptopro_certificate": cryptopro_certificate,
        }
