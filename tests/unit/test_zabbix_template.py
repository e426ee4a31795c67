"""The Zabbix template (roles/portal_monitoring/files/zabbix-template.yaml)
against what the host really offers: the UserParameter keys the role installs,
the LLD macros and the status words the expiry script returns.

No Zabbix server runs here; the agent side is proven by `zabbix_agentd -t` in
tests/integration/test_portal_monitoring.py. This test makes sure the template
asks only for what that agent answers, and that Zabbix's import would accept
its identifiers (uuid4 hex, unique) and expressions (each names the template
and an item of its own).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "portal_monitoring"
SCRIPT = ROLE / "files" / "esia_onboard_expiry.py"
_spec = importlib.util.spec_from_file_location("esia_onboard_expiry_for_zabbix", SCRIPT)
expiry = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(expiry)

EXPORT = yaml.safe_load((ROLE / "files" / "zabbix-template.yaml").read_text())["zabbix_export"]
(TEMPLATE,) = EXPORT["templates"]
PROTOTYPES = [p for rule in TEMPLATE["discovery_rules"] for p in rule["item_prototypes"]]
ITEMS = TEMPLATE["items"] + PROTOTYPES


def userparameter_keys() -> set[str]:
    text = (ROLE / "templates" / "esia_onboard.conf.j2").read_text()
    return {m[1] for m in re.finditer(r"^UserParameter=([\w.]+)(\[\*\])?,", text, re.M)}


def base_key(key: str) -> str:
    return key.split("[", 1)[0]


def triggers() -> list[tuple[dict, dict]]:
    return [
        (item, trigger) for item in ITEMS for trigger in item.get("triggers", []) + item.get("trigger_prototypes", [])
    ]


def walk_uuids(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["uuid"]] if "uuid" in node else []) + [u for v in node.values() for u in walk_uuids(v)]
    if isinstance(node, list):
        return [u for v in node for u in walk_uuids(v)]
    return []


def test_template_asks_for_exactly_the_keys_the_agent_offers():
    asked = {base_key(i["key"]) for i in ITEMS} | {base_key(r["key"]) for r in TEMPLATE["discovery_rules"]}
    offered = userparameter_keys()
    assert offered, "no UserParameter found in the role's template"
    assert asked == offered, f"only in the template: {asked - offered}; only on the agent: {offered - asked}"


def test_uuids_are_unique_uuid4_hex():
    found = walk_uuids(EXPORT)
    assert len(found) == len(set(found))
    for value in found:
        assert re.fullmatch(r"[0-9a-f]{32}", value), value
        assert uuid.UUID(hex=value).version == 4, value


def test_each_trigger_reads_its_own_item_of_this_template():
    assert triggers()
    for item, trigger in triggers():
        refs = re.findall(r"\(/([^/]+)/([^)]+)\)", trigger["expression"])
        assert refs, trigger["expression"]
        for host, key in refs:
            assert host == TEMPLATE["template"], trigger["expression"]
            assert key == item["key"], trigger["expression"]


def test_macros_exist_where_they_are_used():
    defined = {m["macro"] for m in TEMPLATE.get("macros", [])}
    text = json.dumps(TEMPLATE)
    assert set(re.findall(r"\{\$[A-Z0-9_.]+\}", text)) <= defined
    state = {
        "entries": [{"type": "certificate", "kind": "tls", "name": "zapis.miac77.ru", "path": "/etc/x.pem"}],
    }
    discovered = set(json.loads(expiry.zabbix_discovery(state))["data"][0])
    used = set(re.findall(r"\{#[A-Z]+\}", json.dumps(PROTOTYPES)))
    assert used and used <= discovered, used - discovered


def test_status_triggers_match_the_words_the_script_returns():
    words = {expiry.OK, expiry.WARNING, expiry.CRITICAL, expiry.EXPIRED, expiry.PERMANENT, expiry.ERROR}
    compared = {m for _, t in triggers() for m in re.findall(r'\)="(\w+)"', t["expression"])}
    assert compared, "no status trigger"
    assert compared <= words, compared - words
    # Everything but ok and permanent raises something.
    assert compared == words - {expiry.OK, expiry.PERMANENT}
    # And the script really returns those words for the status key.
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    entry = {
        "kind": "tls",
        "name": "n",
        "level": "ok",
        "not_after_timestamp": int((now + dt.timedelta(days=3)).timestamp()),
    }
    state = {"entries": [entry], "warn_days": 30, "critical_days": 7, "last_run": 0}
    assert expiry.zabbix_value(state, "status", ["tls", "n"], now) == expiry.CRITICAL
