"""Rules across the settings of one role: combinations that cannot work."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem


def https_upstream_cross(settings: Mapping[str, Any]) -> list[str]:
    """nginx needs an upstream or the placeholder page."""
    if settings.get("portal_https_upstream") == "" and settings.get("portal_https_placeholder") is False:
        return [
            problem(
                "portal_https_upstream",
                "",
                "set the application's URL (e.g. http://127.0.0.1:8080) or portal_https_placeholder: true",
            )
        ]
    return []


def https_fallback_cross(settings: Mapping[str, Any]) -> list[str]:
    """Serving the fallback needs its name."""
    if settings.get("portal_https_fallback_enabled") is True and "portal_domain_fallback" not in settings:
        return [
            problem(
                "portal_https_fallback_enabled",
                True,
                "set portal_domain_fallback (the old <region>.2dr.ru name), or portal_https_fallback_enabled: false",
            )
        ]
    return []


def private_key_source_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "portal_https_private_key"
) -> list[str]:
    """A private key is given only with certificate source `provided` (never shows the key)."""
    source_setting = (
        "portal_https_fallback_certificate_source"
        if setting == "portal_https_fallback_private_key"
        else "portal_https_certificate_source"
    )
    source = settings.get(source_setting, settings.get("portal_https_certificate_source"))
    if value not in ("", None) and source not in (None, "provided"):
        return [
            problem(
                setting,
                "(hidden)",
                f"a private key goes with {source_setting} provided, not {source}: remove the key or set provided",
            )
        ]
    return []
