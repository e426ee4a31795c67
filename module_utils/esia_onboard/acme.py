"""Rules of the ACME settings of portal_https (RFC 8555 certificates)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ansible.module_utils.esia_onboard.core import problem
from ansible.module_utils.esia_onboard.org import email_valid
from ansible.module_utils.esia_onboard.secrets import pem_key_problem
from ansible.module_utils.esia_onboard.values import one_line

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}", re.ASCII)
_SOURCES = ("portal_https_certificate_source", "portal_https_fallback_certificate_source")
RENEW_DAYS_MAX = 365


def acme_used(settings: Mapping[str, Any]) -> bool:
    """Whether any certificate of the host comes from an ACME CA."""
    return any(settings.get(name) == "acme" for name in _SOURCES)


def directory_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_directory") -> list[str]:
    if value == "":
        return []
    fix = "give the CA's ACME directory URL, https://host[:port]/path (one line, no spaces)"
    if not isinstance(value, str) or not one_line(value) or any(c.isspace() for c in value):
        return [problem(setting, value, fix)]
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        return [problem(setting, value, fix + "; RFC 8555 requires HTTPS")]
    return []


def email_or_empty_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_email") -> list[str]:
    if value == "" or (isinstance(value, str) and email_valid(value)):
        return []
    return [problem(setting, value, "give one e-mail address (name@example.ru) or leave it empty")]


def renew_days_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_renew_days"
) -> list[str]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= RENEW_DAYS_MAX:
        return []
    return [problem(setting, value, f"set whole days between 1 and {RENEW_DAYS_MAX} (30 renews a 90-day certificate)")]


def ca_bundle_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_ca_bundle") -> list[str]:
    if value == "" or (isinstance(value, str) and one_line(value) and value.strip() == value and value):
        return []
    return [problem(setting, value, "give the controller path of a PEM CA bundle on one line, or leave it empty")]


def eab_kid_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_eab_kid") -> list[str]:
    if value == "" or (isinstance(value, str) and one_line(value) and value and not any(c.isspace() for c in value)):
        return []
    return [problem(setting, value, "give the key id the CA sent with the HMAC key (one word), or leave it empty")]


def acme_cross(settings: Mapping[str, Any]) -> list[str]:
    """What an ACME source needs besides its own settings."""
    if not acme_used(settings):
        return []
    found = []
    # An invalid directory is reported by its own rule (and left out of settings).
    if settings.get("portal_https_acme_directory", "") == "" and "portal_https_acme_directory" in settings:
        found.append(
            problem(
                "portal_https_acme_directory",
                settings.get("portal_https_acme_directory"),
                "a certificate source is acme: give the CA's ACME directory URL (https://...)",
            )
        )
    if settings.get("portal_https_acme_challenge") == "dns-01":
        for name in ("portal_domain_tsig_name", "portal_domain_dns_server", "portal_domain_zone"):
            if not settings.get(name):
                found.append(
                    problem(
                        name,
                        settings.get(name),
                        "portal_https_acme_challenge is dns-01: the _acme-challenge records are sent with the"
                        " portal_domain TSIG key to the primary master; set it, or use http-01",
                    )
                )
    return found


def account_key_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_account_key"
) -> list[str]:
    """Secret: checked in validate.yml's no_log play; the message never shows the key."""
    if value == "" and not acme_used(settings):
        return []
    if value == "":
        return [
            problem(
                setting,
                "",
                "a certificate source is acme: put the ACME account's PEM private key into the vault"
                " (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256, then ansible-vault encrypt_string)",
            )
        ]
    reason = pem_key_problem(value)
    return [problem(setting, "(hidden)", reason)] if reason else []


def eab_hmac_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "portal_https_acme_eab_hmac_key"
) -> list[str]:
    kid = settings.get("portal_https_acme_eab_kid") or ""
    if value == "" and not kid:
        return []
    if value == "":
        return [
            problem(setting, "", "portal_https_acme_eab_kid is set: put the CA's HMAC key (base64url) into the vault")
        ]
    if not kid:
        return [
            problem("portal_https_acme_eab_kid", "", "the EAB HMAC key is set: give the key id the CA sent with it")
        ]
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value):
        return [problem(setting, "(hidden)", "give the HMAC key exactly as the CA sent it (base64url, one line)")]
    return []
