"""tools/html_report.py, tools/fleet_dashboard.py and `esia_status write`: pages, command line, files."""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from tools import esia_status, fleet_dashboard
from tools.html_report import dashboard_page, region_page
from tools.readiness import ITEM_IDS

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "tools" / "status.schema.json").read_text())


def entry(host: str, states: dict[str, str], checked_at: str = "2026-11-25T11:00:00Z") -> dict:
    items = [
        {
            "id": item_id,
            "step": "1",
            "title": f"title {item_id}",
            "state": state,
            "evidence": f"evidence {item_id} {state}",
            "confirmed": None,
        }
        for item_id, state in states.items()
    ]
    counts = {s: sum(1 for i in items if i["state"] == s) for s in ("done", "pending", "not_done")}
    return {
        "host": host,
        "checked_at": checked_at,
        "portal_name": f"zapis.{host}.test",
        "fallback_name": "99.2dr.ru",
        "environment": "test",
        "summary": {**counts, "total": len(items), "ready": counts["done"] == len(items)},
        "items": items,
    }


def report(region: str, *hosts: dict, generated_at: str = "2026-11-25T11:00:00Z") -> dict:
    return {
        "schema": "esia-onboard/status/1",
        "generated_at": generated_at,
        "region": region,
        "org": f"МИАЦ {region}",
        "hosts": list(hosts),
    }


class Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str | None]] = []
        self.rows: list[dict[str, str | None]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "td" and "data-state" in a:
            self.cells.append(a)
        if tag == "tr" and "data-region" in a:
            self.rows.append(a)


def parse(page: str) -> Cells:
    parser = Cells()
    parser.feed(page)
    return parser


def test_page_is_self_contained():
    page = dashboard_page([report("77", entry("a", {"dns": "done"}))], now=NOW)
    tags = parse(page).tags
    assert not [t for t, _ in tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert '<meta charset="utf-8">' in page


def test_every_known_item_is_a_column_even_when_missing():
    page = dashboard_page([report("77", entry("a", {"dns": "done"}))], now=NOW)
    cells = parse(page).cells
    assert [c["data-item"] for c in cells] == list(ITEM_IDS)
    assert {c["data-item"]: c["data-state"] for c in cells}["dns"] == "done"
    assert sum(c["data-state"] == "missing" for c in cells) == len(ITEM_IDS) - 1


def test_unknown_state_is_shown_as_missing():
    page = dashboard_page([report("77", entry("a", {"dns": "exploded"}))], now=NOW)
    assert {c["data-item"]: c["data-state"] for c in parse(page).cells}["dns"] == "missing"


def test_evidence_is_escaped_in_tooltip_and_details():
    hostile = entry("a", {"dns": "done"})
    hostile["items"][0]["evidence"] = '"><script>alert(1)</script>'
    for page in (dashboard_page([report("77", hostile)], now=NOW), region_page(report("77", hostile), now=NOW)):
        assert "<script>" not in page
        assert not [t for t, _ in parse(page).tags if t == "script"]
    cell = next(c for c in parse(dashboard_page([report("77", hostile)], now=NOW)).cells if c["data-item"] == "dns")
    assert '"><script>alert(1)</script>' in cell["title"]


def test_templates_escape_hostile_host_names_and_expiry_text():
    hostile = '<script>alert("x")</script>'
    host = entry(hostile, {"dns": "done"})
    host["portal_name"] = hostile
    host["expiry"] = {
        "source": hostile,
        "generated_at": None,
        "level": "critical",
        "warn_days": 30,
        "critical_days": 7,
        "error": None,
        "notices": [hostile],
        "entries": [
            {
                "type": "certificate",
                "kind": "tls",
                "name": hostile,
                "path": hostile,
                "not_after": hostile,
                "days_left": 3,
                "level": "critical",
            },
            {"type": "licence", "kind": "cryptopro", "name": "csp", "path": "/x", "level": "error", "error": hostile},
        ],
    }
    document = report("77", host)
    document["org"] = hostile
    for page in (dashboard_page([document], now=NOW), region_page(document, now=NOW)):
        assert "<script>" not in page
        assert not [t for t, _ in parse(page).tags if t == "script"]
        assert "&lt;script&gt;" in page
    (row,) = parse(dashboard_page([document], now=NOW)).rows
    assert row["data-host"] == hostile  # the attribute holds the text, not markup
    expiry_cell = next(a for t, a in parse(dashboard_page([document], now=NOW)).tags if "data-level" in a)
    assert (expiry_cell["data-level"], expiry_cell["data-days"]) == ("error", "3")  # the worst entry, nearest days
    assert hostile in expiry_cell["title"]
    details = [a for t, a in parse(region_page(document, now=NOW)).tags if t == "tr" and "data-expiry" in a]
    assert [(d["data-expiry"], d["data-level"]) for d in details] == [
        (f"tls/{hostile}", "critical"),
        ("cryptopro/csp", "error"),
    ]


def test_reports_without_expiry_still_render():
    page = dashboard_page([report("77", entry("a", {"dns": "done"}))], now=NOW)
    expiry_cell = next(a for t, a in parse(page).tags if "data-level" in a)
    assert expiry_cell["data-level"] == "error" and expiry_cell["title"].startswith("нет данных")


def test_rows_sorted_by_region_number_and_stale_marked():
    documents = [
        report("102", entry("c", {})),
        report("05", entry("b", {}, checked_at="2026-11-10T00:00:00Z")),
        report("77", entry("a", {})),
    ]
    rows = parse(dashboard_page(documents, now=NOW, stale_days=7)).rows
    assert [r["data-region"] for r in rows] == ["05", "77", "102"]
    assert [r.get("class") for r in rows] == ["stale", None, None]


def test_region_page_lists_every_item_with_its_evidence():
    document = report("99", entry("lab-portal", {"dns": "not_done", "clock": "done"}))
    page = region_page(document, now=NOW)
    assert "evidence dns not_done" in page and "evidence clock done" in page
    details = [a for t, a in parse(page).tags if t == "tr" and "data-item" in a]
    assert [(d["data-item"], d["data-state"]) for d in details] == [("dns", "not_done"), ("clock", "done")]


# -- the command line -------------------------------------------------------------------


def write_reports(root: Path, *documents: dict) -> None:
    for document in documents:
        (root / document["region"]).mkdir(parents=True, exist_ok=True)
        (root / document["region"] / "status.json").write_text(json.dumps(document, ensure_ascii=False))


def test_cli_builds_the_page_from_a_directory(tmp_path: Path, capsys):
    write_reports(tmp_path, report("77", entry("a", {"dns": "done"})), report("05", entry("b", {"dns": "pending"})))
    output = tmp_path / "out" / "dashboard.html"
    assert fleet_dashboard.main([str(tmp_path), "-o", str(output)]) == 0
    rows = parse(output.read_text()).rows
    assert [(r["data-region"], r["data-host"]) for r in rows] == [("05", "b"), ("77", "a")]
    assert "2 region(s): 05, 77" in capsys.readouterr().out


def test_cli_keeps_the_newest_report_of_a_region(tmp_path: Path):
    old = tmp_path / "old.json"
    new = tmp_path / "new.json"
    old.write_text(json.dumps(report("77", entry("a", {"dns": "not_done"}), generated_at="2026-11-01T00:00:00Z")))
    new.write_text(json.dumps(report("77", entry("a", {"dns": "done"}), generated_at="2026-11-20T00:00:00Z")))
    output = tmp_path / "d.html"
    assert fleet_dashboard.main([str(new), str(old), "-o", str(output)]) == 0
    cells = parse(output.read_text()).cells
    assert {c["data-item"]: c["data-state"] for c in cells}["dns"] == "done"
    assert len(parse(output.read_text()).rows) == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not a readable JSON file"),
        (json.dumps({"schema": "esia-onboard/status/1"}), "'generated_at' is a required property"),
        (json.dumps(report("7", entry("a", {}))), "region"),
        (json.dumps(report("77", entry("a", {"dns": "maybe"}))), "hosts/0/items/0/state"),
    ],
)
def test_cli_refuses_a_bad_report_and_writes_nothing(tmp_path: Path, capsys, content: str, fragment: str):
    bad = tmp_path / "status.json"
    bad.write_text(content)
    output = tmp_path / "d.html"
    assert fleet_dashboard.main([str(bad), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and fragment in error
    assert not output.exists()


def test_cli_needs_some_report(tmp_path: Path, capsys):
    assert fleet_dashboard.main(["-o", str(tmp_path / "d.html")]) == 2
    assert "no reports" in capsys.readouterr().err


def test_cli_passes_ansible_arguments_after_double_dash(tmp_path: Path, monkeypatch):
    calls = []

    def fake_run(inventory, ansible_args):
        calls.append((inventory, ansible_args))
        write_reports(tmp_path, report("77", entry("a", {})))
        return [tmp_path / "77" / "status.json"]

    monkeypatch.setattr(fleet_dashboard, "run_status", fake_run)
    argv = ["-i", "inventories/region77", "-o", str(tmp_path / "d.html"), "--", "--vault-id", "region77@prompt"]
    assert fleet_dashboard.main(argv) == 0
    assert calls == [("inventories/region77", ["--vault-id", "region77@prompt"])]


# -- esia_status write ---------------------------------------------------------------------


def test_write_groups_hosts_by_region_and_indexes_the_files(tmp_path: Path, monkeypatch):
    index = tmp_path / "index"
    monkeypatch.setenv(esia_status.INDEX_ENV, str(index))
    request = {
        "artifacts_root": str(tmp_path / "artifacts"),
        "hosts": [
            {"region": "77", "org": "МИАЦ ДЗМ", "entry": entry("b", {"dns": "done"})},
            {"region": "99", "org": "Лаборатория", "entry": entry("lab", {"dns": "not_done"})},
            {"region": "77", "org": "МИАЦ ДЗМ", "entry": entry("a", {"dns": "pending"})},
        ],
    }
    result = esia_status.cmd_write(request, now=NOW)
    expected = [str(tmp_path / "artifacts" / r / "status.json") for r in ("77", "99")]
    assert result["written"] == expected
    assert index.read_text().splitlines() == expected
    document = json.loads((tmp_path / "artifacts" / "77" / "status.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert [h["host"] for h in document["hosts"]] == ["a", "b"]
    assert document["org"] == "МИАЦ ДЗМ" and document["generated_at"] == "2026-11-25T12:00:00Z"
    assert (tmp_path / "artifacts" / "77" / "status.html").read_text().startswith("<!DOCTYPE html>")
    assert "Регион 77" in result["table"] and "Регион 99" in result["table"]
    assert not list((tmp_path / "artifacts").rglob(".*.tmp"))


def test_write_without_index_leaves_no_index(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(esia_status.INDEX_ENV, raising=False)
    result = esia_status.cmd_write(
        {"artifacts_root": str(tmp_path), "hosts": [{"region": "99", "org": "", "entry": entry("x", {})}]}, now=NOW
    )
    assert result["written"] == [str(tmp_path / "99" / "status.json")]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["99", "status.html", "status.json"]


def test_find_filter_finds_repository_filters_and_names_missing_ones():
    assert esia_status.find_filter("chrony_tracking").__name__ == "chrony_tracking"
    with pytest.raises(LookupError, match="no_such_filter"):
        esia_status.find_filter("no_such_filter")


def test_unreadable_certificate_becomes_evidence(monkeypatch):
    on_host = {"certificate": {"path": "/x.cer", "exists": True, "content": "bm90IGEgY2VydA=="}}

    def broken(_content):
        raise ValueError("x509_info: not a certificate")

    monkeypatch.setattr(esia_status, "find_filter", lambda name: broken)
    esia_status.read_certificate(on_host)
    assert on_host["certificate"] == {"path": "/x.cer", "exists": True, "error": "x509_info: not a certificate"}


def test_slurped_expiry_state_becomes_json_or_a_named_error():
    import base64

    good = {"expiry": {"file": "/e.json", "content": base64.b64encode(b'{"schema": "x"}').decode(), "error": ""}}
    esia_status.read_expiry(good)
    assert good["expiry"] == {"file": "/e.json", "error": "", "state": {"schema": "x"}}
    bad = {"expiry": {"file": "/e.json", "content": base64.b64encode(b"{half").decode(), "error": ""}}
    esia_status.read_expiry(bad)
    assert "state" not in bad["expiry"] and bad["expiry"]["error"].startswith("не JSON")
    missing = {"expiry": {"file": "/e.json", "content": "", "error": "file not found: /e.json"}}
    esia_status.read_expiry(missing)
    assert missing["expiry"] == {"file": "/e.json", "error": "file not found: /e.json"}
