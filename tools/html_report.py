"""Self-contained HTML pages over status documents: a region's report and the fleet dashboard.

No scripts, fonts or images from anywhere: one file that opens offline. Every
checklist cell carries `data-item`, `data-state` and the evidence in `title`
(the browser's tooltip), so the page can be read back by tools and tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from tools.readiness import DONE, ITEMS, ITEMS_BY_ID, NOT_DONE, PENDING, STATE_LABELS

MISSING = "missing"
SYMBOLS = {DONE: "✓", PENDING: "◷", NOT_DONE: "✗", MISSING: "—"}
LABELS = {**STATE_LABELS, MISSING: "нет данных"}

STYLE = """
:root { font-family: "PT Sans", "DejaVu Sans", Arial, sans-serif; color: #1b1b1b; }
body { margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; }
p.meta { color: #555; margin: 0 0 1rem; }
table { border-collapse: collapse; font-size: .9rem; }
th, td { border: 1px solid #bbb; padding: .3rem .5rem; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
thead th.item { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; text-align: left; }
td.state { text-align: center; font-weight: 700; min-width: 1.8rem; cursor: help; }
.state-done { background: #c8e6c9; color: #1b5e20; }
.state-pending { background: #ffe082; color: #6d4c00; }
.state-not_done { background: #ffcdd2; color: #b71c1c; }
.state-missing { background: #e0e0e0; color: #616161; }
tr.stale td.checked { color: #b71c1c; font-weight: 700; }
td.evidence { max-width: 60rem; }
ul.legend { list-style: none; padding: 0; display: flex; gap: 1rem; flex-wrap: wrap; }
ul.legend li span { display: inline-block; padding: 0 .5rem; border-radius: .2rem; }
"""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="ru">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _legend() -> str:
    entries = "".join(
        f'<li><span class="state-{state}">{SYMBOLS[state]} {escape(LABELS[state])}</span></li>'
        for state in (DONE, PENDING, NOT_DONE, MISSING)
    )
    return f'<ul class="legend">{entries}</ul>'


def tooltip(entry: Mapping[str, Any] | None, item_id: str) -> str:
    """The evidence shown when the pointer rests on a cell."""
    item = ITEMS_BY_ID.get(item_id)
    title = item.title if item else (entry or {}).get("title", item_id)
    if not entry:
        return f"{title}: нет данных в отчёте"
    text = f"{title} — {LABELS.get(entry.get('state'), entry.get('state'))}: {entry.get('evidence', '')}"
    if entry.get("confirmed"):
        text += f" (подтверждено {entry['confirmed']})"
    return text


def item_columns(documents: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(id, header, full title) of every column: the known checklist, then any
    item a newer report has that this version does not know."""
    columns = [(item.id, item.short, f"Шаг {item.step}: {item.title}") for item in ITEMS]
    known = {c[0] for c in columns}
    for document in documents:
        for host in document.get("hosts", []):
            for entry in host.get("items", []):
                if entry.get("id") not in known:
                    known.add(entry["id"])
                    columns.append((entry["id"], entry.get("title", entry["id"]), entry.get("title", entry["id"])))
    return columns


def _cell(entry: Mapping[str, Any] | None, item_id: str) -> str:
    state = entry.get("state") if entry and entry.get("state") in SYMBOLS else MISSING
    return (
        f'<td class="state state-{state}" data-item="{escape(item_id)}" data-state="{state}" '
        f'title="{escape(tooltip(entry, item_id))}">{SYMBOLS[state]}</td>'
    )


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _row(
    document: Mapping[str, Any],
    host: Mapping[str, Any],
    columns: Sequence[tuple[str, str, str]],
    now: dt.datetime,
    stale_days: int,
) -> str:
    entries = {e.get("id"): e for e in host.get("items", [])}
    checked = _parse_time(host.get("checked_at") or document.get("generated_at"))
    stale = checked is None or (now - checked).days >= stale_days
    summary = host.get("summary", {})
    done = sum(1 for e in entries.values() if e.get("state") == DONE)
    cells = "".join(_cell(entries.get(item_id), item_id) for item_id, _, _ in columns)
    checked_text = checked.strftime("%Y-%m-%d %H:%M") if checked else "?"
    row_class = ' class="stale"' if stale else ""
    return (
        f'<tr data-region="{escape(str(document.get("region", "")))}" data-host="{escape(str(host.get("host", "")))}"'
        f"{row_class}>"
        f'<th scope="row" class="region">{escape(str(document.get("region", "")))}</th>'
        f'<td class="org">{escape(str(document.get("org", "")))}</td>'
        f'<td class="host">{escape(str(host.get("host", "")))}<br><small>{escape(str(host.get("portal_name") or ""))}'
        f"</small></td>"
        f'<td class="checked" title="{"отчёт старше " + str(stale_days) + " дн." if stale else "отчёт свежий"}">'
        f"{escape(checked_text)}</td>"
        f"{cells}"
        f'<td class="total" data-done="{done}" data-total="{len(columns)}">{done}/{len(columns)}'
        f"{' ✔' if summary.get('ready') else ''}</td></tr>"
    )


def _region_sort_key(document: Mapping[str, Any]) -> tuple[int, str]:
    region = str(document.get("region", ""))
    return (int(region) if region.isdigit() else 10_000, region)


def checklist_table(documents: Sequence[Mapping[str, Any]], now: dt.datetime, stale_days: int = 7) -> str:
    """One row per region and host, one column per checklist item."""
    ordered = sorted(documents, key=_region_sort_key)
    columns = item_columns(ordered)
    head = "".join(
        f'<th scope="col" class="item" data-item="{escape(i)}" title="{escape(full)}">{escape(short)}</th>'
        for i, short, full in columns
    )
    rows = "\n".join(
        _row(document, host, columns, now, stale_days)
        for document in ordered
        for host in sorted(document.get("hosts", []), key=lambda h: str(h.get("host")))
    )
    return (
        '<table id="checklist">\n<thead><tr><th scope="col">Регион</th><th scope="col">Организация</th>'
        f'<th scope="col">Хост</th><th scope="col">Проверено (UTC)</th>{head}<th scope="col">Итог</th></tr></thead>\n'
        f"<tbody>\n{rows}\n</tbody>\n</table>"
    )


def _details(document: Mapping[str, Any]) -> str:
    parts = []
    for host in sorted(document.get("hosts", []), key=lambda h: str(h.get("host"))):
        rows = "\n".join(
            f'<tr data-item="{escape(str(e.get("id")))}" data-state="{escape(str(e.get("state")))}">'
            f"<td>{escape(str(e.get('step', '')))}</td><td>{escape(str(e.get('title', '')))}</td>"
            f'<td class="state state-{escape(str(e.get("state")))}">{SYMBOLS.get(e.get("state"), "?")} '
            f"{escape(LABELS.get(e.get('state'), str(e.get('state'))))}</td>"
            f'<td class="evidence">{escape(str(e.get("evidence", "")))}</td>'
            f"<td>{escape(str(e.get('confirmed') or ''))}</td></tr>"
            for e in host.get("items", [])
        )
        parts.append(
            f"<h2>{escape(str(host.get('host')))}: {escape(str(host.get('portal_name') or ''))}"
            f" (резервное имя {escape(str(host.get('fallback_name') or ''))}, среда ЕСИА"
            f" {escape(str(host.get('environment') or ''))})</h2>\n"
            f'<table class="details"><thead><tr><th>Шаг</th><th>Пункт</th><th>Состояние</th><th>Свидетельство</th>'
            f"<th>Подтверждено</th></tr></thead>\n<tbody>\n{rows}\n</tbody></table>"
        )
    return "\n".join(parts)


def region_page(document: Mapping[str, Any], now: dt.datetime | None = None) -> str:
    """The readable report of one region (status.html next to status.json)."""
    now = now or dt.datetime.now(dt.UTC)
    title = f"Готовность к ЕСИА: регион {document.get('region')}"
    body = (
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="meta">{escape(str(document.get("org", "")))} · отчёт от {escape(str(document.get("generated_at")))}'
        f" · схема {escape(str(document.get('schema')))}</p>\n"
        f"{_legend()}\n{checklist_table([document], now)}\n{_details(document)}"
    )
    return _page(title, body)


def dashboard_page(documents: Sequence[Mapping[str, Any]], now: dt.datetime | None = None, stale_days: int = 7) -> str:
    """The fleet dashboard: every region's checklist on one page."""
    now = now or dt.datetime.now(dt.UTC)
    hosts = [h for d in documents for h in d.get("hosts", [])]
    ready = sum(1 for h in hosts if h.get("summary", {}).get("ready"))
    title = "Готовность регионов к ЕСИА"
    body = (
        f"<h1>{escape(title)}</h1>\n"
        f'<p class="meta">Собрано {now.strftime("%Y-%m-%d %H:%M")} UTC · регионов {len(documents)} · '
        f'хостов {len(hosts)} · полностью готовы <span id="ready-count">{ready}</span>. '
        f"Наведите указатель на ячейку, чтобы увидеть основание; красная дата — отчёт старше {stale_days} дн.</p>\n"
        f"{_legend()}\n{checklist_table(documents, now, stale_days)}"
    )
    return _page(title, body)
