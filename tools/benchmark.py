"""make bench: site.yml measured against a floor measured in the same run.

    .venv/bin/python tools/benchmark.py                         # every row (about 15-20 minutes on 2 cores)
    .venv/bin/python tools/benchmark.py --rows warm,check,status --transport pipelined,mitogen --fleet 0
    .venv/bin/python tools/benchmark.py --json artifacts/benchmark.json
    .venv/bin/python tools/benchmark.py --markdown artifacts/benchmark.json   # the table of that run, for README

Not a test and not part of `make test`: it measures. Shared machines vary
from day to day, so every verdict is a ratio against a floor measured in the
same run: the baseline, tools/bench/baseline.yml, 60 trivial module tasks
(ansible.builtin.ping) on the same host over the same transport. Absolute
figures are printed beside each ratio.

Rows (docs/benchmark.md):
  tasks   tasks executed on the host in a warm site.yml run (recap ok)        <= 60
  warm    warm site.yml, 1 host / the baseline, per transport                  <= 1.5
  check   site.yml --check --diff on the converged host / the baseline         <= 1.5
  fleet   N-host warm run, wall / the CPU bound (N x per-host CPU / cores)     <= 1.15
  demo    second `make demo` (warm, changed=0) / the baseline over the lab     <= 1.5 and < 30 s
  status  playbooks/status.yml, 1 converged host / the baseline                <= 0.5

Hosts: the benchmark's own throw-away lab containers (esia-bench-1 ...,
loopback ports only) with their own region codes and a BIND9 of its own on a
free loopback port; facts are cached in its own work directory. Only the demo
row uses the shared lab (inventories/lab): it is used if up, else started with
`python -m lab up` and stopped again afterwards. Run it under the lab lock:
`flock /tmp/esia-lab.lock .venv/bin/python tools/benchmark.py`.

Transports: pipelined (the default: Ansible's ssh connection with pipelining
and piped transfers, tools/podman-ssh standing in for ssh, as the lab
inventory does), mitogen (the same connection under Mitogen's strategy,
ANSIBLE_STRATEGY=mitogen_linear), podman (the containers.podman.podman plugin,
for comparison only).

CPU: controller, what ansible-playbook and every process it waited for used
(getrusage); host, what the containers used meanwhile (podman stats). Where a
target is missed the script prints what costs what: controller and host CPU,
the cost per task against the baseline's, and the slowest tasks (the
profile_tasks summary that ansible.cfg enables).

Exit status: 0 when every row measured meets its target, 1 when one misses,
2 when a playbook run failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

if __package__ in (None, ""):  # run as `python tools/benchmark.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BASELINE = REPO / "tools" / "bench" / "baseline.yml"
BASELINE_TASKS = 60
LAB_INVENTORY = REPO / "inventories" / "lab"
LAB_CONTAINER = "esia-lab-portal"
LAB_HOST = "lab-portal"
CONTAINER_PREFIX = "esia-bench-"
HTTP_BASE, HTTPS_BASE = 39100, 39200

ROWS = ("tasks", "warm", "check", "fleet", "demo", "status")
TRANSPORTS = ("pipelined", "mitogen", "podman")
MAX_TASKS = 60
WARM_OVER_BASELINE = 1.5
CHECK_OVER_BASELINE = 1.5
FLEET_OVER_BOUND = 1.15
DEMO_OVER_BASELINE = 1.5
DEMO_SECONDS = 30.0
STATUS_OVER_BASELINE = 0.5
SLOWEST = 8  # slowest tasks printed for a missed target

MEASURES = {
    "tasks": "tasks executed on the host, warm site.yml (recap ok)",
    "warm": "warm site.yml, 1 host / baseline",
    "check": "site.yml --check --diff, converged host / baseline",
    "fleet": "{n}-host warm site.yml, wall / CPU bound",
    "demo": "second make demo (changed=0) / baseline",
    "status": "playbooks/status.yml, converged host / baseline",
}


# --------------------------------------------------------------------------- parsing

_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>ok=\d+(?:\s+\w+=\d+)*)\s*$", re.MULTILINE)
_COUNT = re.compile(r"(\w+)=(\d+)")
_TASK_TIME = re.compile(r"^(?P<name>.+?) -+ (?P<seconds>\d+(?:\.\d+)?)s\s*$")
COUNTERS = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP lines: {host: {ok, changed, unreachable, failed, skipped, rescued, ignored}}."""
    recap: dict[str, dict[str, int]] = {}
    for match in _RECAP.finditer(output):
        counts = {key: int(value) for key, value in _COUNT.findall(match["counts"])}
        recap[match["host"]] = {key: counts.get(key, 0) for key in COUNTERS}
    return recap


