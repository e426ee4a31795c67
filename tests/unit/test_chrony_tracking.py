"""chrony_tracking against chronyc output captured from chrony 4.3 (Debian 12)."""

import pytest
from ansible.errors import AnsibleFilterError

from filter_plugins.timesync import chrony_tracking

SYNCED = """Reference ID    : C0A80001 (192.168.0.1)
Stratum         : 3
Ref time (UTC)  : Wed Nov 25 20:23:33 2026
System time     : 0.000123000 seconds slow of NTP time
Last offset     : +0.000000000 seconds
Leap status     : Normal
"""
UNSYNCED = """Reference ID    : 00000000 ()
Stratum         : 0
Ref time (UTC)  : Thu Jan 01 00:00:00 1970
System time     : 0.000000000 seconds fast of NTP time
Leap status     : Not synchronised
"""


def test_synchronised_clock_slow_is_negative():
    info = chrony_tracking(SYNCED, 1.0)
    assert info["synchronised"] is True
    assert info["offset_seconds"] == pytest.approx(-0.000123)
    assert info["stratum"] == 3


def test_unsynchronised_clock():
    info = chrony_tracking(UNSYNCED)
    assert info["synchronised"] is False
    assert info["leap_status"] == "Not synchronised"


def test_offset_beyond_limit_is_not_synchronised():
    far = SYNCED.replace("0.000123000 seconds slow", "2.500000000 seconds fast")
    info = chrony_tracking(far, 1.0)
    assert info["offset_seconds"] == pytest.approx(2.5)
    assert info["synchronised"] is False


@pytest.mark.parametrize("bad", ["", "506 Cannot talk to daemon", 42])
def test_rejects_what_is_not_tracking_output(bad):
    with pytest.raises(AnsibleFilterError):
        chrony_tracking(bad)
