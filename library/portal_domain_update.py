#!/usr/bin/python
"""Ansible module portal_domain_update: converge the portal's A/AAAA sets with one conditional RFC 2136 UPDATE."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.esia_onboard.rfc2136 import (
    HAS_DNSPYTHON,
    TSIG_ALGORITHMS,
    DnsError,
    Master,
    StubClient,
    absolute_name,
    canonical_rdata,
    differences,
    in_zone,
    make_key,
    nsupdate_script,
    parse_endpoint,
    plan,
    zone_lines,
)

DOCUMENTATION = r"""
module: portal_domain_update
short_description: Bring the portal's A/AAAA record sets to the wanted state with one all-or-nothing RFC 2136 UPDATE
description:
  - Reads every wanted record set at the zone's primary master, compares it with the wanted one and sends
    every difference in ONE UPDATE, TSIG-signed, whose prerequisites are the exact record sets it read.
    The server applies all of it or nothing; when anything changed between the read and the update it
    applies nothing and the module fails asking for a re-run.
  - A different A/AAAA set that already exists at a name is only replaced with O(replace_existing=true);
    otherwise the module fails naming the name, what exists and what would be written, before anything is sent.
  - Before the update is sent, the record sets as they were are written to a new file in O(backup_dir)
    (an nsupdate(1) script whose C(update add) lines are zone-file lines), so the old state can be put back.
  - Never writes the zone apex nor a name outside O(zone).
  - With O(send=false), or in check mode, nothing is sent and no backup is written; RV(changes) and the
    diff show what a run would do.
options:
  server:
    description: The zone's primary master as C(ip), C(ip:port) or C([ipv6]:port); no host names.
    type: str
    required: true
  port:
    description: Port used when O(server) names none.
    type: int
    default: 53
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
  attempts:
    description: Tries per read while the server is unreachable. The update itself is sent once.
    type: int
    default: 1
  retry_delay:
    description: Seconds between those tries.
    type: float
    default: 5
  key_name:
    description: TSIG key the server's update policy grants; required unless O(send=false).
    type: str
  key_secret:
    description: Base64 secret of O(key_name).
    type: str
  key_algorithm:
    description: TSIG algorithm of O(key_name) (hmac-md5 is refused).
    type: str
    default: hmac-sha256
    choices: [hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512]
  zone:
    description: The zone all names are in; its apex is never written.
    type: str
    required: true
  names:
    description: Every name that points at the portal (duplicates dropped).
    type: list
    elements: str
    required: true
  address:
    description: IPv4 address of the A set of every name.
    type: str
    required: true
  address6:
    description: IPv6 address of the AAAA set of every name; empty leaves AAAA sets alone.
    type: str
    default: ""
  ttl:
    description: TTL of the written sets, in seconds.
    type: int
    default: 300
  replace_existing:
    description:
      - Replace an existing A/AAAA set that holds other values. C(false) fails instead, naming what exists.
      - A set that is absent, or differs only in its TTL, is always written.
    type: bool
    default: false
  replace_setting:
    description: The setting an operator changes to allow the replacement, named in the failure.
    type: str
    default: replace_existing
  backup_dir:
    description:
      - Directory on the machine running the module (the controller, with C(delegate_to=localhost)) for the
        backup of the record sets as they were; created when missing. A new file per run that sends an update.
    type: path
    required: true
  send:
    description: C(false) only reads and compares (a preview that needs no key).
    type: bool
    default: true
  verify:
    description:
      - After the update (or when nothing needed one), require every resolver in O(verify_resolvers) (or the
        master itself, asked directly, when that list is empty) to answer with the wanted values, trying
        O(verify_retries) times O(verify_delay) seconds apart; fails with reason C(difference) otherwise.
      - Not in check mode while changes are pending (the new records are not there yet).
    type: bool
    default: false
  verify_resolvers: {description: "C(ip:port) resolvers that verify the records.", type: list, elements: str,
    default: []}
  verify_retries: {description: Tries until every resolver answers with the wanted values., type: int, default: 1}
  verify_delay: {description: Seconds between those tries., type: float, default: 0}
  verify_hint: {description: Sentence appended when the verification fails., type: str, default: ""}
  fallback:
    description:
      - A name that must keep resolving to O(address) (the old C(<region>.2dr.ru) name); only read, never written.
      - A different answer, or no answer, is a warning, or a failure (reason C(difference)) with O(fallback_strict).
    type: str
    default: ""
  fallback_resolvers: {description: "C(ip:port) resolvers that check O(fallback); empty uses the system resolver.",
    type: list, elements: str, default: []}
  fallback_strict: {description: Fail instead of warning about the fallback., type: bool, default: false}
  fallback_hint: {description: Sentence appended to a warning or failure about the fallback., type: str, default: ""}
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
requirements: [dnspython >= 2.4]
author: [esia-onboard]
"""

EXAMPLES = r"""
- name: Bring the portal record sets to the wanted state (one UPDATE)
  portal_domain_update:
    server: 192.0.2.53
    zone: miac77.ru
    names: [zapis.miac77.ru, www.zapis.miac77.ru]
    address: 203.0.113.10
    key_name: miac77-portal-update
    key_secret: "{{ portal_domain_tsig_secret }}"
    backup_dir: "{{ playbook_dir }}/../artifacts/77/dns"
  delegate_to: localhost
  no_log: true
  register: update
