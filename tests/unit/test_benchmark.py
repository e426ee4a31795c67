"""tools/benchmark.py: how each row is judged, and how ansible-playbook's output is read.

Every measurement and every piece of output here is made up in the test; the
expected ratios and verdicts are worked out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tools.benchmark import (
    BASELINE,
    Run,
    by_role,
    connection_vars,
    converge_order,
    cpu_bound,
    demo_row,
    evaluate,
    first_error,
    fleet_row,
    go_duration_seconds,
    main,
    markdown,
    over_baseline_row,
    parse_recap,
    parse_task_times,
    ratio,
    recap_totals,
    strategy_env,
    tasks_row,
)


def run(name: str, seconds: float, ok: int = 60, transport: str = "pipelined", **kw) -> Run:
    return Run(name, transport, kw.pop("hosts", 1), seconds, kw.pop("rc", 0), ok=ok, **kw)


# --------------------------------------------------------------------------- the baseline playbook


def test_the_baseline_is_sixty_pings_on_the_portal_hosts_without_facts():
    (play,) = yaml.safe_load(Path(BASELINE).read_text())
    assert play["hosts"] == "portal"
    assert play["gather_facts"] is False
    assert len(play["tasks"]) == 60
    assert all(set(task) == {"name", "ansible.builtin.ping"} for task in play["tasks"])
    assert len({task["name"] for task in play["tasks"]}) == 60


# --------------------------------------------------------------------------- arithmetic


def test_ratio_divides_by_the_floor():
    assert ratio(45.0, 30.0) == pytest.approx(1.5)


@pytest.mark.parametrize("floor", [0.0, -1.0])
def test_a_floor_of_zero_is_refused(floor):
    with pytest.raises(ValueError, match="floor"):
        ratio(10.0, floor)


def test_the_cpu_bound_spreads_every_hosts_cpu_over_the_cores():
    # 8 hosts x 9 CPU-s on 2 cores: 36 s
    assert cpu_bound(8, 9.0, 2) == pytest.approx(36.0)


def test_the_cpu_bound_is_never_below_one_hosts_own_wall_time():
    # 8 x 9 / 16 = 4.5 s, but one host alone took 12 s
    assert cpu_bound(8, 9.0, 16, single_wall=12.0) == pytest.approx(12.0)


def test_the_cpu_bound_needs_a_host_and_a_core():
    with pytest.raises(ValueError, match="cores"):
        cpu_bound(8, 9.0, 0)


# --------------------------------------------------------------------------- rows


def test_warm_at_one_and_a_half_baselines_meets_the_target():
    row = over_baseline_row("warm", run("warm", 30.0, ok=55), run("baseline", 20.0), 1.5)
    assert (row.value, row.met, row.costs) == (1.5, True, [])


def test_warm_above_it_misses_and_says_what_costs_what():
    warm = run("warm", 31.0, ok=90, cpu=20.0, host_cpu=9.0, slowest=[("portal_base : Install packages", 4.2)])
    row = over_baseline_row("warm", warm, run("baseline", 20.0, cpu=6.0, host_cpu=3.0), 1.5)
    assert row.met is False
    assert row.value == pytest.approx(1.55)
    text = "\n".join(row.costs)
    # 90 tasks / 60 = 1.5 times the count; 31/90 = 0.344 s against 20/60 = 0.333 s a task = 1.03
    assert "1.50 (task count: 90 / 60)" in text
    assert "x 1.03 (wall per task: 0.344 s / the baseline's 0.333 s)" in text
    assert "controller CPU 20.0 s (222 ms a task)" in text
    assert "host CPU 9.0 s (100 ms a task)" in text
    assert "portal_base : Install packages 4.20 s" in text


def test_a_warm_run_that_changes_something_is_not_judged_as_warm():
    row = over_baseline_row("warm", run("warm", 10.0, changed=2), run("baseline", 20.0), 1.5)
    assert row.met is False
    assert row.value is None
    assert "changed=2" in row.costs[0]


def test_a_failed_baseline_fails_the_row():
    row = over_baseline_row("check", run("check", 10.0), run("baseline", 20.0, rc=2, failed=1), 1.5)
    assert row.met is False
    assert "rc=2" in row.costs[0]


def test_status_must_take_at_most_half_the_baseline():
    assert over_baseline_row("status", run("status", 10.0), run("baseline", 20.0), 0.5).met is True
    assert over_baseline_row("status", run("status", 10.5), run("baseline", 20.0), 0.5).met is False


def test_the_task_count_is_the_recap_ok_per_host():
    assert tasks_row(run("warm", 10.0, ok=60)).met is True
    missed = tasks_row(run("warm", 10.0, ok=122, hosts=2))  # 61 per host
    assert (missed.value, missed.met) == (61, False)
    assert "1 tasks more" in missed.costs[0]


def test_the_fleet_is_judged_against_its_cpu_bound_and_the_miss_is_split():
    # one host: 10 s wall, 6 + 3 CPU-s; 8 hosts on 2 cores: bound 36 s
    single = run("warm", 10.0, cpu=6.0, host_cpu=3.0)
    assert fleet_row(run("fleet warm", 41.4, hosts=8), single, cores=2).met is True  # 1.15
    fleet = run("fleet warm", 45.0, hosts=8, cpu=54.0, host_cpu=27.0)
    row = fleet_row(fleet, single, cores=2)
    assert (row.value, row.met) == (1.25, False)
    text = "\n".join(row.costs)
    # 81 CPU-s against 8 x 9 = 72: 1.125 x; busy 81 / (45 x 2) = 90%; 1.125 / 0.9 = 1.25
    assert "1.12 x one host's alone" in text
    assert "busy 90%" in text
    assert "/ 0.90 (share of the cores used)" in text


def test_the_fleet_row_names_its_size():
    row = fleet_row(run("fleet warm", 20.0, hosts=4), run("warm", 10.0, cpu=2.0, host_cpu=1.0), cores=2)
    assert row.measure.startswith("4-host")


def test_the_demo_needs_both_the_ratio_and_thirty_seconds():
    assert demo_row(run("demo second", 29.0), run("demo baseline", 20.0)).met is True
    slow_machine = demo_row(run("demo second", 31.0), run("demo baseline", 30.0))  # 1.03 but 31 s
    assert slow_machine.met is False
    assert "not under 30 s" in slow_machine.costs[0]
    assert demo_row(run("demo second", 25.0), run("demo baseline", 10.0)).met is False  # 25 s but 2.5


def test_evaluate_judges_each_transport_against_its_own_baseline():
    runs = [
        run("baseline", 20.0, transport="pipelined"),
        run("warm", 28.0, ok=50, transport="pipelined"),
        run("baseline", 5.0, transport="mitogen"),
        run("warm", 9.0, ok=50, transport="mitogen"),  # 1.8 against its own 5 s, not 0.45 against 20 s
    ]
    rows = {(r.row, r.transport): r for r in evaluate(runs, cores=2)}
    assert rows[("warm", "pipelined")].met is True
    assert rows[("warm", "mitogen")].met is False
    assert rows[("warm", "mitogen")].value == pytest.approx(1.8)
    assert rows[("tasks", "pipelined")].value == 50
    assert ("check", "pipelined") not in rows  # not measured, not judged


# --------------------------------------------------------------------------- reading ansible-playbook's output

RECAP = """
PLAY RECAP *********************************************************************
bench1                     : ok=57   changed=0    unreachable=0    failed=0    skipped=31   rescued=0    ignored=1
bench2                     : ok=58   changed=3    unreachable=0    failed=1    skipped=30   rescued=1    ignored=0
"""


def test_the_recap_is_read_per_host_with_every_counter():
    recap = parse_recap(RECAP)
    assert recap["bench1"] == {
        "ok": 57,
        "changed": 0,
        "unreachable": 0,
        "failed": 0,
        "skipped": 31,
        "rescued": 0,
        "ignored": 1,
    }
    assert (recap["bench2"]["changed"], recap["bench2"]["failed"], recap["bench2"]["rescued"]) == (3, 1, 1)


def test_other_lines_with_ok_in_them_are_not_a_recap():
    assert parse_recap("ok: [bench1] => (item=ok=3)\nTASK [x : ok=1 changed=0] ****\n") == {}


PROFILE = """
TASKS RECAP ********************************************************************
Tuesday 01 December 2026  23:50:01 +0000 (0:00:00.120)       0:00:31.500 ******
===============================================================================
portal_https : Issue the certificate - from the lab CA ------------------ 2.50s
Gathering Facts --------------------------------------------------------- 0.80s
portal_base : Install the packages -------------------------------------- 12.25s
a task whose name is far too long to leave room for the dashes at all but three --- 0.11s

