"""Filters of the portal_monitoring role: glue over module_utils/esia_onboard/monitoring.py.

- `portal_monitoring_expiry_config`: what the host script watches, from
  `ansible_local` and portal_monitoring_extra_certificates.
- `portal_monitoring_problems`: every problem of the role's settings (a dict
  of them), as messages naming the setting, the value and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ansible.module_utils

_MODULE_UTILS = str(Path(__file__).resolve().parents[3] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.esia_onboard import monitoring  # noqa: E402


def portal_monitoring_expiry_config(local_facts: Any, extra_certificates: Any = None) -> dict:
    return monitoring.expiry_config(local_facts, list(extra_certificates or []))


def portal_monitoring_problems(settings: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name in ("portal_status_warn_days", "portal_status_critical_days"):
        problems += monitoring.days_problems(name, settings.get(name))
    problems += monitoring.thresholds_problems(settings)
    for name in (
        "portal_monitoring_state_file",
        "portal_monitoring_prometheus_textfile_dir",
        "portal_monitoring_zabbix_include_dir",
    ):
        problems += monitoring.absolute_path_problems(name, settings.get(name))
    problems += monitoring.extra_certificates_problems(settings.get("portal_monitoring_extra_certificates"))
    problems += monitoring.on_calendar_problems(settings.get("portal_monitoring_refresh_on_calendar"))
    problems += monitoring.service_problems(settings.get("portal_monitoring_zabbix_agent_service"))
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "portal_monitoring_expiry_config": portal_monitoring_expiry_config,
            "portal_monitoring_problems": portal_monitoring_problems,
        }