def recap_totals(recap: dict[str, dict[str, int]], hosts: set[str]) -> dict[str, int]:
    """ok, changed, failed, unreachable and skipped summed over `hosts` (localhost and others left out)."""
    keys = ("ok", "changed", "failed", "unreachable", "skipped")
    return {key: sum(counts[key] for host, counts in recap.items() if host in hosts) for key in keys}


def first_error(output: str, limit: int = 300) -> str:
    """The first `[ERROR]: ...` line ansible-playbook printed, shortened to `limit` characters."""
    for line in output.splitlines():
        if line.startswith("[ERROR]:"):
            text = line[len("[ERROR]:") :].strip()
            return text if len(text) <= limit else text[: limit - 3] + "..."
    return ""


def parse_task_times(output: str) -> list[tuple[str, float]]:
    """The profile_tasks summary after TASKS RECAP: (task, seconds), slowest first.

    The summary is the block of `name ----- 1.23s` lines under the `=====`
    rule that follows the TASKS RECAP banner."""
    _, banner, tail = output.rpartition("TASKS RECAP")
    if not banner:
        return []
    lines = tail.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("====")), None)
    if start is None:
        return []
    times: list[tuple[str, float]] = []
    for line in lines[start + 1 :]:
        match = _TASK_TIME.match(line.rstrip())
        if not match:
            if times:
                break
            continue
        times.append((match["name"].strip(), float(match["seconds"])))
    return sorted(times, key=lambda item: item[1], reverse=True)


def by_role(times: list[tuple[str, float]]) -> list[tuple[str, int, float]]:
    """(role, tasks, seconds) from profile_tasks' `role : task` names, dearest first.

    Tasks outside a role (the plays' own, Gathering Facts) count as "(plays)";
    every task ansible-playbook timed counts, the skipped ones too."""
    totals: dict[str, list] = {}
    for name, seconds in times:
        role = name.split(" : ", 1)[0] if " : " in name else "(plays)"
        entry = totals.setdefault(role, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds
    return sorted(((role, n, round(t, 2)) for role, (n, t) in totals.items()), key=lambda item: item[2], reverse=True)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float:
    """podman prints durations the Go way: '2.37s', '1m2.5s', '512ms', '1h0m3s'."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


# --------------------------------------------------------------------------- arithmetic


def ratio(value: float, floor: float) -> float:
    """value / floor; a floor of zero or less is a broken measurement, not a ratio."""
    if floor <= 0:
        raise ValueError(f"cannot divide by a floor of {floor}")
    return value / floor


def cpu_bound(hosts: int, per_host_cpu: float, cores: int, single_wall: float = 0.0) -> float:
    """The least wall time `hosts` hosts can take on this machine.

    Controller and containers share the machine's cores, so N hosts need N
    times one host's CPU (controller + host), spread over the cores; and no
    fleet finishes before one host's own run (single_wall) would."""
    if hosts < 1 or cores < 1:
        raise ValueError(f"hosts ({hosts}) and cores ({cores}) must be at least 1")
    return max(hosts * per_host_cpu / cores, single_wall)


@dataclass
class Run:
    """One ansible-playbook run, with what it cost."""

    name: str
    transport: str
    hosts: int
    seconds: float
    rc: int
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    cpu: float = 0.0  # controller: ansible-playbook and what it waited for
    host_cpu: float = 0.0  # the containers, from podman stats
    slowest: list[tuple[str, float]] = field(default_factory=list)
    log: str = ""
    error: str = ""  # the first [ERROR] line of a failed run
    roles: list[tuple[str, int, float]] = field(default_factory=list)  # (role, tasks timed, seconds), dearest first

    @property
    def clean(self) -> bool:
        return self.rc == 0 and self.changed == 0 and self.failed == 0 and self.unreachable == 0

    @property
    def ok_per_host(self) -> float:
        return self.ok / max(self.hosts, 1)


@dataclass
class Row:
    row: str
    transport: str
    measure: str
    figures: str
    value: float | None
    target: str
    met: bool | None
    costs: list[str] = field(default_factory=list)


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "MISSED")


