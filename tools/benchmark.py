"""Benchmark of site.yml on the lab: cold, warm, check, and fleets of 1, 4 and 8 hosts.

    .venv/bin/python tools/benchmark.py                 # everything (about 15-30 minutes on 2 cores)
    .venv/bin/python tools/benchmark.py --sizes 1,4     # smaller fleet
    .venv/bin/python tools/benchmark.py --json bench.json --keep

Not a test and not part of `make test`: it measures. Every host is a fresh
lab container (podman + systemd, ports on 127.0.0.1 only) with its own region
code, portal name, fallback name, key container and ports; DNS is a BIND9 of
its own on a free loopback port (the shared lab is not touched); facts are
cached in a directory of its own, so the first run is really cold.

Transport: by default Ansible reaches the containers over its ssh connection
with pipelining, tools/podman-ssh standing in for ssh (`podman exec -i`);
--transport mitogen runs under Mitogen's strategy (the opt-in fast path,
ANSIBLE_STRATEGY=mitogen_linear) over the lab's `podman` connection;
--transport podman uses the containers.podman.podman plugin, which cannot
pipeline.

Phases:
  cold      site.yml on one fresh host
  warm      site.yml again on that host (must report changed=0)
  check     site.yml --check --diff on that host
  fleet N   for each N of --sizes: start hosts up to N, converge the new ones
            (not timed as a target), then time a warm run over all N at
            forks >= max(8, N)

Targets (docs/benchmark.md): warm <= cold / 4 with changed=0, and the warm run
over 8 hosts <= 2 x the warm run over 1. Exit status 0 when every target
measured is met, 1 when one is missed, 2 when a run failed. Each run's CPU
time is measured too, on the controller (ansible-playbook and everything it
waited for) and in the containers (podman stats); with it the script works out
what this machine allows for each target (its "bounds" lines), so a missed
target says whether the toolkit or the machine is short.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

if __package__ in (None, ""):  # run as `python tools/benchmark.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.__main__ import lab_vars, portal_down, portal_up
from lab.bind import BindServer, TsigKey, Zone
from tests.harness import REPO, PlaybookRun, ansible_playbook

CONTAINER_PREFIX = "esia-bench-"
HTTP_BASE, HTTPS_BASE = 39100, 39200
WARM_OVER_COLD = 0.25
FLEET_OVER_SINGLE = 2.0


@dataclass
class Measurement:
    phase: str
    hosts: int
    seconds: float
    rc: int
    ok: int
    changed: int
    failed: int
    unreachable: int
    cpu_seconds: float = 0.0  # controller: ansible-playbook and the processes it waited for
    host_cpu_seconds: float = 0.0  # the benchmark's containers (podman's cumulative cpu_time)


def region_code(index: int) -> str:
    """Region codes of the benchmark's hosts: 91, 92, ... (never the lab's 99)."""
    return f"{90 + index}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connection_vars(transport: str) -> dict:
    """How Ansible reaches a lab container.

    podman     the containers.podman.podman plugin: no pipelining, about
               five podman calls per task;
    mitogen    Mitogen's strategy (plugins/strategy/mitogen_linear.py) over
               the `podman` connection: one Python interpreter per host for
               the whole run;
    pipelined  Ansible's ssh connection with pipelining and piped transfers,
               with tools/podman-ssh standing in for ssh (`podman exec -i`):
               one call per task, as SSH with pipelining costs on real hosts.
    """
    if transport == "podman":
        return {"ansible_connection": "containers.podman.podman"}
    if transport == "mitogen":
        # the lab inventory's short name, which Mitogen's strategy takes over
        return {"ansible_connection": "podman"}
    return {
        "ansible_connection": "ansible.builtin.ssh",
        "ansible_ssh_executable": str(REPO / "tools" / "podman-ssh"),
        "ansible_ssh_pipelining": True,
        "ansible_ssh_transfer_method": "piped",
    }


def host_vars(index: int, bind_port: int, transport: str = "pipelined") -> dict:
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


def write_inventory(directory: Path, count: int, bind_port: int, transport: str = "pipelined") -> Path:
    """An inventory of `count` hosts that reuses the lab's group_vars (vault included)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = {f"bench{i}": host_vars(i, bind_port, transport) for i in range(1, count + 1)}
    (directory / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"portal": {"hosts": hosts}}}}, sort_keys=False)
    )
    link = directory / "group_vars"
    if not link.exists():
        link.symlink_to(REPO / "inventories" / "lab" / "group_vars")
    return directory


