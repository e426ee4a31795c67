#!/usr/bin/python3
"""esia-onboard-expiry: every expiry of a portal host in one place, exported for monitoring.

Installed by the portal_monitoring role as /usr/local/sbin/esia-onboard-expiry
and run by its systemd timer (daily and at boot) and on every converge.

    esia-onboard-expiry [--config FILE] refresh [--dry-run] [--timer UNIT [--daemon-reload]]
        Read every certificate and licence the config lists, write the state
        file (JSON: the one place that knows every expiry) and, when the config
        names one, the Prometheus textfile for node_exporter's textfile
        collector. Both are replaced atomically. Removes the files the config
        lists under "absent" (an export switched off) and, with --timer,
        enables and starts that timer when it is not. Prints {"changed": ...}:
        whether anything but the timestamps differs from the last state, or a
        file was removed or the timer started.
    esia-onboard-expiry [--config FILE] zabbix discovery
    esia-onboard-expiry [--config FILE] zabbix days_left|not_after|status KIND NAME
    esia-onboard-expiry [--config FILE] zabbix last_run|problems
        What the Zabbix agent's UserParameters run: read the state file only.

Needs only the standard library and python3-cryptography. GOST certificates
are read with cryptography's X.509 loader, which parses them (only their
public keys are beyond it), so no GOST engine is needed.

The config (JSON, written by the role):
    {"state_file": PATH, "textfile": PATH or null, "warn_days": 30, "critical_days": 7,
     "certificates": [{"kind": "tls", "name": "zapis.miac77.ru", "path": "/etc/ssl/..."}],
     "licences": [{"kind": "cryptopro", "name": "csp", "fact": "/etc/ansible/facts.d/esia_cryptopro.fact"}]}
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA = "esia-onboard/expiry/1"
DEFAULT_CONFIG = "/etc/ansible/facts.d/portal_monitoring.fact"
PREFIX = "esia_onboard"

OK, WARNING, CRITICAL, EXPIRED, PERMANENT, ERROR = "ok", "warning", "critical", "expired", "permanent", "error"
# Worst first: what a summary of several entries shows.
LEVEL_ORDER = (ERROR, EXPIRED, CRITICAL, WARNING, OK, PERMANENT)
_TIMESTAMP_KEYS = ("generated_at", "last_run")


class ConfigError(Exception):
    pass


# -- reading ------------------------------------------------------------------


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return _utc(moment).astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> dt.datetime | None:
    """ISO 8601 date or date-time (Z allowed) as an aware UTC datetime; None when not one."""
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
        return _utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def load_certificate(data: bytes) -> Any:
    """The first certificate of a PEM file (a fullchain starts with the leaf) or a DER file."""
    from cryptography import x509

    with warnings.catch_warnings():  # long subject attributes of GOST certificates
        warnings.simplefilter("ignore")
        if b"-----BEGIN CERTIFICATE-----" in data:
            start = data.index(b"-----BEGIN CERTIFICATE-----")
            end = data.find(b"-----END CERTIFICATE-----", start)
            if end < 0:
                raise ValueError("PEM certificate without its END line")
            return x509.load_pem_x509_certificate(data[start : end + len(b"-----END CERTIFICATE-----")] + b"\n")
        return x509.load_der_x509_certificate(data)


def _validity(certificate: Any) -> tuple[dt.datetime, dt.datetime]:
    # cryptography >= 42 has the aware *_utc properties; Debian 12 ships 38.
    before = getattr(certificate, "not_valid_before_utc", None) or _utc(certificate.not_valid_before)
    after = getattr(certificate, "not_valid_after_utc", None) or _utc(certificate.not_valid_after)
    return before, after


def _subject(certificate: Any) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return certificate.subject.rfc4514_string()
    except Exception:  # an attribute cryptography cannot render
        return "?"


def days_left(not_after: dt.datetime, now: dt.datetime) -> int:
    """Whole days until notAfter, rounded down (negative once expired)."""
    return math.floor((not_after - now).total_seconds() / 86400)


def level(days: int | None, warn_days: int, critical_days: int) -> str:
    if days is None:
        return ERROR
    if days < 0:
        return EXPIRED
    if days < critical_days:
        return CRITICAL
    if days < warn_days:
        return WARNING
    return OK


def read_certificate(item: Mapping[str, Any], now: dt.datetime, warn_days: int, critical_days: int) -> dict:
    entry: dict[str, Any] = {
        "type": "certificate",
        "kind": str(item["kind"]),
        "name": str(item["name"]),
        "path": str(item["path"]),
    }
    try:
        with open(entry["path"], "rb") as handle:
            data = handle.read()
    except OSError as error:
        return {**entry, "level": ERROR, "error": f"cannot read {entry['path']}: {error.strerror or error}"}
    try:
        certificate = load_certificate(data)
        not_before, not_after = _validity(certificate)
    except Exception as error:  # cryptography names what is wrong with the file
        return {**entry, "level": ERROR, "error": f"{entry['path']} is not a certificate: {error}"}
    days = days_left(not_after, now)
    return {
        **entry,
        "subject": _subject(certificate),
        "serial_number": format(certificate.serial_number, "X"),
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "not_before_timestamp": int(not_before.timestamp()),
        "not_after_timestamp": int(not_after.timestamp()),
        "days_left": days,
        "level": level(days, warn_days, critical_days),
    }


def read_licence(item: Mapping[str, Any], now: dt.datetime, warn_days: int, critical_days: int) -> dict:
    """A licence recorded in a local fact: `license_type` (Demo, Client, Server...) and `license_expires`
    (ISO date; empty with a type = permanent), as roles/cryptopro writes them from `cpconfig -license -view`."""
    entry: dict[str, Any] = {
        "type": "licence",
        "kind": str(item["kind"]),
        "name": str(item["name"]),
        "path": str(item["fact"]),
    }
    try:
        with open(entry["path"], encoding="utf-8") as handle:
            fact = json.load(handle)
    except (OSError, ValueError) as error:
        return {**entry, "level": ERROR, "error": f"cannot read {entry['path']}: {error}"}
    if not isinstance(fact, Mapping):
        return {**entry, "level": ERROR, "error": f"{entry['path']} is not a JSON object"}
    licence_type = str(fact.get("license_type") or "").strip()
    raw_expires = fact.get("license_expires")
    entry["licence_type"] = licence_type or None
    expires = parse_time(raw_expires)
    if expires is None:
        # The cryptopro role records a permanent licence as a type with no expiry date.
        if licence_type and not raw_expires:
            return {**entry, "level": PERMANENT}
        why = f"license_expires {raw_expires!r} is not a date" if raw_expires else "no licence recorded"
        return {**entry, "level": ERROR, "error": f"{entry['path']}: {why} (license_type {licence_type or '?'})"}
    days = days_left(expires, now)
    return {
        **entry,
        "not_after": _iso(expires),
        "not_after_timestamp": int(expires.timestamp()),
        "days_left": days,
        "level": level(days, warn_days, critical_days),
    }


def load_config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the config {path}: {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("state_file"), str):
        raise ConfigError(f"{path}: needs a JSON object with state_file")
    for key in ("warn_days", "critical_days"):
        if not isinstance(config.get(key, 0), int) or isinstance(config.get(key), bool):
            raise ConfigError(f"{path}: {key} must be a whole number of days, got {config.get(key)!r}")
    for key, fields in (("certificates", ("kind", "name", "path")), ("licences", ("kind", "name", "fact"))):
        items = config.get(key, [])
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and all(isinstance(i.get(f), str) and i[f] for f in fields) for i in items
        ):
            raise ConfigError(f"{path}: {key} must be a list of objects with {', '.join(fields)}")
    return config


def collect(config: Mapping[str, Any], now: dt.datetime) -> dict:
    """The state document: every entry with its expiry and level."""
    warn, critical = int(config.get("warn_days", 30)), int(config.get("critical_days", 7))
    entries = [read_certificate(i, now, warn, critical) for i in config.get("certificates", [])]
    entries += [read_licence(i, now, warn, critical) for i in config.get("licences", [])]
    return {
        "schema": SCHEMA,
        "generated_at": _iso(now),
        "last_run": int(now.timestamp()),
        "warn_days": warn,
        "critical_days": critical,
        "entries": entries,
    }


def worst(levels: Sequence[str]) -> str:
    return min(levels, key=LEVEL_ORDER.index) if levels else OK


# -- Prometheus -----------------------------------------------------------------


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(entry: Mapping[str, Any], keys: Sequence[str]) -> str:
    return "{" + ",".join(f'{key}="{_label_value(str(entry[key]))}"' for key in keys) + "}"


def prometheus_text(state: Mapping[str, Any]) -> str:
    """The textfile collector's exposition format: HELP and TYPE before each family."""
    certificates = [e for e in state["entries"] if e["type"] == "certificate"]
    licences = [e for e in state["entries"] if e["type"] == "licence"]
    cert_labels, licence_labels = ("kind", "name", "path"), ("kind", "name")
    families: list[tuple[str, str, list[tuple[str, float | int]]]] = [
        (
            "certificate_expiry_timestamp_seconds",
            "When the certificate stops being valid (notAfter), in Unix time.",
            [(_labels(e, cert_labels), e["not_after_timestamp"]) for e in certificates if "not_after_timestamp" in e],
        ),
        (
            "certificate_not_before_timestamp_seconds",
            "When the certificate starts being valid (notBefore), in Unix time.",
            [(_labels(e, cert_labels), e["not_before_timestamp"]) for e in certificates if "not_before_timestamp" in e],
        ),
        (
            "certificate_read_success",
            "1 when the certificate file was read, 0 when it is missing or not a certificate.",
            [(_labels(e, cert_labels), 0 if e["level"] == ERROR else 1) for e in certificates],
        ),
        (
            "licence_expiry_timestamp_seconds",
            "When the licence expires, in Unix time (absent for a permanent licence).",
            [(_labels(e, licence_labels), e["not_after_timestamp"]) for e in licences if "not_after_timestamp" in e],
        ),
        (
            "licence_permanent",
            "1 when the licence never expires, 0 otherwise.",
            [(_labels(e, licence_labels), 1 if e["level"] == PERMANENT else 0) for e in licences],
        ),
        (
            "licence_read_success",
            "1 when the licence's expiry was read, 0 when it is unknown.",
            [(_labels(e, licence_labels), 0 if e["level"] == ERROR else 1) for e in licences],
        ),
        (
            "expiry_threshold_seconds",
            "The warning and critical thresholds the portal's own report uses, as durations.",
            [
                ('{severity="warning"}', int(state["warn_days"]) * 86400),
                ('{severity="critical"}', int(state["critical_days"]) * 86400),
            ],
        ),
        (
            "expiry_last_run_timestamp_seconds",
            "When esia-onboard-expiry last read the certificates and licences, in Unix time.",
            [("", state["last_run"])],
        ),
    ]
    lines: list[str] = []
    for suffix, help_text, samples in families:
        if not samples:
            continue
        name = f"{PREFIX}_{suffix}"
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{labels} {value}" for labels, value in samples]
    return "\n".join(lines) + "\n"