def not_clean(run: Run) -> str | None:
    """Why a run cannot be judged as a warm, read-only run (None when it can)."""
    if run.rc != 0 or run.failed or run.unreachable:
        why = f" ({run.error})" if run.error else ""
        return (
            f"the {run.name} run failed (rc={run.rc}, failed={run.failed}, unreachable={run.unreachable}){why}:"
            f" see {run.log}"
        )
    if run.changed:
        return f"not a warm run: changed={run.changed}"
    return None


def split_ratio(run: Run, baseline: Run) -> str:
    """wall / baseline = (tasks / 60) x (wall per task / the baseline's)."""
    tasks = run.ok_per_host
    if tasks <= 0 or baseline.seconds <= 0:
        return "no task ran"
    count = tasks / BASELINE_TASKS
    per_task, floor_per_task = run.seconds / tasks, baseline.seconds / BASELINE_TASKS
    return (
        f"ratio {run.seconds / baseline.seconds:.2f} = {count:.2f} (task count: {tasks:.0f} / {BASELINE_TASKS})"
        f" x {per_task / floor_per_task:.2f} (wall per task: {per_task:.3f} s / the baseline's {floor_per_task:.3f} s)"
    )


def cost_lines(run: Run, baseline: Run | None) -> list[str]:
    """What part of a run costs what: CPU on each side, per task, the slowest tasks."""
    tasks = max(run.ok_per_host, 1)
    lines = [
        f"wall {run.seconds:.1f} s for {run.ok_per_host:.0f} tasks executed (+{run.skipped // max(run.hosts, 1)}"
        f" skipped) per host: {run.seconds / tasks:.3f} s a task",
        f"controller CPU {run.cpu:.1f} s ({1000 * run.cpu / tasks / max(run.hosts, 1):.0f} ms a task),"
        f" host CPU {run.host_cpu:.1f} s ({1000 * run.host_cpu / tasks / max(run.hosts, 1):.0f} ms a task)",
    ]
    if baseline is not None and baseline.seconds > 0:
        lines.append(
            f"baseline: {baseline.seconds:.1f} s, controller CPU {baseline.cpu:.1f} s"
            f" ({1000 * baseline.cpu / BASELINE_TASKS:.0f} ms a task), host CPU {baseline.host_cpu:.1f} s"
            f" ({1000 * baseline.host_cpu / BASELINE_TASKS:.0f} ms a task)"
        )
        lines.append(split_ratio(run, baseline))
    if run.roles:
        lines.append(
            "by role (tasks timed, skipped ones too): " + "; ".join(f"{r} {n} tasks {t:.1f} s" for r, n, t in run.roles)
        )
    if run.slowest:
        lines.append(
            "slowest tasks: " + "; ".join(f"{name} {seconds:.2f} s" for name, seconds in run.slowest[:SLOWEST])
        )
    return lines


def over_baseline_row(row: str, run: Run | None, baseline: Run | None, target: float) -> Row | None:
    """warm, check and status: the run's wall time over the baseline's."""
    if run is None or baseline is None:
        return None
    measure = MEASURES[row]
    figures = f"{run.seconds:.1f} s / {baseline.seconds:.1f} s (cpu {run.cpu:.1f}+{run.host_cpu:.1f} s)"
    problem = not_clean(run) or not_clean(baseline)
    if problem:
        return Row(row, run.transport, measure, figures, None, f"<= {target}", False, [problem])
    value = ratio(run.seconds, baseline.seconds)
    met = value <= target
    return Row(
        row,
        run.transport,
        measure,
        figures,
        round(value, 2),
        f"<= {target}",
        met,
        [] if met else cost_lines(run, baseline),
    )


