"""playbooks/dashboard.yml: the fleet dashboard built by ansible-playbook (as AWX runs it)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import REPO, ansible_playbook


def report(region: str, state: str) -> dict:
    item = {"id": "dns", "step": "домен", "title": "DNS", "state": state, "evidence": f"e{region}", "confirmed": None}
    return {
        "schema": "esia-onboard/status/1",
        "generated_at": "2026-11-25T10:00:00Z",
        "region": region,
        "org": f"МИАЦ {region}",
        "hosts": [
            {
                "host": f"portal{region}",
                "checked_at": "2026-11-25T10:00:00Z",
                "portal_name": None,
                "fallback_name": None,
                "environment": "test",
                "summary": {
                    "done": int(state == "done"),
                    "pending": 0,
                    "not_done": int(state != "done"),
                    "total": 1,
                    "ready": state == "done",
                },
                "items": [item],
            }
        ],
    }


def test_playbook_builds_the_page(tmp_path: Path):
    for region, state in (("77", "done"), ("05", "not_done")):
        (tmp_path / region).mkdir()
        (tmp_path / region / "status.json").write_text(json.dumps(report(region, state), ensure_ascii=False))
    run = ansible_playbook(REPO / "playbooks" / "dashboard.yml", extra_vars={"dashboard_reports": str(tmp_path)})
    assert run.rc == 0, run.output[-3000:]
    page = (tmp_path / "dashboard.html").read_text()
    assert page.index('data-region="05"') < page.index('data-region="77"')
    assert 'data-item="dns" data-state="not_done"' in page and 'data-item="dns" data-state="done"' in page
    assert "2 region(s): 05, 77" in run.output


def test_playbook_fails_on_a_bad_report(tmp_path: Path):
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "status.json").write_text('{"schema": "something else"}')
    run = ansible_playbook(REPO / "playbooks" / "dashboard.yml", extra_vars={"dashboard_reports": str(tmp_path)})
    assert run.rc != 0
    assert "does not match status.schema.json" in run.output
    assert not (tmp_path / "dashboard.html").exists()
