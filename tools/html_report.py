"""Self-contained HTML pages over status documents: a region's report and the fleet dashboard.

No scripts, fonts or images from anywhere: one file that opens offline. Every
checklist cell carries `data-item`, `data-state` and the evidence in `title`
(the browser's tooltip), so the page can be read back by tools and tests; the
"Сроки" cell carries `data-level` and `data-days` (the nearest expiry).

The markup is in tools/templates/*.html.j2, rendered by Jinja2 with
autoescaping on: this module only prepares plain values for them.
"""

# Labels are Russian (the operators' language): Cyrillic letters are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from tools.readiness import DONE, EXPIRY_LABELS, ITEMS, ITEMS_BY_ID, NOT_DONE, PENDING, STATE_LABELS

MISSING = "missing"
SYMBOLS = {DONE: "✓", PENDING: "◷", NOT_DONE: "✗", MISSING: "—"}
LABELS = {**STATE_LABELS, MISSING: "нет данных"}
EXPIRY_LEVELS = ("ok", "warning", "critical", "expired", "permanent", "error")
# Worst first: the dashboard cell shows the worst entry of a host.
_LEVEL_ORDER = ("error", "expired", "critical", "warning", "ok", "permanent")

TEMPLATES = Path(__file__).resolve().with_name("templates")
ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True, default=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def _render(template: str, **values: Any) -> str:
    return ENVIRONMENT.get_template(template).render(**values)


def _legend() -> list[dict[str, str]]:
    return [{"id": s, "symbol": SYMBOLS[s], "label": LABELS[s]} for s in (DONE, PENDING, NOT_DONE, MISSING)]


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


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _days_text(entry: Mapping[str, Any]) -> str:
    if entry.get("days_left") is not None:
        return f"{entry['days_left']} дн."
    if entry.get("level") == "permanent":
        return EXPIRY_LABELS["permanent"]
    return _text(entry.get("error")) or EXPIRY_LABELS["error"]


def expiry_summary(expiry: Mapping[str, Any] | None) -> dict[str, Any]:
    """The dashboard's "Сроки" cell of one host: its worst entry, with every entry in the tooltip."""
    if not isinstance(expiry, Mapping):
        return {"level": "error", "days": None, "text": "—", "title": "нет данных о сроках в отчёте"}
    entries = [e for e in expiry.get("entries") or [] if isinstance(e, Mapping)]
    levels = [e.get("level") for e in entries if e.get("level") in EXPIRY_LEVELS]
    if expiry.get("error") or not levels:
        return {"level": "error", "days": None, "text": "—", "title": _text(expiry.get("error")) or "нет данных"}
    level = min(levels, key=_LEVEL_ORDER.index)
    days = [e["days_left"] for e in entries if isinstance(e.get("days_left"), int)]
    nearest = min(days) if days else None
    lines = [f"{e.get('kind')} {e.get('name')}: {_days_text(e)}" for e in entries]
    lines += [_text(n) for n in expiry.get("notices") or []]
    return {
        "level": level,
        "days": nearest,
        "text": f"{nearest} дн." if nearest is not None else EXPIRY_LABELS.get(level, level),
        "title": "; ".join(lines),
    }


def _region_sort_key(document: Mapping[str, Any]) -> tuple[int, str]:
    region = str(document.get("region", ""))
    return (int(region) if region.isdigit() else 10_000, region)