def tasks_row(warm: Run | None, limit: int = MAX_TASKS) -> Row | None:
    if warm is None:
        return None
    count = warm.ok_per_host
    figures = f"ok={count:.0f} changed={warm.changed} skipped={warm.skipped // max(warm.hosts, 1)}"
    problem = not_clean(warm)
    if problem:
        return Row("tasks", warm.transport, MEASURES["tasks"], figures, count, f"<= {limit}", False, [problem])
    met = count <= limit
    costs = [] if met else [f"{count - limit:.0f} tasks more than the target", *cost_lines(warm, None)[-1:]]
    return Row("tasks", warm.transport, MEASURES["tasks"], figures, count, f"<= {limit}", met, costs)


def fleet_row(fleet: Run | None, single: Run | None, cores: int, target: float = FLEET_OVER_BOUND) -> Row | None:
    """wall / (N x one host's CPU / cores), and where the difference goes."""
    if fleet is None or single is None:
        return None
    per_host = single.cpu + single.host_cpu
    bound = cpu_bound(fleet.hosts, per_host, cores, single.seconds)
    measure = MEASURES["fleet"].format(n=fleet.hosts)
    figures = (
        f"{fleet.seconds:.1f} s / {bound:.1f} s ({fleet.hosts} x {per_host:.1f} CPU-s / {cores} cores;"
        f" fleet cpu {fleet.cpu:.1f}+{fleet.host_cpu:.1f} s)"
    )
    problem = not_clean(fleet) or not_clean(single)
    if problem:
        return Row("fleet", fleet.transport, measure, figures, None, f"<= {target}", False, [problem])
    value = ratio(fleet.seconds, bound)
    met = value <= target
    costs: list[str] = []
    if not met:
        fleet_cpu = fleet.cpu + fleet.host_cpu
        inflation = fleet_cpu / (fleet.hosts * per_host) if per_host > 0 else float("nan")
        busy = fleet_cpu / (fleet.seconds * cores) if fleet.seconds > 0 else float("nan")
        costs = [
            f"one host alone: {single.seconds:.1f} s wall, {single.cpu:.1f} CPU-s controller + {single.host_cpu:.1f}"
            f" CPU-s host",
            f"the fleet used {fleet_cpu:.1f} CPU-s ({fleet.cpu:.1f} controller + {fleet.host_cpu:.1f} hosts):"
            f" {fleet_cpu / fleet.hosts:.1f} a host, {inflation:.2f} x one host's alone",
            f"the cores were busy {100 * busy:.0f}% of the wall time ({fleet_cpu:.1f} CPU-s over {fleet.seconds:.1f} s"
            f" x {cores} cores)",
            f"ratio {value:.2f} ~ {inflation:.2f} (CPU per host grew under load) / {busy:.2f} (share of the cores used)"
            if bound > single.seconds
            else f"the bound is one host's own wall time ({single.seconds:.1f} s): {fleet.hosts} x its CPU"
            f" ({per_host:.1f} s) does not fill {cores} cores for that long",
        ]
        if fleet.slowest:
            costs.append(
                "slowest tasks (all hosts): "
                + "; ".join(f"{name} {seconds:.2f} s" for name, seconds in fleet.slowest[:SLOWEST])
            )
    return Row("fleet", fleet.transport, measure, figures, round(value, 2), f"<= {target}", met, costs)


def demo_row(
    demo: Run | None,
    baseline: Run | None,
    target: float = DEMO_OVER_BASELINE,
    seconds: float = DEMO_SECONDS,
) -> Row | None:
    if demo is None:
        return None
    wanted = f"<= {target} and < {seconds:.0f} s"
    floor = f"{baseline.seconds:.1f} s" if baseline else "-"
    figures = f"{demo.seconds:.1f} s / {floor} (cpu {demo.cpu:.1f}+{demo.host_cpu:.1f} s)"
    problem = not_clean(demo) or (not_clean(baseline) if baseline else "the baseline over the lab was not measured")
    if problem or baseline is None:
        return Row("demo", demo.transport, MEASURES["demo"], figures, None, wanted, False, [problem])
    value = ratio(demo.seconds, baseline.seconds)
    met = value <= target and demo.seconds < seconds
    costs = [] if met else cost_lines(demo, baseline)
    if not met and demo.seconds >= seconds:
        costs.insert(0, f"{demo.seconds:.1f} s is not under {seconds:.0f} s")
    return Row("demo", demo.transport, MEASURES["demo"], figures, round(value, 2), wanted, met, costs)


