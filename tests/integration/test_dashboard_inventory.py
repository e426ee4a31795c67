"""fleet_dashboard --inventory: runs playbooks/status.yml on each inventory, then builds the page from
exactly the reports those runs wrote (found through ESIA_STATUS_INDEX).

Uses the lab inventory with the artifacts in a tmp dir; the report comes out
whether or not the lab host answers (an unreachable host is reported, not fatal).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.harness import LAB_INVENTORY, REPO, environment


def test_inventory_mode_runs_status_and_uses_its_reports(tmp_path: Path):
    artifacts = tmp_path / "artifacts"
    # a stale report of another region in the same tree must not be picked up
    (artifacts / "42").mkdir(parents=True)
    (artifacts / "42" / "status.json").write_text("{}")
    output = tmp_path / "dashboard.html"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "fleet_dashboard.py"),
            "--inventory",
            str(LAB_INVENTORY),
            "-o",
            str(output),
            "--",
            "-e",
            json.dumps({"portal_artifacts_root": str(artifacts)}),
        ],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "PLAY RECAP" in proc.stdout  # the status playbook really ran
    report = json.loads((artifacts / "99" / "status.json").read_text())
    page = output.read_text()
    assert 'data-region="99"' in page and 'data-region="42"' not in page
    for item in report["hosts"][0]["items"]:
        assert f'data-item="{item["id"]}" data-state="{item["state"]}"' in page
    assert "1 region(s): 99" in proc.stdout


def test_inventory_mode_fails_when_status_fails(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "fleet_dashboard.py"),
            "-i",
            str(tmp_path / "no-such"),
            "-o",
            str(tmp_path / "d.html"),
        ],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert "no-such" in proc.stderr
    assert not (tmp_path / "d.html").exists()