# -- Zabbix ---------------------------------------------------------------------


def zabbix_discovery(state: Mapping[str, Any]) -> str:
    data = [
        {"{#TYPE}": e["type"], "{#KIND}": e["kind"], "{#NAME}": e["name"], "{#PATH}": e["path"]}
        for e in state["entries"]
    ]
    return json.dumps({"data": data}, ensure_ascii=False)


def _find(state: Mapping[str, Any], kind: str, name: str) -> Mapping[str, Any]:
    for entry in state["entries"]:
        if entry["kind"] == kind and entry["name"] == name:
            return entry
    raise LookupError(f"no entry {kind},{name} in the state file (see esia.onboard.discovery)")


def zabbix_value(state: Mapping[str, Any], key: str, args: Sequence[str], now: dt.datetime) -> str:
    """One item's value. days_left is counted from now, so it falls between timer runs."""
    if key == "last_run":
        return str(state["last_run"])
    if key == "problems":
        return str(sum(1 for e in state["entries"] if e["level"] not in (OK, PERMANENT)))
    if len(args) != 2:
        raise LookupError(f"{key} needs two parameters: kind and name")
    entry = _find(state, *args)
    if key == "status":
        if entry["level"] in (ERROR, PERMANENT):
            return entry["level"]
        days = days_left(dt.datetime.fromtimestamp(entry["not_after_timestamp"], dt.UTC), now)
        return level(days, int(state["warn_days"]), int(state["critical_days"]))
    if "not_after_timestamp" not in entry:
        raise LookupError(f"{args[0]},{args[1]}: {entry.get('error') or entry['level']}")
    if key == "not_after":
        return str(entry["not_after_timestamp"])
    if key == "days_left":
        return str(days_left(dt.datetime.fromtimestamp(entry["not_after_timestamp"], dt.UTC), now))
    raise LookupError(f"unknown key {key}")


