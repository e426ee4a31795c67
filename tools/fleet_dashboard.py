"""Fleet dashboard: one self-contained HTML page over many regions' readiness reports.

    python tools/fleet_dashboard.py artifacts/*/status.json -o artifacts/dashboard.html
    python tools/fleet_dashboard.py --inventory inventories/region77 --inventory inventories/region78 \\
        -o artifacts/dashboard.html -- --vault-id region77@prompt

Each positional argument is a status.json (docs/status.md) or a directory
searched for */status.json. With --inventory, playbooks/status.yml runs on each
inventory first (one ansible-playbook run per inventory, as each region's
group_vars/all only fits its own inventory) and the reports it writes are
added. Exit status: 0 written, 2 a report is missing or does not match the
schema (nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as `python tools/fleet_dashboard.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jsonschema

from tools.html_report import dashboard_page

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = Path(__file__).with_name("status.schema.json")
# status.yml appends every report it writes to the file this names (one path a line).
INDEX_ENV = "ESIA_STATUS_INDEX"


class ReportError(Exception):
    pass


def load_report(path: Path, validator: jsonschema.protocols.Validator) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not a readable JSON file: {error}") from error
    problems = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if problems:
        listed = "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in problems[:5])
        raise ReportError(f"{path}: does not match {SCHEMA_FILE.name}: {listed}")
    return document


def expand(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        found.extend(sorted(path.glob("*/status.json")) if path.is_dir() else [path])
    return found


def run_status(inventory: str, ansible_args: list[str]) -> list[Path]:
    """Run playbooks/status.yml on one inventory; the reports it wrote."""
    with tempfile.NamedTemporaryFile("r", suffix=".index", encoding="utf-8") as index:
        env = {**os.environ, INDEX_ENV: index.name}
        command = ["ansible-playbook", str(REPO / "playbooks" / "status.yml"), "-i", inventory, *ansible_args]
        proc = subprocess.run(command, cwd=REPO, env=env, check=False)
        if proc.returncode != 0:
            raise ReportError(f"status.yml failed on {inventory} (exit {proc.returncode})")
        written = [Path(line) for line in index.read().splitlines() if line.strip()]
    if not written:
        raise ReportError(f"status.yml wrote no report for {inventory}")
    return written


def latest_by_region(documents: list[tuple[Path, dict]]) -> list[dict]:
    """One report per region: the newest when the same region was given twice."""
    chosen: dict[str, tuple[str, dict]] = {}
    for _, document in documents:
        region = document["region"]
        if region not in chosen or document["generated_at"] > chosen[region][0]:
            chosen[region] = (document["generated_at"], document)
    return [document for _, document in chosen.values()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fleet_dashboard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reports", nargs="*", help="status.json files or directories holding <region>/status.json")
    parser.add_argument("-o", "--output", required=True, help="HTML file to write")
    parser.add_argument(
        "-i", "--inventory", action="append", default=[], help="run playbooks/status.yml on it first (repeatable)"
    )
    parser.add_argument("--stale-days", type=int, default=7, help="mark reports older than this (default 7)")
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` goes to ansible-playbook (vault ids, -e, --limit).
    ansible_args: list[str] = []
    if "--" in argv:
        ansible_args = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    args = parser.parse_args(argv)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    try:
        paths = expand(args.reports)
        for inventory in args.inventory:
            paths.extend(run_status(inventory, ansible_args))
        if not paths:
            raise ReportError("no reports given (status.json files, directories or --inventory)")
        documents = [(path, load_report(path, validator)) for path in paths]
    except ReportError as error:
        print(f"fleet_dashboard: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dashboard_page(latest_by_region(documents), stale_days=args.stale_days), encoding="utf-8")
    regions = sorted({d["region"] for _, d in documents})
    print(f"{output}: {len(regions)} region(s): {', '.join(regions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
