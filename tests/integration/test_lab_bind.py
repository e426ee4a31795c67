"""The lab's BIND9: a real named on 127.0.0.1 that takes TSIG-signed updates
for the MIAC zone and none for the 2dr.ru stand-in."""

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest

from lab.bind import BindServer, TsigKey, Zone

KEY = TsigKey("lab-test-key", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM=")
PORT = 25399


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    bind = BindServer(
        state_dir=tmp_path_factory.mktemp("bind"),
        port=PORT,
        keys=[KEY],
        zones=[Zone("miac42.test", update_key=KEY.name), Zone("2dr.ru", records=("42 300 IN A 127.0.0.42",))],
    )
    bind.start(reset_zones=True)
    try:
        yield bind
    finally:
        bind.stop()
    assert not bind.running()


def query(name, rdtype="A"):
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=PORT, timeout=3)


def update(zone, name, address, key=KEY):
    upd = dns.update.Update(zone, keyring=dns.tsigkeyring.from_text({key.name: key.secret}), keyalgorithm=key.algorithm)
    upd.replace(name, 60, "A", address)
    return dns.query.tcp(upd, "127.0.0.1", port=PORT, timeout=3)


def test_serves_the_fallback_zone(server):
    answer = query("42.2dr.ru.")
    assert [rr.to_text() for rrset in answer.answer for rr in rrset] == ["127.0.0.42"]


def test_signed_update_lands(server):
    assert update("miac42.test", "zapis", "127.0.0.7").rcode() == dns.rcode.NOERROR
    answer = query("zapis.miac42.test.")
    assert [rr.to_text() for rrset in answer.answer for rr in rrset] == ["127.0.0.7"]


def test_fallback_zone_refuses_updates(server):
    assert update("2dr.ru", "42", "127.0.0.99").rcode() == dns.rcode.REFUSED
    answer = query("42.2dr.ru.")
    assert [rr.to_text() for rrset in answer.answer for rr in rrset] == ["127.0.0.42"]


def test_wrong_secret_is_refused(server):
    bad = TsigKey(KEY.name, "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3JvbmctMDE=")
    with pytest.raises(dns.tsig.PeerBadSignature):
        update("miac42.test", "zapis", "127.0.0.8", key=bad)


def test_start_is_idempotent_and_keeps_records(server):
    pid = server.pid()
    server.start()
    assert server.pid() == pid
    answer = query("zapis.miac42.test.")
    assert answer.answer, "a second start must not reset the zone"