def evaluate(runs: list[Run], cores: int) -> list[Row]:
    """Every row that the runs allow, in the order of ROWS, per transport."""
    by = {(r.name, r.transport): r for r in runs}
    transports = list(dict.fromkeys(r.transport for r in runs if r.name in ("warm", "baseline")))
    rows: list[Row | None] = []
    if transports:
        rows.append(tasks_row(by.get(("warm", transports[0]))))
    for name, target in (("warm", WARM_OVER_BASELINE), ("check", CHECK_OVER_BASELINE)):
        rows += [over_baseline_row(name, by.get((name, t)), by.get(("baseline", t)), target) for t in transports]
    fleet_transports = dict.fromkeys(r.transport for r in runs if r.name == "fleet warm")
    rows += [fleet_row(by.get(("fleet warm", t)), by.get(("warm", t)), cores) for t in fleet_transports]
    demo = by.get(("demo second", "lab"))
    rows.append(demo_row(demo, by.get(("demo baseline", "lab"))))
    rows += [
        over_baseline_row("status", by.get(("status", t)), by.get(("baseline", t)), STATUS_OVER_BASELINE)
        for t in transports
    ]
    return [row for row in rows if row is not None]


# --------------------------------------------------------------------------- printing


def table(rows: list[Row]) -> str:
    width = max([len(r.measure) for r in rows] + [7])
    lines = [f"{'measure':<{width}}  {'transport':<10} {'value':>7}  {'target':<18} {'verdict':<7} figures"]
    for r in rows:
        value = "-" if r.value is None else f"{r.value:g}"
        lines.append(
            f"{r.measure:<{width}}  {r.transport:<10} {value:>7}  {r.target:<18} {verdict(r.met):<7} {r.figures}"
        )
    return "\n".join(lines)