# -- writing --------------------------------------------------------------------


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Replace `path` in one rename, so a reader (node_exporter, the agent) never sees half a file."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _comparable(state: Mapping[str, Any] | None) -> Any:
    if not isinstance(state, Mapping):
        return None
    entries = [{k: v for k, v in e.items() if k not in ("days_left", "level")} for e in state.get("entries", [])]
    return {**{k: v for k, v in state.items() if k not in _TIMESTAMP_KEYS}, "entries": entries}


def read_state(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _systemctl(*args: str) -> int:
    return subprocess.run(["systemctl", *args], check=False, capture_output=True).returncode


def ensure_timer(timer: str, daemon_reload: bool, dry_run: bool) -> list[str]:
    """Enable and start ``timer`` when it is not (after a daemon-reload when its units changed)."""
    actions = []
    if daemon_reload and not dry_run and _systemctl("daemon-reload") != 0:
        raise ConfigError("systemctl daemon-reload failed")
    if _systemctl("is-enabled", "--quiet", timer) != 0 or _systemctl("is-active", "--quiet", timer) != 0:
        actions.append(f"enable and start {timer}")
        if not dry_run and _systemctl("enable", "--now", timer) != 0:
            raise ConfigError(f"systemctl enable --now {timer} failed (systemctl status {timer})")
    return actions


def remove_switched_off(paths: Sequence[str], dry_run: bool) -> list[str]:
    """Remove the files of an export that was switched off (the config lists them under ``absent``)."""
    actions = []
    for path in paths:
        if os.path.lexists(path):
            actions.append(f"remove {path}")
            if not dry_run:
                os.unlink(path)
    return actions


def refresh(
    config: Mapping[str, Any],
    now: dt.datetime,
    dry_run: bool = False,
    timer: str | None = None,
    daemon_reload: bool = False,
) -> dict:
    state = collect(config, now)
    previous = read_state(config["state_file"])
    textfile = config.get("textfile")
    actions = remove_switched_off(list(config.get("absent") or []), dry_run)
    if timer:
        actions += ensure_timer(timer, daemon_reload, dry_run)
    changed = (
        _comparable(previous) != _comparable(state) or bool(textfile and not os.path.exists(textfile)) or bool(actions)
    )
    if not dry_run:
        write_atomically(config["state_file"], json.dumps(state, ensure_ascii=False, indent=2) + "\n")
        if textfile:
            write_atomically(textfile, prometheus_text(state))
    return {
        "changed": changed,
        "actions": actions,
        "state_file": config["state_file"],
        "textfile": textfile,
        "entries": len(state["entries"]),
        "problems": [
            f"{e['kind']} {e['name']}: {e.get('error') or e['level']}"
            for e in state["entries"]
            if e["level"] not in (OK, PERMANENT)
        ],
    }


def main(argv: list[str] | None = None, now: dt.datetime | None = None) -> int:
    parser = argparse.ArgumentParser(prog="esia-onboard-expiry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    commands = parser.add_subparsers(dest="command", required=True)
    refresh_parser = commands.add_parser("refresh")
    refresh_parser.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    refresh_parser.add_argument("--timer", help="also enable and start this systemd timer when it is not")
    refresh_parser.add_argument("--daemon-reload", action="store_true", help="systemctl daemon-reload first")
    zabbix = commands.add_parser("zabbix")
    zabbix.add_argument("key", choices=["discovery", "days_left", "not_after", "status", "last_run", "problems"])
    zabbix.add_argument("args", nargs="*")
    args = parser.parse_args(argv)
    now = now or dt.datetime.now(dt.UTC)
    try:
        config = load_config(args.config)
        if args.command == "refresh":
            result = refresh(config, now, args.dry_run, args.timer, args.daemon_reload)
            print(json.dumps(result, ensure_ascii=False))
            return 0
        state = read_state(config["state_file"])
        if not isinstance(state, dict) or state.get("schema") != SCHEMA:
            raise LookupError(f"no state in {config['state_file']}: run esia-onboard-expiry refresh")
        if args.key == "discovery":
            print(zabbix_discovery(state))
        else:
            print(zabbix_value(state, args.key, args.args, now))
        return 0
    except (ConfigError, LookupError) as error:
        # The agent shows this text with the unsupported item.
        print(f"esia-onboard-expiry: {error}", file=sys.stdout if args.command == "zabbix" else sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
