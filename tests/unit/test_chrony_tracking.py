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


def test_the_module_utils_rule_is_the_one_the_filter_applies():
    from module_utils.esia_onboard import chrony

    for text, limit in ((SYNCED, 1.0), (UNSYNCED, 1.0), (SYNCED, 0.0001)):
        assert chrony.tracking(text, limit) == chrony_tracking(text, limit)
    with pytest.raises(chrony.TrackingError):
        chrony.tracking("no tracking here")


def test_the_message_names_the_settings_and_what_was_put_back():
    from module_utils.esia_onboard import chrony

    text = chrony.unsynchronised_message(6, 1.0, ["127.0.0.1"], ["pool.example"], UNSYNCED, [chrony.CONFIG])
    assert "within portal_base_time_sync_timeout=6 s (offset limit portal_base_time_max_offset=1.0 s)" in text
    assert 'portal_base_ntp_servers=["127.0.0.1"]' in text and "pool.example" not in text
    assert "Leap status     : Not synchronised" in text and "\n" not in text
    assert f"Put back the previous {chrony.CONFIG} (removed where this run created them)" in text
    pools = chrony.unsynchronised_message(60, 0.5, [], ["2.debian.pool.ntp.org"], "", [])
    assert 'portal_base_ntp_pools=["2.debian.pool.ntp.org"]' in pools and "This run changed no chrony file" in pools


def test_a_container_gets_the_drop_in_and_the_measure_only_options():
    from module_utils.esia_onboard import chrony

    assert [path for path, _ in chrony.managed_files("x", False)] == [chrony.CONFIG]
    files = dict(chrony.managed_files("x", True))
    assert "ConditionCapability=\n" in files[chrony.DROPIN] and '-x"' in files[chrony.DEFAULTS]