def costs_text(rows: list[Row]) -> str:
    lines: list[str] = []
    for r in rows:
        if r.met is False:
            lines.append(f"{r.measure} ({r.transport}): {r.value if r.value is not None else '-'}, wanted {r.target}")
            lines += [f"    {line}" for line in r.costs]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """The README/docs table of one run's JSON (written with --json)."""
    machine = report.get("machine", {})
    lines = [
        f"Run of {report.get('date', '?')} on {machine.get('cores', '?')} cores"
        f" ({machine.get('model', 'unknown CPU')}), commit {report.get('commit', '?')}:",
        "",
        "| measure | transport | absolute figures | value | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.get("rows", []):
        value = "-" if r["value"] is None else f"{r['value']:g}"
        lines.append(
            f"| {r['measure']} | {r['transport']} | {r['figures']} | {value} | {r['target']} | {verdict(r['met'])} |"
        )
    missed = [r for r in report.get("rows", []) if r["met"] is False]
    if missed:
        lines += ["", "Where a target is missed, the benchmark's own figures:", ""]
        for r in missed:
            lines.append(f"- **{r['measure']} ({r['transport']})**: " + "; ".join(r["costs"]))
    return "\n".join(lines)


# --------------------------------------------------------------------------- running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def region_code(index: int) -> str:
    """Region codes of the benchmark's hosts: 91, 92, ... (never the lab's 99)."""
    return f"{90 + index}"


def connection_vars(transport: str) -> dict:
    """How Ansible reaches a benchmark container.

    pipelined, mitogen  Ansible's ssh connection with pipelining and piped
                        transfers, tools/podman-ssh standing in for ssh
                        (`podman exec -i`), as inventories/lab does; under
                        mitogen, Mitogen's strategy takes the connection over
                        and keeps one interpreter per host;
    podman              the containers.podman.podman plugin (no pipelining,
                        about five podman calls per task)."""
    if transport == "podman":
        return {"ansible_connection": "containers.podman.podman"}
    return {
        "ansible_connection": "ssh",
        "ansible_ssh_executable": str(REPO / "tools" / "podman-ssh"),
        "ansible_ssh_pipelining": True,
        "ansible_ssh_transfer_method": "piped",
    }


def strategy_env(transport: str) -> dict[str, str]:
    """The mitogen transport runs under Mitogen's linear strategy, as an operator opts in."""
    return {"ANSIBLE_STRATEGY": "mitogen_linear"} if transport == "mitogen" else {}


def host_vars(index: int, bind_port: int, transport: str) -> dict:
    code = region_code(index)
    return {
        **connection_vars(transport),
        "ansible_host": f"{CONTAINER_PREFIX}{index}",
        "ansible_python_interpreter": "/usr/bin/python3",
        "lab_portal_http_port": HTTP_BASE + index,
        "lab_portal_https_port": HTTPS_BASE + index,
        "lab_bind_port": bind_port,
        "portal_region_code": code,
        "portal_domain_name": f"zapis{code}.miac99.test",
        "portal_domain_fallback": f"{code}.2dr.ru",
        "cryptopro_container": f"esia_{code}",
    }


def write_inventory(directory: Path, count: int, bind_port: int, transport: str) -> Path:
    """An inventory of `count` hosts that reuses the lab's group_vars (vault included)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = {f"bench{i}": host_vars(i, bind_port, transport) for i in range(1, count + 1)}
    (directory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"portal": {"hosts": hosts}}}}, sort_keys=False)
    )
    link = directory / "group_vars"
    if not link.exists():
        link.symlink_to(LAB_INVENTORY / "group_vars")
    return directory


def containers_cpu(names: list[str]) -> float:
    """CPU time the containers have used so far, in seconds (0 when there are none)."""
    if not names:
        return 0.0
    out = subprocess.run(
        ["podman", "stats", "--no-stream", "--format", "json", *names], capture_output=True, text=True, check=True
    ).stdout
    return sum(go_duration_seconds(entry["cpu_time"]) for entry in json.loads(out))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def environment(extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(REPO / "lab" / "containers.conf")),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        # every task's time in the profile_tasks summary, not only the 20 slowest
        "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "all",
        **extra,
    }


def playbook_run(
    name: str,
    transport: str,
    hosts: int,
    cmd: list[str],
    env: dict[str, str],
    containers: list[str],
    log: Path,
    verbose: bool,
    measured: set[str],
) -> Run:
    """One ansible-playbook run; the recap is summed over the `measured` hosts
    only (not localhost, which some plays use for controller-side work)."""
    host_before = containers_cpu(containers)
    cpu_before = children_cpu()
    began = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=environment(env), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - began
    cpu = children_cpu() - cpu_before
    host_cpu = containers_cpu(containers) - host_before
    output = proc.stdout + proc.stderr
    log.write_text(output)
    recap = parse_recap(output)
    totals = recap_totals(recap, measured)
    times = parse_task_times(output)
    run = Run(
        name,
        transport,
        hosts,
        round(seconds, 1),
        proc.returncode,
        **totals,
        cpu=round(cpu, 1),
        host_cpu=round(host_cpu, 1),
        slowest=times[:SLOWEST],
        roles=by_role(times),
        log=str(log),
        error=first_error(output) if proc.returncode else "",
    )
    print(
        f"  {name:<14} {transport:<10} hosts={hosts:<2} {seconds:7.1f} s  cpu={cpu:6.1f}+{host_cpu:.1f} s"
        f"  rc={run.rc} ok={run.ok} changed={run.changed} failed={run.failed}  ({log.name})",
        flush=True,
    )
    if verbose and run.rc != 0:
        print(output[-4000:], flush=True)
    return run


class Bench:
    """The benchmark's own hosts and DNS, and the runs made on them."""

    def __init__(self, workdir: Path, verbose: bool) -> None:
        self.workdir = workdir
        self.verbose = verbose
        self.runs: list[Run] = []
        self.started: list[int] = []
        self.server = None
        self.bind_port = 0
        self.after_run = lambda: None

    def log(self, name: str, transport: str, hosts: int) -> Path:
        return self.workdir / f"{len(self.runs) + 1:02d}-{name.replace(' ', '-')}-{transport}-{hosts}.log"

    def start_dns(self, max_hosts: int) -> None:
        from lab.__main__ import lab_vars
        from lab.bind import BindServer, TsigKey, Zone

        values = lab_vars()
        key = TsigKey(values["portal_domain_tsig_name"], values["vault_portal_domain_tsig_secret"])
        fallbacks = tuple(f"{region_code(i)} 300 IN A 127.0.0.1" for i in range(1, max_hosts + 1))
        self.bind_port = free_port()
        self.server = BindServer(
            state_dir=self.workdir / "bind",
            port=self.bind_port,
            keys=[key],
            zones=[Zone(values["portal_domain_zone"], update_key=key.name), Zone("2dr.ru", records=fallbacks)],
        )
        self.server.start(reset_zones=True)

    def start_hosts(self, count: int) -> None:
        from lab.__main__ import portal_down, portal_up

        for index in range(len(self.started) + 1, count + 1):
            name = f"{CONTAINER_PREFIX}{index}"
            portal_down(name)
            portal_up(name=name, http_port=HTTP_BASE + index, https_port=HTTPS_BASE + index)
            self.started.append(index)

    def stop(self, keep: bool) -> None:
        from lab.__main__ import portal_down

        if not keep:
            for index in self.started:
                portal_down(f"{CONTAINER_PREFIX}{index}")
        if self.server is not None:
            self.server.stop()

    def run(
        self, name: str, transport: str, playbook: Path | str, hosts: int, *args: str, limit: str | None = None
    ) -> Run:
        """A playbook on the first `hosts` benchmark hosts (all of them, or --limit)."""
        inventory = write_inventory(self.workdir / f"inventory-{transport}-{hosts}", hosts, self.bind_port, transport)
        extra = json.dumps({"portal_artifacts_root": str(self.workdir / "artifacts")})
        cmd = [str(BIN / "ansible-playbook"), str(playbook), "-i", str(inventory), "--forks", str(max(8, hosts))]
        cmd += ["--limit", limit] if limit else []
        cmd += [*args, "-e", extra]
        env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(self.workdir / "facts"), **strategy_env(transport)}
        measured = set(limit.split(",")) if limit else {f"bench{i}" for i in range(1, hosts + 1)}
        counted = len(measured)
        containers = [f"{CONTAINER_PREFIX}{i}" for i in self.started]
        run = playbook_run(
            name, transport, counted, cmd, env, containers, self.log(name, transport, counted), self.verbose, measured
        )
        self.runs.append(run)
        self.after_run()
        return run

    def run_lab(self, name: str, playbook: Path | str) -> Run:
        """A playbook against the shared lab, exactly as `make demo` runs site.yml."""
        cmd = [str(BIN / "ansible-playbook"), str(playbook), "-i", str(LAB_INVENTORY)]
        log = self.log(name, "lab", 1)
        run = playbook_run(name, "lab", 1, cmd, {}, [LAB_CONTAINER], log, self.verbose, {LAB_HOST})
        self.runs.append(run)
        self.after_run()
        return run


