"""tools/benchmark.py: how targets are judged and what the machine allows.

Measurements here are made up; the expected verdicts are worked out by hand.
"""

from __future__ import annotations

import pytest

from tools.benchmark import (
    Measurement,
    bounds,
    connection_vars,
    evaluate_targets,
    go_duration_seconds,
    strategy_env,
)


def m(
    phase: str, hosts: int, seconds: float, changed: int = 0, rc: int = 0, cpu: float = 0.0, host_cpu: float = 0.0
) -> Measurement:
    return Measurement(
        phase,
        hosts,
        seconds,
        rc,
        ok=10,
        changed=changed,
        failed=0,
        unreachable=0,
        cpu_seconds=cpu,
        host_cpu_seconds=host_cpu,
    )


def verdicts(results: list[Measurement]) -> dict[str, bool | None]:
    return {name: met for name, _value, _wanted, met in evaluate_targets(results)}


def test_warm_at_a_quarter_of_cold_meets_the_target():
    assert verdicts([m("cold", 1, 100), m("warm", 1, 25)])["warm / cold"] is True


def test_warm_above_a_quarter_of_cold_misses_it():
    assert verdicts([m("cold", 1, 100), m("warm", 1, 26)])["warm / cold"] is False


def test_a_warm_run_that_changes_something_misses_idempotence():
    assert verdicts([m("warm", 1, 10, changed=1)])["warm re-run changed"] is False


def test_fleet_ratio_needs_both_sizes():
    assert "8-host warm / 1-host warm" not in verdicts([m("fleet warm", 4, 30), m("fleet warm", 1, 10)])
    both = verdicts([m("fleet warm", 1, 10), m("fleet warm", 8, 20)])
    assert both["8-host warm / 1-host warm"] is True
    assert verdicts([m("fleet warm", 1, 10), m("fleet warm", 8, 21)])["8-host warm / 1-host warm"] is False


def test_bounds_work_out_the_warm_ceiling_from_the_fresh_host_work():
    # cold 20 s, warm 14 s: 6 s only a fresh host needs, so warm would have to be <= 2 s
    (line,) = bounds([m("cold", 1, 20.0), m("warm", 1, 14.0)], cores=2)
    assert "cold - warm = 6.0 s" in line
    assert "warm <= 2.0 s" in line


def test_bounds_work_out_the_fleet_floor_from_controller_and_container_cpu():
    # 1 host: 10 s wall, 6 CPU-s controller + 3 CPU-s container;
    # 8 hosts on 2 cores need >= 8 * 9 / 2 = 36 s = 3.6 x
    lines = bounds([m("fleet warm", 1, 10.0, cpu=6.0, host_cpu=3.0), m("fleet warm", 8, 50.0)], cores=2)
    assert len(lines) == 1
    assert "8 x 9.0 CPU-s" in lines[0]
    assert "at least 36.0 s, 3.60 x the 1-host run" in lines[0]
    assert "measured 50.0 s, 5.00 x" in lines[0]
    # the same runs on 16 cores leave the target reachable: 8 * 9 / 16 = 4.5 s
    (wide,) = bounds([m("fleet warm", 1, 10.0, cpu=6.0, host_cpu=3.0), m("fleet warm", 8, 50.0)], cores=16)
    assert "at least 4.5 s, 0.45 x" in wide


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2.374827267s", 2.374827267),
        ("1m2.5s", 62.5),
        ("512ms", 0.512),
        ("1h0m3s", 3603.0),
        ("0s", 0.0),
        ("750µs", 0.00075),
    ],
)
def test_podman_durations_are_read_as_seconds(text, seconds):
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2.3", "abc", "2.3s garbage"])
def test_anything_else_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a duration"):
        go_duration_seconds(text)


@pytest.mark.parametrize(
    ("transport", "connection", "strategy"),
    [
        ("pipelined", "ansible.builtin.ssh", None),
        ("podman", "containers.podman.podman", None),
        ("mitogen", "podman", "mitogen_linear"),
    ],
)
def test_each_transport_connects_as_documented(transport, connection, strategy):
    assert connection_vars(transport)["ansible_connection"] == connection
    assert strategy_env(transport).get("ANSIBLE_STRATEGY") == strategy
