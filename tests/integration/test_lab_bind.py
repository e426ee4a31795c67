"""The lab's BIND9: a real named on 127.0.0.1 that takes TSIG-signed updates
for the MIAC zone and none for the 2dr.ru stand-in, and never shares its port:
a second named on a held port is refused with a message naming the holder
(even when it gets past the check), and nothing is left running."""

import re
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest

import lab.bind
from lab.bind import BindServer, PortInUse, TsigKey, Zone, free_port, listeners
from tests.harness import REPO, environment

KEY = TsigKey("lab-test-key", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM=")
PORT = free_port()


def zones() -> list[Zone]:
    return [Zone("miac42.test", update_key=KEY.name), Zone("2dr.ru", records=("42 300 IN A 127.0.0.42",))]


def named_processes(below: Path) -> list[int]:
    """pids of every named whose configuration lives below `below`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"named") and any(str(below).encode() in a for a in argv):
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="module")
def state_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-bind")


@pytest.fixture(scope="module")
def server(state_root):
    bind = BindServer(state_dir=state_root / "first", port=PORT, keys=[KEY], zones=zones())
    bind.start(reset_zones=True)
    try:
        yield bind
    finally:
        bind.stop()
    assert not bind.running()
    assert named_processes(state_root) == [], "a named of this module is still running"


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


def test_the_configuration_turns_off_reuseport(server):
    assert re.search(r"^\s*reuseport no;", server.conf.read_text(), re.MULTILINE)


def test_a_second_named_on_a_held_port_is_refused(server, state_root):
    second = BindServer(state_dir=state_root / "second", port=PORT, keys=[KEY], zones=zones())
    try:
        with pytest.raises(PortInUse) as refused:
            second.start(reset_zones=True)
        assert not second.running()
        assert named_processes(state_root / "second") == []
    finally:
        second.stop()  # should there be one, never leave it running
    message = str(refused.value)
    assert f"127.0.0.1:{PORT} is already in use by named (pid {server.pid()})" in message
    assert "lab_bind_port" in message, "the message should say how to choose another port"
    assert set(listeners("127.0.0.1", PORT)) == {server.pid()}, "only the first named may listen on the port"
    assert update("miac42.test", "alone", "127.0.0.9").rcode() == dns.rcode.NOERROR


def test_named_does_not_share_the_port_even_past_the_check(server, state_root, monkeypatch):
    """A start racing past the check: once named runs, start() sees another
    process on the port (named without SO_REUSEPORT does not get it, or only
    shares UDP through SO_REUSEADDR), stops its named and refuses."""
    monkeypatch.setattr(lab.bind, "port_free", lambda address, port: True)
    racer = BindServer(state_dir=state_root / "racer", port=PORT, keys=[KEY], zones=zones())
    try:
        with pytest.raises(PortInUse, match=rf"127\.0\.0\.1:{PORT} is already in use by named \(pid {server.pid()}\)"):
            racer.start(reset_zones=True)
        assert not racer.running(), "start() must stop the named it started"
        assert named_processes(state_root / "racer") == []
    finally:
        racer.stop()
    assert set(listeners("127.0.0.1", PORT)) == {server.pid()}
    # every update lands on the one server: none can go to a second one
    for i in range(10):
        assert update("miac42.test", f"spread{i}", f"127.0.1.{i}").rcode() == dns.rcode.NOERROR
        assert [rr.to_text() for rrset in query(f"spread{i}.miac42.test.").answer for rr in rrset] == [f"127.0.1.{i}"]


def test_lab_bind_up_names_the_holder_and_starts_nothing(server, state_root):
    """`python -m lab up` / `bind-up` on a held port: a clear message, exit 2, nothing started."""
    lab_state = state_root / "lab"
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "bind-up"],
        cwd=REPO,
        env=environment({"LAB_STATE": str(lab_state), "LAB_BIND_PORT": str(PORT)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"127.0.0.1:{PORT} is already in use by named (pid {server.pid()})" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert named_processes(lab_state) == []
