"""Secrets and their algorithms. Messages name the setting, never the secret's value."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem
from ansible.module_utils.esia_onboard.values import one_line

TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")
WEAK_TSIG_ALGORITHMS = ("hmac-md5",)
# Bytes of the hash output: a key shorter than that weakens the MAC (RFC 2104 section 3);
# longer than the block size is hashed down, so allow up to it.
_TSIG_KEY_BYTES = {
    "hmac-sha1": (20, 64),
    "hmac-sha224": (28, 64),
    "hmac-sha256": (32, 64),
    "hmac-sha384": (48, 128),
    "hmac-sha512": (64, 128),
}
PIN_MIN, PIN_MAX = 6, 64
_SERIAL = re.compile(r"[0-9A-Z]{5}(?:-?[0-9A-Z]{5}){4}", re.ASCII)
_HIDDEN = "(hidden)"


def tsig_algorithm_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "portal_domain_tsig_algorithm"
) -> list[str]:
    if value in TSIG_ALGORITHMS:
        return []
    if value in WEAK_TSIG_ALGORITHMS:
        return [
            problem(
                setting,
                value,
                "HMAC-MD5 is weak (RFC 8945 section 6); make an hmac-sha256 key (tsig-keygen -a hmac-sha256)",
            )
        ]
    return [problem(setting, value, "use one of " + ", ".join(TSIG_ALGORITHMS) + " (hmac-sha256 recommended)")]


def tsig_algorithm_warning(settings: Mapping[str, Any]) -> list[str]:
    if settings.get("portal_domain_tsig_algorithm") == "hmac-sha1":
        return [
            problem(
                "portal_domain_tsig_algorithm",
                "hmac-sha1",
                "works, but SHA-1 is deprecated: make an hmac-sha256 key with the zone's administrator",
            )
        ]
    return []


def tsig_secret_problem(secret: Any, algorithm: Any) -> str | None:
    """Why ``secret`` is not a usable TSIG secret for ``algorithm`` (None when it is)."""
    if not isinstance(secret, str) or not secret:
        return "set the key's base64 secret (the `secret` line of tsig-keygen) in the vault"
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", secret, re.ASCII):
        return "is not base64 (only A-Z a-z 0-9 + / and trailing =, on one line)"
    try:
        key = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64 (wrong padding?)"
    low, high = _TSIG_KEY_BYTES.get(algorithm, (16, 128))
    if not low <= len(key) <= high:
        return (
            f"decodes to {len(key)} bytes; a {algorithm} key has {low}..{high} (tsig-keygen -a {algorithm} makes one)"
        )
    return None


def tsig_secret_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_domain_tsig_secret") -> list[str]:
    reason = tsig_secret_problem(value, settings.get("portal_domain_tsig_algorithm", "hmac-sha256"))
    return [problem(setting, _HIDDEN, reason)] if reason else []


def pin_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "set the container PIN as a quoted string in the vault"
    text = str(value)
    if not one_line(text):
        return "must be one line (a trailing newline is part of the PIN and breaks it)"
    if not PIN_MIN <= len(text) <= PIN_MAX:
        return f"has {len(text)} characters; a PIN has {PIN_MIN}..{PIN_MAX}"
    return None


def pin_rule(value: Any, settings: Mapping[str, Any], setting: str = "cryptopro_pin") -> list[str]:
    reason = pin_problem(value)
    return [problem(setting, _HIDDEN, reason)] if reason else []


def license_serial_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "cryptopro_license_serial"
) -> list[str]:
    if value == "" or (isinstance(value, str) and _SERIAL.fullmatch(value)):
        return []
    return [
        problem(setting, _HIDDEN, 'set the 25-character serial (5 groups of 5 letters/digits, dashes optional), or ""')
    ]


def pem_key_problem(value: Any) -> str | None:
    """Why ``value`` is not an unencrypted PEM private key that loads (None when it is)."""
    if not isinstance(value, str) or "-----BEGIN" not in value:
        return "set the unencrypted PEM private key (-----BEGIN PRIVATE KEY-----...) in the vault"
    if "ENCRYPTED" in value.split("-----", 2)[1]:
        return "is encrypted; store it unencrypted in the vault (the vault encrypts it)"
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError:  # pragma: no cover - cryptography is in requirements.txt
        return None
    try:
        load_pem_private_key(value.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as error:
        return f"does not load as a PEM private key ({type(error).__name__})"
    return None


def pem_key_or_empty_rule(value: Any, settings: Mapping[str, Any], setting: str = "private_key") -> list[str]:
    if value == "":
        return []
    reason = pem_key_problem(value)
    return [problem(setting, _HIDDEN, reason)] if reason else []