some later line --- 9.99s
"""


def test_the_profile_summary_is_read_slowest_first():
    assert parse_task_times(PROFILE) == [
        ("portal_base : Install the packages", 12.25),
        ("portal_https : Issue the certificate - from the lab CA", 2.5),
        ("Gathering Facts", 0.8),
        ("a task whose name is far too long to leave room for the dashes at all but three", 0.11),
    ]


def test_per_task_timestamps_before_the_summary_are_not_task_times():
    before = "TASK [x] ***\nTuesday 01 December 2026  23:50:01 +0000 (0:00:00.120)       0:00:31.500 ******\n"
    assert parse_task_times(before) == []
    assert parse_task_times(before + PROFILE)[0] == ("portal_base : Install the packages", 12.25)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2.374827267s", 2.374827267), ("1m2.5s", 62.5), ("512ms", 0.512), ("1h0m3s", 3603.0), ("750µs", 0.00075)],
)
def test_podman_durations_are_read_as_seconds(text, seconds):
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2.3", "abc", "2.3s garbage"])
def test_anything_else_is_not_a_duration(text):
    with pytest.raises(ValueError, match="not a duration"):
        go_duration_seconds(text)


# --------------------------------------------------------------------------- transports, options, markdown


@pytest.mark.parametrize(
    ("transport", "connection", "strategy"),
    [("pipelined", "ssh", None), ("mitogen", "ssh", "mitogen_linear"), ("podman", "containers.podman.podman", None)],
)
def test_each_transport_connects_as_documented(transport, connection, strategy):
    assert connection_vars(transport)["ansible_connection"] == connection
    assert strategy_env(transport).get("ANSIBLE_STRATEGY") == strategy


def test_pipelined_and_mitogen_reach_the_host_the_way_the_lab_inventory_does():
    lab = yaml.safe_load((Path(BASELINE).parents[2] / "inventories" / "lab" / "hosts.yml").read_text())
    (host,) = lab["all"]["children"]["portal"]["hosts"].values()
    bench = connection_vars("pipelined")
    assert bench["ansible_ssh_executable"].endswith("tools/podman-ssh")
    assert host["ansible_ssh_executable"].endswith("tools/podman-ssh")
    for key in ("ansible_connection", "ansible_ssh_pipelining", "ansible_ssh_transfer_method"):
        assert bench[key] == host[key], key


@pytest.mark.parametrize("argv", [["--rows", "warm,speed"], ["--transport", "ssh"], ["--fleet", "40"]])
def test_bad_options_are_refused_before_anything_starts(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_markdown_prints_one_line_per_row_and_the_reasons_of_a_miss(tmp_path, capsys):
    report = {
        "date": "2026-12-01 23:45 UTC",
        "commit": "abc1234",
        "machine": {"cores": 2, "model": "Test CPU @ 1 GHz"},
        "rows": [
            {
                "row": "warm",
                "transport": "mitogen",
                "measure": "warm thing",
                "figures": "9.0 s / 5.0 s",
                "value": 1.8,
                "target": "<= 1.5",
                "met": False,
                "costs": ["controller CPU 4.0 s", "slowest tasks: x 1.00 s"],
            },
            {
                "row": "tasks",
                "transport": "pipelined",
                "measure": "count",
                "figures": "ok=50",
                "value": 50,
                "target": "<= 60",
                "met": True,
                "costs": [],
            },
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(report))
    assert main(["--markdown", str(path)]) == 0
    text = capsys.readouterr().out
    assert text == markdown(report) + "\n"
    lines = text.splitlines()
    assert "2026-12-01 23:45 UTC" in lines[0] and "2 cores" in lines[0] and "Test CPU @ 1 GHz" in lines[0]
    assert "| warm thing | mitogen | 9.0 s / 5.0 s | 1.8 | <= 1.5 | MISSED |" in lines
    assert "| count | pipelined | ok=50 | 50 | <= 60 | met |" in lines
    assert "- **warm thing (mitogen)**: controller CPU 4.0 s; slowest tasks: x 1.00 s" in lines
    assert not any("count (pipelined)" in line for line in lines)


def test_only_the_measured_hosts_count_not_localhost():
    recap = parse_recap(RECAP + "localhost                  : ok=4    changed=1    unreachable=0    failed=0\n")
    assert recap_totals(recap, {"bench1"}) == {"ok": 57, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 31}
    assert recap_totals(recap, {"bench1", "bench2"})["ok"] == 115
    assert recap_totals(recap, {"bench3"})["ok"] == 0


def test_a_failed_run_says_the_first_error_ansible_printed():
    output = "PLAY [x]\n[WARNING]: something\n[ERROR]: Task failed: ImportError: no module named net\n[ERROR]: later\n"
    assert first_error(output) == "Task failed: ImportError: no module named net"
    assert first_error("[ERROR]: " + "x" * 400, limit=20) == "x" * 17 + "..."
    failed = run("warm", 5.0, rc=2, failed=1, error=first_error(output), log="/tmp/07.log")
    (reason,) = over_baseline_row("warm", failed, run("baseline", 3.0), 1.5).costs
    assert "ImportError: no module named net" in reason
    assert "/tmp/07.log" in reason


def test_fresh_hosts_are_converged_over_mitogen_first():
    assert converge_order(["pipelined", "mitogen"]) == ["mitogen", "pipelined"]
    assert converge_order(["podman", "pipelined"]) == ["podman", "pipelined"]


def test_task_times_are_summed_per_role():
    times = [("b : one", 2.0), ("a : one", 1.5), ("a : two", 1.0), ("Gathering Facts", 0.25), ("b : two", 0.75)]
    assert by_role(times) == [("b", 2, 2.75), ("a", 2, 2.5), ("(plays)", 1, 0.25)]


def test_a_missed_row_shows_the_roles_dearest_first():
    warm = run("warm", 40.0, ok=90, roles=[("portal_https", 50, 20.0), ("cryptopro", 20, 8.0)])
    text = "\n".join(over_baseline_row("warm", warm, run("baseline", 20.0), 1.5).costs)
    assert "portal_https 50 tasks 20.0 s; cryptopro 20 tasks 8.0 s" in text


def test_a_whole_run_prints_the_table_writes_the_json_and_exits_1_on_a_miss(tmp_path, monkeypatch, capsys):
    import tools.benchmark as benchmark

    saved = []

    def fake_measure(bench, rows, transports, fleet):
        assert (rows, transports, fleet) == ({"warm"}, ["pipelined", "mitogen"], 0)
        for made in (
            run("baseline", 20.0),
            run("warm", 28.0, ok=50),
            run("baseline", 5.0, transport="mitogen"),
            run("warm", 9.0, ok=50, transport="mitogen"),
        ):
            bench.runs.append(made)
            bench.after_run()
            saved.append(len(json.loads((tmp_path / "b.json").read_text())["runs"]))

    monkeypatch.setattr(benchmark, "measure", fake_measure)
    monkeypatch.setattr(benchmark.Bench, "stop", lambda self, keep: None)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert main(["--rows", "warm", "--fleet", "0", "--json", str(tmp_path / "b.json")]) == 1
    assert saved == [1, 2, 3, 4]  # the JSON is rewritten after every run
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["complete"] is True
    assert [(r["row"], r["transport"], r["value"], r["met"]) for r in report["rows"]] == [
        ("warm", "pipelined", 1.4, True),
        ("warm", "mitogen", 1.8, False),
    ]
    out = capsys.readouterr().out
    assert "MISSED" in out and "what costs what" in out
    assert "ratio 1.80 = 0.83 (task count: 50 / 60)" in out


def test_a_lab_that_would_not_start_fails_the_demo_row_with_its_reason():
    failed = run("demo second", 0.0, ok=0, rc=2, failed=1, transport="lab", error="python -m lab up failed (exit 2)")
    row = demo_row(failed, None)
    assert (row.met, row.value) == (False, None)
    assert "python -m lab up failed (exit 2)" in row.costs[0]
    assert demo_row(None, run("demo baseline", 20.0)) is None
