"""Small value rules: numbers, one-line text, checksums, package names, time zones, scopes."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.module_utils.esia_onboard.core import problem

_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+:~-]+)?", re.ASCII)
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9][A-Za-z0-9_+-]*){0,2}", re.ASCII)
TTL_MAX = 2**31 - 1  # RFC 2181 section 8


def one_line(value: str) -> bool:
    """No line break or other control character (a trailing newline included)."""
    return not any(ord(c) < 32 or ord(c) == 127 or c in "\u2028\u2029\x85" for c in value)


def one_line_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    if isinstance(value, str) and one_line(value):
        return []
    return [problem(setting, value, "write it on one line, without line breaks or control characters")]


def one_line_nonempty_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    if isinstance(value, str) and value.strip() and one_line(value):
        return []
    return [problem(setting, value, "set one line of text (not empty, no line breaks)")]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def positive_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    number = _number(value)
    if number is None or number <= 0:
        return [problem(setting, value, "set a number greater than 0")]
    return []


def non_negative_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    number = _number(value)
    if number is None or number < 0:
        return [problem(setting, value, "set a number of 0 or more")]
    return []


def ttl_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_domain_ttl") -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= TTL_MAX:
        return []
    return [problem(setting, value, f"set a TTL in seconds, a whole number 1..{TTL_MAX} (300 is usual)")]


def stratum_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_base_ntp_local_stratum") -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 15:
        return []
    return [problem(setting, value, "set a stratum 1..15 (10 in the lab), or leave it out on real hosts")]


def hex_digest_valid(value: Any, length: int) -> bool:
    return isinstance(value, str) and re.fullmatch(f"[0-9A-Fa-f]{{{length}}}", value, re.ASCII) is not None


def sha256_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    text = value.replace(":", "") if isinstance(value, str) else value
    if hex_digest_valid(text, 64):
        return []
    return [problem(setting, value, "set a SHA-256 fingerprint: 64 hex digits (colons allowed)")]


def sha256_or_empty_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    if value == "" or hex_digest_valid(value, 64):
        return []
    return [
        problem(setting, value, 'set the SHA-256 of the file as 64 hex digits (sha256sum FILE), or "" to not pin it')
    ]


def package_valid(value: Any) -> bool:
    return isinstance(value, str) and _PACKAGE.fullmatch(value) is not None


def package_rule(value: Any, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    return (
        [] if package_valid(value) else [problem(setting, value, "set a Debian package name such as lsb-cprocsp-base")]
    )


def packages_rule(value: list, settings: Mapping[str, Any], setting: str = "value") -> list[str]:
    return [
        problem(f"{setting}[{index}]", item, "set a Debian package name (lower case, digits, + . -), e.g. chrony")
        for index, item in enumerate(value)
        if not package_valid(item)
    ]


def timezone_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_base_timezone") -> list[str]:
    if isinstance(value, str) and _TIMEZONE.fullmatch(value) and ".." not in value:
        return []
    return [problem(setting, value, "set an IANA time zone name such as Europe/Moscow")]


def renewal_window_cross(settings: Mapping[str, Any]) -> list[str]:
    """A certificate is renewed before it expires, not on every run."""
    found = []
    for days, window in (
        ("cryptopro_selfsigned_days", "cryptopro_selfsigned_renew_days"),
        ("portal_https_lab_certificate_days", "portal_https_expiry_warning_days"),
    ):
        if days in settings and window in settings and settings[window] >= settings[days]:
            found.append(
                problem(
                    window,
                    settings[window],
                    f"must be less than {days} ({settings[days]}), or every run renews the certificate",
                )
            )
    return found


def _esia_filters() -> Any:
    """filter_plugins/esia.py (the scope catalogue), loaded once; controller only."""
    key = "esia_onboard_filter_esia"
    if key not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "filter_plugins" / "esia.py"
        spec = importlib.util.spec_from_file_location(key, path)
        if spec is None or spec.loader is None:
            raise ImportError(path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def scopes_rule(value: Any, settings: Mapping[str, Any], setting: str = "esia_client_scopes") -> list[str]:
    """Scopes known to the catalogue (filter_plugins/data/esia_scope_catalogue.yml), openid first."""
    try:
        _esia_filters().esia_scopes(value, settings.get("esia_client_extra_scopes") or [])
    except ImportError:
        return []
    except Exception as error:  # AnsibleFilterError: the catalogue's own message, with suggestions
        shown = value if not isinstance(value, list) else f"{len(value)} items"
        return [problem(setting, shown, str(error))]
    return []
