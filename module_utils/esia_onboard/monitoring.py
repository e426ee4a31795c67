"""Expiry monitoring (role portal_monitoring): what the host's expiry export watches, and its settings' rules.

``expiry_config`` turns the local facts the other roles leave on the host into
the list the host script (roles/portal_monitoring/files/esia_onboard_expiry.py)
reads; the ``*_problems`` functions are the rules of the role's settings
(``core.problem`` strings, empty list = fine).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem

# Kind and name end up inside Zabbix item keys (esia.onboard.days_left[<kind>,<name>]) and
# Prometheus labels: letters, digits, dot, dash, underscore only, so no key needs quoting and
# the agent's UnsafeUserParameters can stay 0.
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SERVICE = re.compile(r"^[A-Za-z0-9@._-]+$")
FACTS_DIR = "/etc/ansible/facts.d"


def _safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_")[:64] or "unnamed"


def _esia_certificates(fact: Mapping[str, Any]) -> list[dict[str, str]]:
    """ESIA's certificates from the esia_client fact: a list of paths or of {path, name}."""
    found: list[dict[str, str]] = []
    raw = fact.get("esia_certificates")
    if raw is None and fact.get("esia_certificate"):
        raw = [fact["esia_certificate"]]
    for entry in raw if isinstance(raw, list) else []:
        path = entry.get("path") if isinstance(entry, Mapping) else entry
        if not isinstance(path, str) or not path.startswith("/"):
            continue
        name = entry.get("name") if isinstance(entry, Mapping) and entry.get("name") else path.rsplit("/", 1)[-1]
        found.append({"kind": "esia", "name": _safe_name(str(name).rsplit(".", 1)[0]), "path": path})
    return found


def expiry_config(
    local_facts: Mapping[str, Any] | None,
    extra_certificates: list[Mapping[str, Any]] | None = None,
    facts_dir: str = FACTS_DIR,
) -> dict[str, list[dict[str, str]]]:
    """``{"certificates": [{kind, name, path}], "licences": [{kind, name, fact}]}`` for the host script.

    ``local_facts`` is ``ansible_local``: portal_https (its ``certificates``: main, fallback),
    esia_cryptopro (``certificate_der``, ``container``, the CryptoPro licence), esia_client
    (ESIA's certificates). A fact that is missing adds nothing; extra certificates come last.
    """
    facts = local_facts if isinstance(local_facts, Mapping) else {}
    certificates: list[dict[str, str]] = []
    licences: list[dict[str, str]] = []
    https = facts.get("portal_https") if isinstance(facts.get("portal_https"), Mapping) else {}
    served = https.get("certificates") if isinstance(https.get("certificates"), Mapping) else {}
    for site_id in sorted(served, key=lambda s: (s != "main", s)):
        site = served[site_id]
        if not isinstance(site, Mapping) or not isinstance(site.get("certificate"), str):
            continue
        names = site.get("names") if isinstance(site.get("names"), list) else []
        name = names[0] if names and isinstance(names[0], str) else str(site_id)
        certificates.append({"kind": "tls", "name": _safe_name(name), "path": site["certificate"]})
    crypto = facts.get("esia_cryptopro") if isinstance(facts.get("esia_cryptopro"), Mapping) else {}
    if isinstance(crypto.get("certificate_der"), str) and crypto["certificate_der"]:
        name = _safe_name(str(crypto.get("container") or "gost"))
        certificates.append({"kind": "gost", "name": name, "path": crypto["certificate_der"]})
    # Only CryptoPro CSP has a licence (the openssl_gost backend records its fields as null).
    if crypto.get("backend") == "cryptopro" or crypto.get("license_type") or crypto.get("license_expires"):
        licences.append({"kind": "cryptopro", "name": "csp", "fact": f"{facts_dir}/esia_cryptopro.fact"})
    client = facts.get("esia_client") if isinstance(facts.get("esia_client"), Mapping) else {}
    certificates += _esia_certificates(client)
    for extra in extra_certificates or []:
        certificates.append({"kind": str(extra["kind"]), "name": str(extra["name"]), "path": str(extra["path"])})
    return {"certificates": certificates, "licences": licences}


# -- rules ------------------------------------------------------------------------


def absolute_path_problems(setting: str, value: Any) -> list[str]:
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value or "//" in value:
        return [problem(setting, value, "set an absolute path on the host, e.g. '/var/lib/esia-onboard/expiry.json'")]
    return []


def days_problems(setting: str, value: Any) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3650:
        return [problem(setting, value, "set a whole number of days between 1 and 3650")]
    return []


def thresholds_problems(settings: Mapping[str, Any]) -> list[str]:
    """portal_status_critical_days must be below portal_status_warn_days (red comes after amber)."""
    warn, critical = settings.get("portal_status_warn_days"), settings.get("portal_status_critical_days")
    if days_problems("w", warn) or days_problems("c", critical):
        return []
    if critical >= warn:
        return [
            problem(
                "portal_status_critical_days",
                critical,
                f"set it below portal_status_warn_days ({warn}): amber first, then red (e.g. 30 and 7)",
            )
        ]
    return []


def extra_certificates_problems(value: Any, setting: str = "portal_monitoring_extra_certificates") -> list[str]:
    """A list of {kind, name, path}: kind and name safe for Zabbix keys, path absolute, no duplicates."""
    if not isinstance(value, list):
        return [problem(setting, value, "set a list of {kind, name, path} mappings, or [] for none")]
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(value):
        where = f"{setting}[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {"kind", "name", "path"}:
            problems.append(
                problem(
                    where,
                    entry,
                    "give exactly kind, name and path, e.g. {kind: tls, name: api, path: /etc/ssl/api.pem}",
                )
            )
            continue
        for key in ("kind", "name"):
            if not isinstance(entry[key], str) or not _SAFE.match(entry[key]):
                problems.append(
                    problem(
                        f"{where}.{key}",
                        entry[key],
                        "use 1-64 letters, digits, '.', '-' or '_' (it goes into Zabbix item keys)",
                    )
                )
        problems += absolute_path_problems(f"{where}.path", entry["path"])
        pair = (str(entry["kind"]), str(entry["name"]))
        if pair in seen:
            problems.append(
                problem(where, entry, f"kind {pair[0]} with name {pair[1]} is listed twice: give each a distinct name")
            )
        seen.add(pair)
    return problems


def on_calendar_problems(value: Any, setting: str = "portal_monitoring_refresh_on_calendar") -> list[str]:
    if not isinstance(value, str) or not value.strip() or "\n" in value or len(value) > 200:
        return [
            problem(setting, value, "set a systemd OnCalendar expression on one line, e.g. 'daily' or '*-*-* 06:00:00'")
        ]
    return []


def service_problems(value: Any, setting: str = "portal_monitoring_zabbix_agent_service") -> list[str]:
    if not isinstance(value, str) or not _SERVICE.match(value):
        return [problem(setting, value, "set the agent's systemd unit name, e.g. 'zabbix-agent' or 'zabbix-agent2'")]
    return []


# -- the registry's shape (settings.RULES: rule(value, settings)) ------------------------


def path_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_monitoring_state_file") -> list[str]:
    return absolute_path_problems(setting, value)


def days_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_status_warn_days") -> list[str]:
    return days_problems(setting, value)


def extra_certificates_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return extra_certificates_problems(value)


def on_calendar_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return on_calendar_problems(value)


def agent_service_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return service_problems(value)
