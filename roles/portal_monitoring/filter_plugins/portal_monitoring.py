"""Filters of the portal_monitoring role: glue over module_utils/esia_onboard/monitoring.py.

- `portal_monitoring_expiry_config`: what the host script watches, from
  `ansible_local` and portal_monitoring_extra_certificates.

The settings' rules are in the registry (module_utils/esia_onboard/settings.py),
which the role's entry check (`portal_role_check`) and validate.yml apply.
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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "portal_monitoring_expiry_config": portal_monitoring_expiry_config,
        }