def _sorted_hosts(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(document.get("hosts", []), key=lambda h: str(h.get("host")))


def checklist_table(documents: Sequence[Mapping[str, Any]], now: dt.datetime, stale_days: int = 7) -> dict[str, Any]:
    """What the checklist table shows: one row per region and host, one column per item."""
    ordered = sorted(documents, key=_region_sort_key)
    columns = item_columns(ordered)
    rows = []
    for document in ordered:
        for host in _sorted_hosts(document):
            entries = {e.get("id"): e for e in host.get("items", [])}
            checked = _parse_time(host.get("checked_at") or document.get("generated_at"))
            stale = checked is None or (now - checked).days >= stale_days
            cells = []
            for item_id, _, _ in columns:
                entry = entries.get(item_id)
                state = entry.get("state") if entry and entry.get("state") in SYMBOLS else MISSING
                cells.append(
                    {"item": item_id, "state": state, "title": tooltip(entry, item_id), "symbol": SYMBOLS[state]}
                )
            rows.append(
                {
                    "region": _text(document.get("region", "")),
                    "org": _text(document.get("org", "")),
                    "host": _text(host.get("host", "")),
                    "portal_name": _text(host.get("portal_name")),
                    "stale": stale,
                    "checked": checked.strftime("%Y-%m-%d %H:%M") if checked else "?",
                    "checked_title": f"отчёт старше {stale_days} дн." if stale else "отчёт свежий",
                    "cells": cells,
                    "expiry": expiry_summary(host.get("expiry")),
                    "done": sum(1 for e in entries.values() if e.get("state") == DONE),
                    "total": len(columns),
                    "ready": bool(host.get("summary", {}).get("ready")),
                }
            )
    return {
        "columns": [{"id": i, "short": short, "full": full} for i, short, full in columns],
        "rows": rows,
    }


def _host_details(host: Mapping[str, Any]) -> dict[str, Any]:
    expiry = host.get("expiry") if isinstance(host.get("expiry"), Mapping) else None
    return {
        "host": _text(host.get("host")),
        "portal_name": _text(host.get("portal_name")),
        "fallback_name": _text(host.get("fallback_name")),
        "environment": _text(host.get("environment")),
        "checks": [
            {
                "id": _text(e.get("id")),
                "state": _text(e.get("state")),
                "step": _text(e.get("step", "")),
                "title": _text(e.get("title", "")),
                "symbol": SYMBOLS.get(e.get("state"), "?"),
                "label": LABELS.get(e.get("state"), _text(e.get("state"))),
                "evidence": _text(e.get("evidence", "")),
                "confirmed": _text(e.get("confirmed")),
            }
            for e in host.get("items", [])
        ],
        "expiry": None
        if expiry is None
        else {
            "source": _text(expiry.get("source")),
            "generated_at": _text(expiry.get("generated_at")),
            "warn_days": _text(expiry.get("warn_days")),
            "critical_days": _text(expiry.get("critical_days")),
            "error": _text(expiry.get("error")),
            "notices": [_text(n) for n in expiry.get("notices") or []],
            "entries": [
                {
                    "kind": _text(e.get("kind")),
                    "name": _text(e.get("name")),
                    "path": _text(e.get("path")),
                    "not_after": _text(e.get("not_after")),
                    "level": e.get("level") if e.get("level") in EXPIRY_LEVELS else "error",
                    "left": _days_text(e),
                }
                for e in expiry.get("entries") or []
                if isinstance(e, Mapping)
            ],
        },
    }


def region_page(document: Mapping[str, Any], now: dt.datetime | None = None) -> str:
    """The readable report of one region (status.html next to status.json)."""
    now = now or dt.datetime.now(dt.UTC)
    return _render(
        "region.html.j2",
        title=f"Готовность к ЕСИА: регион {document.get('region')}",
        org=_text(document.get("org", "")),
        generated_at=_text(document.get("generated_at")),
        schema=_text(document.get("schema")),
        states=_legend(),
        table=checklist_table([document], now),
        hosts=[_host_details(h) for h in _sorted_hosts(document)],
    )


def dashboard_page(documents: Sequence[Mapping[str, Any]], now: dt.datetime | None = None, stale_days: int = 7) -> str:
    """The fleet dashboard: every region's checklist on one page."""
    now = now or dt.datetime.now(dt.UTC)
    hosts = [h for d in documents for h in d.get("hosts", [])]
    return _render(
        "dashboard.html.j2",
        title="Готовность регионов к ЕСИА",
        built=now.strftime("%Y-%m-%d %H:%M"),
        regions=len(documents),
        hosts=len(hosts),
        ready=sum(1 for h in hosts if h.get("summary", {}).get("ready")),
        stale_days=stale_days,
        states=_legend(),
        table=checklist_table(documents, now, stale_days),
    )