def lab_is_up() -> bool:
    inspect = subprocess.run(
        ["podman", "container", "inspect", "--format", "{{.State.Running}}", LAB_CONTAINER],
        capture_output=True,
        text=True,
        check=False,
    )
    return inspect.returncode == 0 and inspect.stdout.strip() == "true"


def lab_command(action: str) -> None:
    subprocess.run([sys.executable, "-m", "lab", action], cwd=REPO, env=environment({}), check=True)


def converge_order(transports: list[str]) -> list[str]:
    """Mitogen first when it is asked for (the fastest), then the others in their order."""
    return sorted(transports, key=lambda transport: transport != "mitogen")


def converge(bench: Bench, name: str, transports: list[str], hosts: int, limit: str | None = None) -> None:
    """Converge fresh hosts (reported, not a target); if one transport fails, the next one tries."""
    for transport in converge_order(transports):
        if bench.run(name, transport, REPO / "site.yml", hosts, limit=limit).rc == 0:
            return


def measure(bench: Bench, rows: set[str], transports: list[str], fleet: int) -> None:
    site = REPO / "site.yml"
    single_rows = rows & {"tasks", "warm", "check", "status", "fleet"}
    if single_rows:
        bench.start_dns(max(1, fleet))
        bench.start_hosts(1)
        converge(bench, "cold", transports, 1)
        for transport in transports:
            bench.run("baseline", transport, BASELINE, 1)
            bench.run("warm", transport, site, 1)
            if "check" in rows:
                bench.run("check", transport, site, 1, "--check", "--diff")
            if "status" in rows:
                bench.run("status", transport, REPO / "playbooks" / "status.yml", 1)
    if "demo" in rows:
        was_up = lab_is_up()
        try:
            lab_command("up")
        except subprocess.CalledProcessError as error:
            # recorded as the demo row's failure; the other rows go on
            reason = f"python -m lab up failed (exit {error.returncode}): see its message above"
            bench.runs.append(Run("demo second", "lab", 1, 0.0, error.returncode, failed=1, error=reason))
            was_up = True  # nothing of ours to stop
        else:
            bench.run_lab("demo first", site)  # the first `make demo`: converges (not a target)
            bench.run_lab("demo second", site)
            bench.run_lab("demo baseline", BASELINE)
        finally:
            if not was_up:
                lab_command("down")
    # the fleet last: the longest part, and the one a run cut short can best do without
    if "fleet" in rows and fleet > 1:
        bench.start_hosts(fleet)
        converge(bench, "fleet cold", transports, fleet, limit=",".join(f"bench{i}" for i in range(2, fleet + 1)))
        for transport in transports:
            bench.run("fleet warm", transport, site, fleet)


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count() or 1, "model": model, "system": platform.platform()}


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


