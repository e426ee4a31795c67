"""Filter `chrony_tracking`: read `chronyc -n tracking` output.

The parser is module_utils/esia_onboard/chrony.py (`tracking`), the one
portal_base_chrony uses on the host; this filter only wraps it for the
Molecule verifier and the status report.
"""

from __future__ import annotations

from pathlib import Path

import ansible.module_utils
from ansible.errors import AnsibleFilterError

_MODULE_UTILS = str(Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.esia_onboard import chrony  # noqa: E402


def chrony_tracking(output: str, max_offset: float = 1.0) -> dict:
    """Parse `chronyc -n tracking`; `synchronised` is True only when chrony has
    a reference, its leap status is Normal and |offset| <= max_offset."""
    try:
        return chrony.tracking(output, max_offset)
    except chrony.TrackingError as error:
        raise AnsibleFilterError(f"chrony_tracking: {error}") from error


class FilterModule:
    def filters(self) -> dict:
        return {"chrony_tracking": chrony_tracking}
