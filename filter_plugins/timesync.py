"""Filter `chrony_tracking`: read `chronyc -n tracking` output."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

_FIELD = re.compile(r"^(?P<key>[A-Za-z ()]+?)\s*:\s*(?P<value>.*)$", re.MULTILINE)
_OFFSET = re.compile(r"^(?P<seconds>[0-9.]+) seconds (?P<direction>fast|slow) of NTP time$")
# chrony's reference ID for "no reference selected".
_NO_REFERENCE = "00000000"


def chrony_tracking(output: str, max_offset: float = 1.0) -> dict:
    """Parse `chronyc -n tracking`; `synchronised` is True only when chrony has
    a reference, its leap status is Normal and |offset| <= max_offset."""
    if not isinstance(output, str):
        raise AnsibleFilterError(
            f"chrony_tracking expects the text of `chronyc -n tracking`, got {type(output).__name__}"
        )
    fields = {m["key"].strip(): m["value"].strip() for m in _FIELD.finditer(output)}
    if "Leap status" not in fields or "System time" not in fields:
        raise AnsibleFilterError(
            "chrony_tracking: not `chronyc tracking` output (no 'Leap status' / 'System time' line)"
        )
    offset_match = _OFFSET.match(fields["System time"])
    if not offset_match:
        raise AnsibleFilterError(f"chrony_tracking: cannot read the offset from {fields['System time']!r}")
    offset = float(offset_match["seconds"]) * (1 if offset_match["direction"] == "fast" else -1)
    reference = fields.get("Reference ID", "")
    leap = fields["Leap status"]
    has_reference = bool(reference) and not reference.startswith(_NO_REFERENCE)
    return {
        "reference": reference,
        "stratum": int(fields.get("Stratum", "0") or 0),
        "leap_status": leap,
        "offset_seconds": offset,
        "max_offset_seconds": float(max_offset),
        "synchronised": has_reference and leap == "Normal" and abs(offset) <= float(max_offset),
    }


class FilterModule:
    def filters(self) -> dict:
        return {"chrony_tracking": chrony_tracking}