def dns_server(state_dir: Path, port: int, max_hosts: int) -> BindServer:
    values = lab_vars()
    key = TsigKey(values["portal_domain_tsig_name"], values["vault_portal_domain_tsig_secret"])
    fallbacks = tuple(f"{region_code(i)} 300 IN A 127.0.0.1" for i in range(1, max_hosts + 1))
    return BindServer(
        state_dir=state_dir,
        port=port,
        keys=[key],
        zones=[Zone(values["portal_domain_zone"], update_key=key.name), Zone("2dr.ru", records=fallbacks)],
    )


def strategy_env(transport: str) -> dict[str, str]:
    """The mitogen transport runs under Mitogen's linear strategy, as an operator opts in."""
    return {"ANSIBLE_STRATEGY": "mitogen_linear"} if transport == "mitogen" else {}


class Bench:
    def __init__(self, workdir: Path, playbook: str, bind_port: int, verbose: bool, transport: str) -> None:
        self.workdir = workdir
        self.transport = transport
        self.playbook = playbook
        self.bind_port = bind_port
        self.verbose = verbose
        self.results: list[Measurement] = []
        self.env = {"ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts"), **strategy_env(transport)}
        self.started: list[int] = []

    def start_hosts(self, count: int) -> None:
        for index in range(len(self.started) + 1, count + 1):
            name = f"{CONTAINER_PREFIX}{index}"
            portal_down(name)
            portal_up(name=name, http_port=HTTP_BASE + index, https_port=HTTPS_BASE + index)
            self.started.append(index)

    def run(
        self, phase: str, hosts: int, *args: str, limit: str | None = None, inventory_hosts: int | None = None
    ) -> Measurement:
        size = inventory_hosts or hosts
        inventory = write_inventory(self.workdir / f"inventory-{size}", size, self.bind_port, self.transport)
        extra = {"portal_artifacts_root": str(self.workdir / "artifacts")}
        limit_args = ["--limit", limit] if limit else []
        forks = ["--forks", str(max(8, size))]
        containers = [f"{CONTAINER_PREFIX}{i}" for i in self.started]
        host_cpu_before = containers_cpu(containers)
        cpu_before = children_cpu()
        began = time.monotonic()
        run: PlaybookRun = ansible_playbook(
            self.playbook, inventory, *forks, *limit_args, *args, extra_vars=extra, env=self.env, timeout=3600
        )
        seconds = time.monotonic() - began
        cpu = children_cpu() - cpu_before
        host_cpu = containers_cpu(containers) - host_cpu_before
        totals = {k: sum(r[k] for r in run.recap.values()) for k in ("ok", "changed", "failed", "unreachable")}
        measurement = Measurement(
            phase,
            hosts,
            round(seconds, 1),
            run.rc,
            **totals,
            cpu_seconds=round(cpu, 1),
            host_cpu_seconds=round(host_cpu, 1),
        )
        self.results.append(measurement)
        log = self.workdir / f"{len(self.results):02d}-{phase.replace(' ', '-')}-{hosts}.log"
        log.write_text(run.output)
        print(
            f"  {phase:<14} hosts={hosts:<2} {seconds:7.1f} s  cpu={cpu:6.1f}+{host_cpu:.1f} s  rc={run.rc}"
            f" changed={totals['changed']} failed={totals['failed']}  ({log})",
            flush=True,
        )
        if self.verbose and run.rc != 0:
            print(run.output[-4000:], flush=True)
        return measurement


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float:
    """podman prints durations the Go way: '2.37s', '1m2.5s', '512ms', '1h0m3s'."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def containers_cpu(names: list[str]) -> float:
    """CPU time the containers have used so far, in seconds (0 when there are none)."""
    if not names:
        return 0.0
    out = subprocess.run(
        ["podman", "stats", "--no-stream", "--format", "json", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(go_duration_seconds(entry["cpu_time"]) for entry in json.loads(out))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bounds(results: list[Measurement], cores: int) -> list[str]:
    """What this machine allows for each target, worked out from the measurements.

    warm/cold: cold - warm is the work only a fresh host needs (packages, keys,
    certificates, first DNS update). For warm <= cold/4 the warm run may take
    at most a third of that.
    fleet: a warm run over N hosts needs at least N times the CPU of the 1-host
    run (controller and container together: both run on this machine's
    cores), so N hosts take at least N x that / cores.
    """
    by = {(m.phase, m.hosts): m for m in results}
    lines: list[str] = []
    cold, warm = by.get(("cold", 1)), by.get(("warm", 1))
    if cold and warm:
        fresh_only = cold.seconds - warm.seconds
        lines.append(
            f"warm / cold: cold - warm = {fresh_only:.1f} s is the work only a fresh host needs;"
            f" warm <= cold / 4 needs warm <= {max(fresh_only, 0) / 3:.1f} s (measured {warm.seconds:.1f} s)"
        )
    fleet1 = by.get(("fleet warm", 1))
    for (phase, hosts), m in sorted(by.items()):
        if phase == "fleet warm" and hosts > 1 and fleet1 and fleet1.seconds:
            per_host = fleet1.cpu_seconds + fleet1.host_cpu_seconds
            floor = hosts * per_host / max(cores, 1)
            lines.append(
                f"{hosts}-host warm: {hosts} x {per_host:.1f} CPU-s (the 1-host run, controller + container)"
                f" / {cores} cores = at least {floor:.1f} s, {floor / fleet1.seconds:.2f} x the 1-host run"
                f" (measured {m.seconds:.1f} s, {m.seconds / fleet1.seconds:.2f} x)"
            )
    return lines


def evaluate_targets(results: list[Measurement]) -> list[tuple[str, float | None, str, bool | None]]:
    """(name, value, target text, met) for each target; met is None when not measured."""
    by = {(m.phase, m.hosts): m for m in results}
    cold, warm = by.get(("cold", 1)), by.get(("warm", 1))
    fleet1, fleet8 = by.get(("fleet warm", 1)), by.get(("fleet warm", 8))
    targets: list[tuple[str, float | None, str, bool | None]] = []
    if warm:
        targets.append(("warm re-run changed", float(warm.changed), "= 0", warm.changed == 0 and warm.rc == 0))
    if cold and warm:
        ratio = warm.seconds / cold.seconds
        targets.append(("warm / cold", round(ratio, 3), f"<= {WARM_OVER_COLD}", ratio <= WARM_OVER_COLD))
    check = by.get(("check", 1))
    if check:
        targets.append(("check run changed", float(check.changed), "= 0", check.changed == 0 and check.rc == 0))
    if fleet1 and fleet8:
        ratio = fleet8.seconds / fleet1.seconds
        targets.append(
            ("8-host warm / 1-host warm", round(ratio, 3), f"<= {FLEET_OVER_SINGLE}", ratio <= FLEET_OVER_SINGLE)
        )
    fleet = [m for m in results if m.phase == "fleet warm"]
    if fleet:
        worst = max(m.changed for m in fleet)
        targets.append(("fleet warm changed (max)", float(worst), "= 0", worst == 0))
    return targets


def table(results: list[Measurement], targets: list[tuple[str, float | None, str, bool | None]]) -> str:
    lines = [
        f"{'phase':<16}{'hosts':>6}{'wall s':>10}{'cpu ctl':>9}{'cpu host':>10}{'rc':>5}{'ok':>6}{'changed':>9}"
        f"{'failed':>8}"
    ]
    lines += [
        f"{m.phase:<16}{m.hosts:>6}{m.seconds:>10.1f}{m.cpu_seconds:>9.1f}{m.host_cpu_seconds:>10.1f}{m.rc:>5}"
        f"{m.ok:>6}{m.changed:>9}{m.failed:>8}"
        for m in results
    ]
    lines.append("")
    lines.append(f"{'target':<28}{'value':>10}  {'wanted':<10}result")
    for name, value, wanted, met in targets:
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        lines.append(f"{name:<28}{value if value is not None else '-':>10}  {wanted:<10}{verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,4,8", help="fleet sizes (default 1,4,8); empty = no fleet runs")
    parser.add_argument("--playbook", default="site.yml", help="playbook to measure (default site.yml)")
    parser.add_argument(
        "--transport",
        choices=["pipelined", "podman", "mitogen"],
        default="pipelined",
        help="how Ansible reaches the containers (default pipelined; see docs/benchmark.md)",
    )
    parser.add_argument("--skip-single", action="store_true", help="skip the cold/warm/check phases")
    parser.add_argument("--json", help="also write the measurements and targets to this file")
    parser.add_argument("--keep", action="store_true", help="leave the containers and the work directory")
    parser.add_argument("--verbose", action="store_true", help="print the tail of a failed run")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if any(s < 1 or s > 20 for s in sizes):
        parser.error("fleet sizes must be between 1 and 20")
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "lab" / "containers.conf"))
    workdir = Path(tempfile.mkdtemp(prefix="esia-bench-"))
    max_hosts = max([1, *sizes])
    server = dns_server(workdir / "bind", free_port(), max_hosts)
    bench = Bench(workdir, args.playbook, server.port, args.verbose, args.transport)
    print(
        f"benchmark of {args.playbook} ({args.transport} transport): work directory {workdir},"
        f" BIND9 on 127.0.0.1:{server.port}",
        flush=True,
    )
    failed = False
    try:
        server.start(reset_zones=True)
        converged: set[int] = set()
        if not args.skip_single:
            bench.start_hosts(1)
            for phase, extra in (("cold", ()), ("warm", ()), ("check", ("--check", "--diff"))):
                failed |= bench.run(phase, 1, *extra).rc != 0
            converged.add(1)
        for size in sizes:
            bench.start_hosts(size)
            new = [i for i in range(1, size + 1) if i not in converged]
            if new:
                # converge the hosts new to this fleet size (measured, not a target)
                limit = ",".join(f"bench{i}" for i in new)
                failed |= bench.run("fleet cold", len(new), limit=limit, inventory_hosts=size).rc != 0
                converged.update(new)
            failed |= bench.run("fleet warm", size).rc != 0
    finally:
        if not args.keep:
            for index in bench.started:
                portal_down(f"{CONTAINER_PREFIX}{index}")
        server.stop()
    targets = evaluate_targets(bench.results)
    cores = os.cpu_count() or 1
    limits = bounds(bench.results, cores)
    print()
    print(table(bench.results, targets))
    print(f"\nbounds on this machine ({cores} cores):")
    for line in limits:
        print(f"  {line}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "playbook": args.playbook,
                    "transport": args.transport,
                    "cores": cores,
                    "bounds": limits,
                    "measurements": [asdict(m) for m in bench.results],
                    "targets": [{"name": n, "value": v, "wanted": w, "met": m} for n, v, w, m in targets],
                },
                indent=2,
            )
        )
    if failed:
        print(f"\na run failed: see the logs in {workdir}", file=sys.stderr)
        return 2
    return 0 if all(met is not False for _, _, _, met in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
