"""chrony on the portal host: reading ``chronyc -n tracking`` and the files portal_base manages.

Used on the host by library/portal_base_chrony.py, and on the controller by
the ``chrony_tracking`` filter (filter_plugins/timesync.py, for the Molecule
verifier and the status report), which wraps ``tracking``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_FIELD = re.compile(r"^(?P<key>[A-Za-z ()]+?)\s*:\s*(?P<value>.*)$", re.MULTILINE)
_OFFSET = re.compile(r"^(?P<seconds>[0-9.]+) seconds (?P<direction>fast|slow) of NTP time$")
# chrony's reference ID for "no reference selected".
_NO_REFERENCE = "00000000"

CONFIG = "/etc/chrony/chrony.conf"
DROPIN_DIR = "/etc/systemd/system/chrony.service.d"
DROPIN = DROPIN_DIR + "/shared-clock.conf"
DEFAULTS = "/etc/default/chrony"
# In a container the kernel clock belongs to the container host: chrony there
# runs without its CAP_SYS_TIME condition and with -x (measure, never adjust).
DROPIN_TEXT = (
    "# Managed by esia-onboard (role portal_base); local changes are overwritten.\n"
    "# The kernel clock belongs to the container host; chrony only measures it.\n"
    "[Unit]\n"
    "ConditionCapability=\n"
)
DEFAULTS_TEXT = (
    "# Managed by esia-onboard (role portal_base); local changes are overwritten.\n"
    "# -x: never step or slew the kernel clock (it belongs to the host).\n"
    'DAEMON_OPTS="-F 1 -x"\n'
)


class TrackingError(ValueError):
    """The text is not ``chronyc tracking`` output."""


def tracking(output: Any, max_offset: float = 1.0) -> dict[str, Any]:
    """Parse ``chronyc -n tracking``; ``synchronised`` is True only when chrony has
    a reference, its leap status is Normal and |offset| <= max_offset."""
    if not isinstance(output, str):
        raise TrackingError(f"expects the text of `chronyc -n tracking`, got {type(output).__name__}")
    fields = {m["key"].strip(): m["value"].strip() for m in _FIELD.finditer(output)}
    if "Leap status" not in fields or "System time" not in fields:
        raise TrackingError("not `chronyc tracking` output (no 'Leap status' / 'System time' line)")
    offset_match = _OFFSET.match(fields["System time"])
    if not offset_match:
        raise TrackingError(f"cannot read the offset from {fields['System time']!r}")
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


def managed_files(config: str, shared_clock: bool) -> list[tuple[str, str]]:
    """(path, content) of every file portal_base writes for chrony, in the order written."""
    files = [(CONFIG, config)]
    if shared_clock:
        files += [(DROPIN, DROPIN_TEXT), (DEFAULTS, DEFAULTS_TEXT)]
    return files


def unsynchronised_message(
    timeout: float,
    max_offset: float,
    servers: Sequence[str],
    pools: Sequence[str],
    last: str,
    restored: Sequence[str],
) -> str:
    """Why the run stops when the clock does not synchronise, and what was put back."""
    sources = (
        f"portal_base_ntp_servers={json.dumps(list(servers))}"
        if servers
        else f"portal_base_ntp_pools={json.dumps(list(pools))}"
    )
    if restored:
        outcome = (
            f"Put back the previous {', '.join(restored)} (removed where this run created them) and restarted "
            "chrony on it, so the host keeps its old time sources."
        )
    else:
        outcome = "This run changed no chrony file: the configuration on the host is the one that does not synchronise."
    return (
        f"chrony did not report a synchronised clock within portal_base_time_sync_timeout={timeout} s "
        f"(offset limit portal_base_time_max_offset={max_offset} s) with {sources}; last state: "
        f"{last.strip().replace(chr(10), '; ')}. {outcome} ESIA rejects requests with a skewed clock (ESIA-007015): "
        "check that the servers answer NTP (UDP 123) from the host, or set portal_base_ntp_servers to servers that do."
    )