"""

RETURN = r"""
server: {description: The master asked, as C(ip:port)., type: str, returned: always}
reason:
  description: >-
    C(ok); or why the module failed - C(config), C(apex), C(not_in_zone), C(existing) (a different set
    exists and O(replace_existing) is false), C(tsig), C(refused), C(unreachable), C(not_authoritative),
    C(conflict), C(race) (the records changed between read and update; nothing applied), C(update_failed),
    C(difference) (O(verify) or a strict O(fallback) found other answers), C(query_failed).
  type: str
  returned: always
wanted: {description: The wanted sets (C(name), C(type), C(ttl), C(rdata))., type: list, elements: dict,
  returned: success}
rrsets: {description: What the master held for every wanted set before the run., type: list, elements: dict,
  returned: success}
changes: {description: The wanted sets that differed, each with its C(before)., type: list, elements: dict,
  returned: success}
existing: {description: The changes that replace a set holding other values., type: list, elements: dict,
  returned: success}
backup: {description: The backup file written before the update (empty when nothing was sent)., type: str,
  returned: always}
soa_serial_before: {description: The zone's SOA serial when it was read., type: int, returned: success}
soa_serial_after: {description: The serial after the update (equal when nothing was sent)., type: int,
  returned: success}
verified: {description: The resolvers (or the master) that answered with the wanted values., type: list,
  elements: str, returned: success}
"""


def wanted_sets(names: list[str], address: str, address6: str, ttl: int) -> list[dict[str, Any]]:
    """A (and, when given, AAAA) for every distinct name, in the order given."""
    sets: list[dict[str, Any]] = []
    for name in dict.fromkeys(absolute_name(n) for n in names):
        sets.append({"name": name, "type": "A", "ttl": int(ttl), "rdata": canonical_rdata("A", [address], name)})
        if address6:
            sets.append(
                {"name": name, "type": "AAAA", "ttl": int(ttl), "rdata": canonical_rdata("AAAA", [address6], name)}
            )
    return sets


def check_names(zone: str, wanted: list[dict[str, Any]]) -> None:
    for want in wanted:
        if want["name"] == zone:
            raise DnsError(
                "apex", f"{want['name']} is the apex of zone {zone}: its records are never written. Use a name below it"
            )
        if not in_zone(want["name"], zone):
            raise DnsError("not_in_zone", f"{want['name']} is not inside zone {zone}: it cannot be updated there")


def existing_sets(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes that would replace values someone else may have put there (TTL-only changes are not)."""
    return [c for c in changes if c["before"]["rdata"] and c["before"]["rdata"] != c["rdata"]]


def refuse_existing(existing: list[dict[str, Any]], setting: str, where: str) -> DnsError:
    parts = [
        f"{c['name']} {c['type']} holds {' '.join(c['before']['rdata'])} (TTL {c['before']['ttl']}) at {where}; "
        f"this run would write {' '.join(c['rdata'])} (TTL {c['ttl']})"
        for c in existing
    ]
    return DnsError(
        "existing",
        f"{setting} is false and a different record set already exists: {'; '.join(parts)}. Nothing was sent. "
        f"Check that these names belong to the portal, then set {setting}: true to replace them "
        "(the old records are saved for a restore before the update)",
    )


def backup_text(zone: str, where: str, serial: int, changes: list[dict[str, Any]], stamp: str) -> str:
    before = [
        {"name": c["name"], "type": c["type"], "ttl": c["before"]["ttl"], "rdata": c["before"]["rdata"]}
        for c in changes
    ]
    header = "\n".join(
        [
            f"esia-onboard portal_domain: the record sets of zone {zone} at {where} as they were at {stamp}",
            f"(SOA serial {serial}), written before the update that changed them was sent.",
            "Restore them with a TSIG key file (never the secret on the command line):",
            "  nsupdate -k /path/to/portal-update.key THIS_FILE",
            "Sets that did not exist are only deleted; what follows 'update add' is a zone-file line.",
            "",
            "As zone-file lines (empty when none of the sets existed):",
            *[f"  {line}" for line in zone_lines(before).splitlines()],
        ]
    )
    return nsupdate_script(zone, where, before, header)


def write_backup(directory: str, zone: str, text: str, now: datetime) -> str:
    """A new file (never overwritten), mode 0640, in a directory created 0750."""
    os.makedirs(directory, mode=0o750, exist_ok=True)
    base = os.path.join(directory, f"{now.strftime('%Y%m%dT%H%M%SZ')}-{zone.rstrip('.')}")
    for attempt in range(100):
        path = f"{base}{'' if attempt == 0 else f'-{attempt}'}.nsupdate"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return path
    raise DnsError("config", f"cannot find a free backup file name for {base}")


def _resolver(server: str, timeout: float) -> StubClient:
    """A resolver given as ip:port, or the system resolver when empty."""
    if not server:
        return StubClient(None, 53, timeout)
    address, port = parse_endpoint(server, 53)
    return StubClient(address, port, timeout)


def verify_records(params: dict[str, Any], wanted: list[dict[str, Any]]) -> list[str]:
    """Every resolver (or the master, asked directly) answers with the wanted values; else DnsError difference."""
    address, port = parse_endpoint(params["server"], params["port"])
    clients = [_resolver(r, params["timeout"]) for r in params["verify_resolvers"]] or [
        Master(address, port, params["timeout"])
    ]
    found: list[str] = []
    for attempt in range(max(1, params["verify_retries"])):
        if attempt:
            time.sleep(params["verify_delay"])
        try:
            found = [text for client in clients for text in differences(client, wanted)]
        except DnsError as err:
            found = [str(err)]
        if not found:
            return [client.where for client in clients]
    message = "; ".join(found) + (". " + params["verify_hint"] if params["verify_hint"] else "")
    raise DnsError("difference", message)


def check_fallback(params: dict[str, Any], warn: Callable[[str], None]) -> None:
    """The fallback name still resolves to the portal's address (read-only)."""
    wanted = [{"name": absolute_name(params["fallback"]), "type": "A", "ttl": 300, "rdata": [params["address"]]}]
    hint = params["fallback_hint"]
    for server in params["fallback_resolvers"] or [""]:
        client = _resolver(server, params["timeout"])
        try:
            found = differences(client, wanted)
        except DnsError as err:
            if params["fallback_strict"] or err.reason not in ("unreachable", "query_failed"):
                raise
            warn(f"{err}. {hint}".rstrip(". ") + ".")
            continue
        if found:
            message = "; ".join(found) + (". " + hint if hint else "")
            if params["fallback_strict"]:
                raise DnsError("difference", message)
            warn(message)


def converge(
    params: dict[str, Any],
    check_mode: bool,
    before_send: Callable[[], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    warn: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """Read, compare and (unless check mode or send=false) converge; raise DnsError on any failure.

    `before_send` runs after the backup is written and just before the
    UPDATE goes out (tests use it to change the zone under the module)."""
    zone = absolute_name(params["zone"])
    wanted = wanted_sets(params["names"], params["address"], params["address6"], params["ttl"])
    check_names(zone, wanted)
    address, port = parse_endpoint(params["server"], params["port"])
    sending = params["send"] and not check_mode
    key = None
    if params["send"]:
        if not params.get("key_name"):
            raise DnsError("config", "key_name is needed to send an update (or set send: false)")
        key = make_key(params["key_name"], params.get("key_secret") or "", params["key_algorithm"])
    master = Master(address, port, params["timeout"], key, params["attempts"], params["retry_delay"])
    result: dict[str, Any] = {"server": master.where, "reason": "ok", "wanted": wanted, "backup": ""}

    serial = master.soa_serial(zone)
    current = [master.rrset(w["name"], w["type"]) for w in wanted]
    changes = plan(current, wanted)
    existing = existing_sets(changes)
    result.update(rrsets=current, changes=changes, existing=existing, soa_serial_before=serial, soa_serial_after=serial)
    if existing and not params["replace_existing"]:
        raise refuse_existing(existing, params["replace_setting"], master.where)
    result["changed"] = bool(changes)
    if changes:
        result["diff"] = {
            "before_header": f"{zone} at {master.where} (now)",
            "after_header": f"{zone} at {master.where} (wanted)",
            "before": zone_lines([c for c in current if c["rdata"]]),
            "after": zone_lines(wanted),
        }
    if not sending or not changes:
        return after(params, result, wanted, check_mode and bool(changes), warn)

    stamp = now()
    result["backup"] = write_backup(
        params["backup_dir"],
        zone,
        backup_text(zone, master.where, serial, changes, stamp.strftime("%Y-%m-%dT%H:%M:%SZ")),
        stamp,
    )
    if before_send is not None:
        before_send()
    try:
        serials = master.apply(zone, changes)
    except DnsError as err:
        err.backup = result["backup"]  # type: ignore[attr-defined]
        raise
    result.update(soa_serial_before=serials["serial_before"], soa_serial_after=serials["serial_after"])
    try:
        return after(params, result, wanted, False, warn)
    except DnsError as err:
        err.backup = result["backup"]  # type: ignore[attr-defined]
        err.applied = True  # type: ignore[attr-defined]
        raise


def after(
    params: dict[str, Any],
    result: dict[str, Any],
    wanted: list[dict[str, Any]],
    pending: bool,
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """What clients see: the verification (unless changes are still pending) and the fallback."""
    result["verified"] = []
    if params.get("verify") and not pending:
        result["verified"] = verify_records(params, wanted)
    if params.get("fallback"):
        check_fallback(params, warn)
    return result


ARGUMENT_SPEC: dict[str, Any] = {
    "server": {"type": "str", "required": True},
    "port": {"type": "int", "default": 53},
    "timeout": {"type": "float", "default": 5.0},
    "attempts": {"type": "int", "default": 1},
    "retry_delay": {"type": "float", "default": 5.0},
    "key_name": {"type": "str"},
    "key_secret": {"type": "str", "no_log": True},
    "key_algorithm": {"type": "str", "default": "hmac-sha256", "choices": list(TSIG_ALGORITHMS)},
    "zone": {"type": "str", "required": True},
    "names": {"type": "list", "elements": "str", "required": True},
    "address": {"type": "str", "required": True},
    "address6": {"type": "str", "default": ""},
    "ttl": {"type": "int", "default": 300},
    "replace_existing": {"type": "bool", "default": False},
    "replace_setting": {"type": "str", "default": "replace_existing"},
    "backup_dir": {"type": "path", "required": True},
    "send": {"type": "bool", "default": True},
    "verify": {"type": "bool", "default": False},
    "verify_resolvers": {"type": "list", "elements": "str", "default": []},
    "verify_retries": {"type": "int", "default": 1},
    "verify_delay": {"type": "float", "default": 0.0},
    "verify_hint": {"type": "str", "default": ""},
    "fallback": {"type": "str", "default": ""},
    "fallback_resolvers": {"type": "list", "elements": "str", "default": []},
    "fallback_strict": {"type": "bool", "default": False},
    "fallback_hint": {"type": "str", "default": ""},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), reason="config")
    result: dict[str, Any] = {}
    try:
        result = converge(module.params, module.check_mode, warn=module.warn)
    except DnsError as err:
        zone = module.params["zone"]
        backup = getattr(err, "backup", "")
        # One UPDATE: the zone is never half-done, whatever failed.
        if getattr(err, "applied", False):
            outcome = f"The update of zone {zone} was applied; the records as they were are in {backup}."
        elif err.reason == "difference":
            outcome = f"Nothing was sent to zone {zone} in this run."
        elif not backup:
            outcome = f"Nothing was sent to zone {zone}."
        elif err.reason == "unreachable":
            outcome = f"The records as they were are in {backup}."
        else:
            outcome = (
                f"The server applied nothing: zone {zone} holds what it held before (one all-or-nothing update; "
                f"the records as they were are also in {backup})."
            )
        module.fail_json(msg=f"{str(err).rstrip('. ')}. {outcome}", reason=err.reason, backup=backup)
    except Exception as err:  # dnspython or OS errors without a reason of their own
        module.fail_json(
            msg=f"DNS error: {type(err).__name__}: {err}", reason="update_failed", exception=traceback.format_exc()
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