def csv_choice(parser: argparse.ArgumentParser, text: str, allowed: tuple[str, ...], option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        parser.error(f"{option} {text!r}: choose from {','.join(allowed)} (comma-separated)")
    return list(dict.fromkeys(items))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default=",".join(ROWS), help=f"rows to measure (default {','.join(ROWS)})")
    parser.add_argument(
        "--transport",
        default="pipelined,mitogen",
        help="transports for the benchmark hosts (default pipelined,mitogen)",
    )
    parser.add_argument("--fleet", type=int, default=8, help="hosts of the fleet row (default 8; 0 or 1: no fleet)")
    parser.add_argument("--json", help="write the runs and rows to this file")
    parser.add_argument("--markdown", metavar="JSON", help="print the table of a run written with --json, and exit")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark containers running")
    parser.add_argument("--verbose", action="store_true", help="print the tail of a failed run")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    rows = set(csv_choice(parser, args.rows, ROWS, "--rows"))
    transports = csv_choice(parser, args.transport, TRANSPORTS, "--transport")
    if not 0 <= args.fleet <= 20:
        parser.error(f"--fleet {args.fleet}: between 0 and 20 hosts")
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "lab" / "containers.conf"))
    workdir = Path(tempfile.mkdtemp(prefix="esia-bench-"))
    print(
        f"benchmark: rows {','.join(r for r in ROWS if r in rows)}, transports {','.join(transports)},"
        f" fleet {args.fleet}; logs in {workdir}",
        flush=True,
    )
    bench = Bench(workdir, args.verbose)
    began = datetime.datetime.now(datetime.UTC)
    info = machine()

    def report(complete: bool) -> dict:
        results = [row for row in evaluate(bench.runs, info["cores"]) if row.row in rows]
        return {
            "date": began.strftime("%Y-%m-%d %H:%M UTC"),
            "minutes": round((datetime.datetime.now(datetime.UTC) - began).total_seconds() / 60, 1),
            "complete": complete,
            "commit": commit(),
            "machine": info,
            "options": {"rows": sorted(rows), "transports": transports, "fleet": args.fleet},
            "rows": [asdict(row) for row in results],
            "runs": [asdict(run) for run in bench.runs],
        }

    def save(complete: bool = False) -> dict:
        """The JSON after every run, so a run cut short still leaves what it measured."""
        data = report(complete)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return data

    bench.after_run = save
    # a `timeout` or kill still removes the containers and stops what was started (the finally below)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        measure(bench, rows, transports, args.fleet)
    finally:
        bench.stop(args.keep)
        signal.signal(signal.SIGTERM, previous)
    final = save(complete=True)
    results = [Row(**row) for row in final["rows"]]
    print()
    print(table(results))
    missed = costs_text(results)
    if missed:
        print("\nwhat costs what, where a target is missed:")
        print(missed)
    print(f"\n{final['minutes']} minutes; logs in {workdir}")
    if any(run.rc != 0 for run in bench.runs):
        print(f"a run failed: see the logs in {workdir}", file=sys.stderr)
        return 2
    return 0 if all(row.met is not False for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())
