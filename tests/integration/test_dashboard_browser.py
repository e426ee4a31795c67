"""The fleet dashboard in a real browser (Debian's chromium, headless).

Three regions' status.json are written here by hand, the dashboard is built
with the real command line, and the page Chromium renders is read back two
ways: the DOM after rendering (--dump-dom) must hold exactly the reports'
states and evidence, and through chromedriver (W3C WebDriver spoken with
`requests`) the cells must really be painted in three distinct colours, the
evidence must be in each cell's tooltip, and a hostile evidence string must
stay text.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from tests.harness import REPO, environment

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"> & "quotes"'


def item(item_id: str, state: str, evidence: str, step: str = "1", confirmed: str | None = None) -> dict:
    return {
        "id": item_id,
        "step": step,
        "title": f"Title of {item_id}",
        "state": state,
        "evidence": evidence,
        "confirmed": confirmed,
    }


def host(name: str, items: list[dict], checked_at: str) -> dict:
    counts = {s: sum(1 for i in items if i["state"] == s) for s in ("done", "pending", "not_done")}
    return {
        "host": name,
        "checked_at": checked_at,
        "portal_name": f"zapis.{name}.test",
        "fallback_name": "xx.2dr.ru",
        "environment": "test",
        "summary": {**counts, "total": len(items), "ready": counts["done"] == len(items)},
        "items": items,
    }


def document(region: str, org: str, hosts: list[dict], generated_at: str = "2026-11-20T10:00:00Z") -> dict:
    return {
        "schema": "esia-onboard/status/1",
        "generated_at": generated_at,
        "region": region,
        "org": org,
        "hosts": hosts,
    }


REPORTS = [
    document(
        "77",
        "ГБУЗ «МИАЦ ДЗМ»",
        [
            host(
                "portal77",
                [
                    item("esia_org_registered", "done", "confirmed by the operator", confirmed="2026-10-01"),
                    item("esia_is_registered", "done", "mnemonic MIAC77PORTAL", step="2", confirmed="2026-10-02"),
                    item("gost_certificate", "done", "GOST 2012/256, valid until 2027-10-01", step="3"),
                    item("dns", "not_done", "zapis.miac77.ru: NXDOMAIN", step="домен"),
                    item("https", "pending", HOSTILE, step="домен"),
                ],
                "2026-11-24T09:00:00Z",
            )
        ],
    ),
    document(
        "05",
        "ГБУ РД «МИАЦ»",
        [
            host("portal05a", [item("esia_org_registered", "pending", "waiting for the KEP")], "2026-11-24T09:00:00Z"),
            # a report from an older toolkit: no items it did not know, plus one this one does not know
            host(
                "portal05b",
                [item("esia_org_registered", "not_done", "invalid date 'yes'"), item("future_step", "done", "new")],
                "2026-11-01T09:00:00Z",
            ),
        ],
    ),
    document("102", "ГАУЗ РБ «МИАЦ»", [host("portal102", [], "2026-11-24T09:00:00Z")]),
]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Path:
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.fail("chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver")
    root = tmp_path_factory.mktemp("fleet")
    for report in REPORTS:
        (root / report["region"]).mkdir()
        (root / report["region"] / "status.json").write_text(json.dumps(report, ensure_ascii=False))
    output = root / "dashboard.html"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "fleet_dashboard.py"),
            str(root),
            "-o",
            str(output),
        ],
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return output


def expected_cells() -> dict[tuple[str, str, str], dict]:
    return {(r["region"], h["host"], i["id"]): i for r in REPORTS for h in r["hosts"] for i in h["items"]}


class CellReader(HTMLParser):
    """Collects every checklist cell of table#checklist: (region, host, item) -> (state, title)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_table = False
        self.row: tuple[str, str] | None = None
        self.rows: list[tuple[str, str]] = []
        self.cells: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.columns: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "checklist":
            self.in_table = True
        elif self.in_table and tag == "tr" and "data-region" in a:
            self.row = (a["data-region"] or "", a["data-host"] or "")
            self.rows.append(self.row)
        elif self.in_table and tag == "th" and "data-item" in a:
            self.columns.append(a["data-item"] or "")
        elif self.in_table and tag == "td" and self.row and "data-item" in a:
            self.cells[(*self.row, a["data-item"] or "")] = (a.get("data-state") or "", a.get("title") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_table = False


def chromium_dom(page: Path, profile: Path) -> str:
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and "</html>" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


def test_rendered_dom_matches_the_reports(dashboard: Path, tmp_path: Path):
    reader = CellReader()
    reader.feed(chromium_dom(dashboard, tmp_path / "profile"))
    # one row per region and host, regions in numeric order
    assert reader.rows == [("05", "portal05a"), ("05", "portal05b"), ("77", "portal77"), ("102", "portal102")]
    # every column of every row is there; unknown items get their own column
    assert "future_step" in reader.columns
    assert len(reader.cells) == len(reader.rows) * len(reader.columns)
    expected = expected_cells()
    for key, (state, title) in reader.cells.items():
        if key in expected:
            assert state == expected[key]["state"], key
            assert expected[key]["evidence"] in title, key
            if expected[key]["confirmed"]:
                assert expected[key]["confirmed"] in title
        else:
            assert state == "missing", key
    assert set(expected) <= set(reader.cells)


class WebDriver:
    """The few W3C WebDriver calls the test needs, over HTTP on 127.0.0.1."""

    def __init__(self, profile: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.session: str | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.ConnectionError, ValueError, KeyError):
                time.sleep(0.2)
        else:
            self.close()
            raise RuntimeError("chromedriver did not start")
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}", "--window-size=1600,1000"]}
        answer = self._call(
            "post", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}, session=False
        )
        self.session = answer["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None, session: bool = True):
        url = f"{self.base}/session/{self.session}{path}" if session else f"{self.base}{path}"
        response = requests.request(method, url, json=body, timeout=60)
        value = response.json()["value"]
        assert response.status_code == 200, value
        return value

    def get(self, url: str) -> None:
        self._call("post", "/url", {"url": url})

    def script(self, source: str):
        return self._call("post", "/execute/sync", {"script": source, "args": []})

    def close(self) -> None:
        try:
            if self.session:
                self._call("delete", "")
        finally:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def browser(tmp_path: Path):
    driver = WebDriver(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.close()


CELLS_SCRIPT = """
return Array.from(document.querySelectorAll('#checklist td.state')).map(function (td) {
  var box = td.getBoundingClientRect();
  return {region: td.parentElement.dataset.region, host: td.parentElement.dataset.host,
          item: td.dataset.item, state: td.dataset.state, title: td.title, text: td.textContent,
          background: getComputedStyle(td).backgroundColor, width: box.width, height: box.height};
});
"""


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(part) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


def test_cells_are_painted_by_state_with_the_evidence_as_tooltip(dashboard: Path, browser: WebDriver):
    browser.get(dashboard.as_uri())
    assert browser.script("return document.title") == "Готовность регионов к ЕСИА"
    cells = browser.script(CELLS_SCRIPT)
    expected = expected_cells()
    colours: dict[str, set[tuple[int, ...]]] = {}
    for cell in cells:
        assert cell["width"] > 0 and cell["height"] > 0, cell
        key = (cell["region"], cell["host"], cell["item"])
        if key in expected:
            assert cell["state"] == expected[key]["state"]
            assert expected[key]["evidence"] in cell["title"]
        colours.setdefault(cell["state"], set()).add(rgb(cell["background"]))
    # each state has one colour and the states' colours differ
    assert all(len(c) == 1 for c in colours.values()), colours
    done, pending, not_done = (next(iter(colours[s])) for s in ("done", "pending", "not_done"))
    assert len({done, pending, not_done, next(iter(colours["missing"]))}) == 4
    assert done[1] > done[0] and done[1] > done[2], f"done is not green: {done}"
    assert not_done[0] > not_done[1], f"not done is not red: {not_done}"
    assert pending[0] > pending[2] and pending[1] > pending[2], f"pending is not amber: {pending}"


def test_hostile_evidence_stays_text(dashboard: Path, browser: WebDriver):
    browser.get(dashboard.as_uri())
    # the <img onerror> in the evidence never became an element
    assert browser.script("return document.querySelectorAll('img').length") == 0
    assert browser.script("return document.title") != "pwned"
    title = browser.script('return document.querySelector(\'tr[data-host="portal77"] td[data-item="https"]\').title')
    assert HOSTILE in title


def test_stale_report_is_marked(dashboard: Path, browser: WebDriver):
    browser.get(dashboard.as_uri())
    stale = browser.script("return Array.from(document.querySelectorAll('tr.stale')).map(r => r.dataset.host)")
    # portal05b was checked 2026-11-01: stale once the page is built 7+ days later (it is built now)
    assert "portal05b" in stale
    summary = browser.script(
        "return Array.from(document.querySelectorAll('#checklist td.total')).map(t => [t.parentElement.dataset.host,"
        " t.dataset.done])"
    )
    done_counts = {h: int(n) for h, n in summary}
    assert done_counts == {
        h["host"]: sum(1 for i in h["items"] if i["state"] == "done") for r in REPORTS for h in r["hosts"]
    }
