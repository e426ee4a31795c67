#!/usr/bin/python
"""Ansible module portal_domain_rrset: read DNS record sets and compare them with wanted ones (read-only)."""

from __future__ import annotations

import traceback
from typing import Any

try:
    import dns.exception
    import dns.rdatatype

    HAS_DNSPYTHON = True
    DNSPYTHON_ERROR = None
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_ERROR = traceback.format_exc()

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.esia_onboard.rfc2136 import (  # noqa: F401  (StubClient, describe re-exported)
    SYSTEM_RESOLVER,
    TSIG_ALGORITHMS,
    DnsError,
    Master,
    StubClient,
    absolute_name,
    canonical_rdata,
    describe,
    endpoint_text,
    make_key,
    parse_endpoint,
    plan,
    serial_newer,
    zone_lines,
)

DOCUMENTATION = r"""
module: portal_domain_rrset
short_description: Read DNS record sets from one server and compare them with the wanted ones
description:
  - Read-only companion of M(portal_domain_update); this module proves the TSIG key, verifies published
    records and checks the fallback. Sends plain DNS queries (optionally TSIG-signed), never an UPDATE.
  - With O(zone), reads the zone's SOA and requires the server to answer authoritatively for it
    (the zone's primary master); returns the serial.
  - With O(wanted), reads each wanted record set and returns RV(rrsets) (what the server holds) and
    RV(changes) (the wanted sets that differ). O(on_difference) decides what a difference means -
    nothing, a previewed change with a diff, a warning or a failure.
  - Every failure carries RV(reason) so the caller can word its own message; the TSIG secret never
    appears in any message.
options:
  server:
    description:
      - The server as C(ip), C(ip:port) or C([ipv6]:port). An IP address, not a host name.
      - Empty asks the system resolver (only with O(recursion=true)).
    type: str
    default: ""
  port:
    description: Port used when O(server) names none.
    type: int
    default: 53
  recursion:
    description:
      - C(false) asks the server directly for the exact owner name (authoritative view, TCP); a CNAME at the
        owner is reported as a conflict.
      - C(true) resolves like a stub resolver (CNAME chains followed), for verification through resolvers.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
  attempts:
    description: Tries per query while the server is unreachable (bounded retries), then fail.
    type: int
    default: 1
  retry_delay:
    description: Seconds between those tries.
    type: float
    default: 5
  key_name:
    description: Sign the queries with this TSIG key (proves the key before any update is sent).
    type: str
  key_secret:
    description: Base64 secret of O(key_name).
    type: str
  key_algorithm:
    description: TSIG algorithm of O(key_name).
    type: str
    default: hmac-sha256
    choices: [hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512]
  zone:
    description: Read this zone's SOA and require an authoritative answer for it.
    type: str
  wanted:
    description: Record sets to read and compare.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Owner name (absolute; a trailing dot is optional)., type: str, required: true}
      type: {description: Record type., type: str, default: A}
      ttl: {description: Wanted TTL., type: int, default: 300}
      rdata: {description: Every wanted value of the set., type: list, elements: str, required: true}
  compare_ttl:
    description: Count a different TTL as a difference (off for caching resolvers, whose TTLs count down).
    type: bool
    default: true
  on_difference:
    description:
      - C(ignore) only returns RV(changes).
      - C(preview) reports changed with a before/after diff (check mode and C(--diff)).
      - C(warn) emits a warning naming each difference; C(fail) fails with that message (RV(reason) C(difference)).
    type: str
    default: ignore
    choices: [ignore, preview, warn, fail]
  on_error:
    description: C(warn) turns a failed query (unreachable, refused, no server) into a warning instead of a failure.
    type: str
    default: fail
    choices: [fail, warn]
  hint:
    description: Sentence appended to a warning or failure about a difference (what to do, which setting).
    type: str
    default: ""
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
requirements: [dnspython >= 2.4]
author: [esia-onboard]
"""

EXAMPLES = r"""
- name: Compare the portal records on the primary master with the wanted ones
  portal_domain_rrset:
    server: 192.0.2.53
    zone: miac77.ru
    wanted:
      - {name: zapis.miac77.ru, type: A, ttl: 300, rdata: [203.0.113.10]}
    on_difference: preview
  delegate_to: localhost
  register: plan

- name: Check that the fallback still resolves to the portal (warn otherwise)
  portal_domain_rrset:
    server: ""
    recursion: true
    wanted:
      - {name: 77.2dr.ru, type: A, rdata: [203.0.113.10]}
    compare_ttl: false
    on_difference: warn
  delegate_to: localhost
"""

RETURN = r"""
server: {description: The server asked, as C(ip:port) (C(system resolver) when none was given)., type: str,
  returned: always}
reason:
  description: >-
    C(ok); or why the module failed - C(config) (bad parameters, nothing sent), C(unreachable), C(tsig),
    C(not_authoritative), C(query_failed), C(conflict) (a CNAME where records are wanted), C(difference).
  type: str
  returned: always
soa_serial: {description: The zone's SOA serial (with O(zone))., type: int, returned: when zone is given}
rrsets:
  description: What the server holds for every wanted set, C(rdata) sorted, C(ttl) null when absent.
  type: list
  elements: dict
  returned: always
changes:
  description: The wanted sets that differ, each with C(name), C(type), C(ttl), C(rdata) and C(before).
  type: list
  elements: dict
  returned: always
differences: {description: One sentence per difference., type: list, elements: str, returned: always}
"""

# The shared parsing and the exact reads at a master live in module_utils
# (portal_domain_update and portal_https's ACME dns-01 use the same code).
RrsetError = DnsError
Client = Master


def normalise_wanted(wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    normalised = []
    for entry in wanted:
        name = absolute_name(entry["name"])
        rdtype = str(entry.get("type") or "A").upper()
        try:
            dns.rdatatype.from_text(rdtype)
        except dns.exception.DNSException as err:
            raise RrsetError("config", f"{rdtype!r} is not a record type ({name})") from err
        rdata = canonical_rdata(rdtype, list(entry["rdata"]), name)
        if not rdata:
            raise RrsetError("config", f"no value given for {name} {rdtype}")
        ttl = int(entry.get("ttl") if entry.get("ttl") is not None else 300)
        normalised.append({"name": name, "type": rdtype, "ttl": ttl, "rdata": rdata})
    return normalised


def render_diff(current: list[dict[str, Any]], wanted: list[dict[str, Any]], where: str) -> dict[str, str]:
    """Before/after zone-file lines of every wanted set (absent sets have no line before)."""
    return {
        "before_header": f"{where} (now)",
        "after_header": f"{where} (wanted)",
        "before": zone_lines([c for c in current if c["rdata"]]),
        "after": zone_lines(wanted),
    }


def tsig_key(name: str, secret: str, algorithm: str, where: str) -> Any:
    try:
        return make_key(name, secret, algorithm)
    except DnsError as err:
        raise RrsetError(err.reason, f"{err} (server {where})") from None


def run(params: dict[str, Any]) -> dict[str, Any]:
    wanted = normalise_wanted(params["wanted"] or [])
    zone = absolute_name(params["zone"]) if params.get("zone") else None
    address, port = (None, params["port"])
    if params["server"].strip():
        address, port = parse_endpoint(params["server"], params["port"])
    elif not params["recursion"]:
        raise RrsetError("config", "a server address is needed unless recursion is true (system resolver)")
    key = None
    if params.get("key_name"):
        where = endpoint_text(address, port) if address else SYSTEM_RESOLVER
        if not params.get("key_secret"):
            raise RrsetError("tsig", f"the TSIG key {params['key_name']!r} for {where} has no secret")
        key = tsig_key(params["key_name"], params["key_secret"], params["key_algorithm"], where)
    if params["recursion"]:
        if key is not None:
            raise RrsetError("config", "TSIG signing is only for direct queries (recursion false)")
        client: Any = StubClient(address, port, params["timeout"])
    else:
        client = Client(address, port, params["timeout"], key, params["attempts"], params["retry_delay"])

    result: dict[str, Any] = {"server": client.where, "reason": "ok"}
    if zone:
        result["soa_serial"] = client.soa_serial(zone)
    current = [client.rrset(w["name"], w["type"]) for w in wanted]
    changes = plan(current, wanted, params["compare_ttl"])
    differences = [describe(c, client.where, params["compare_ttl"]) for c in changes]
    result.update(rrsets=current, changes=changes, differences=differences, changed=False)
    if changes and params["on_difference"] == "preview":
        result["changed"] = True
        result["diff"] = render_diff(current, wanted, f"{zone} at {client.where}" if zone else client.where)
    return result


ARGUMENT_SPEC: dict[str, Any] = {
    "server": {"type": "str", "default": ""},
    "port": {"type": "int", "default": 53},
    "recursion": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 5.0},
    "attempts": {"type": "int", "default": 1},
    "retry_delay": {"type": "float", "default": 5.0},
    "key_name": {"type": "str"},
    "key_secret": {"type": "str", "no_log": True},
    "key_algorithm": {
        "type": "str",
        "default": "hmac-sha256",
        "choices": list(TSIG_ALGORITHMS),
    },
    "zone": {"type": "str"},
    "wanted": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "name": {"type": "str", "required": True},
            "type": {"type": "str", "default": "A"},
            "ttl": {"type": "int", "default": 300},
            "rdata": {"type": "list", "elements": "str", "required": True},
        },
    },
    "compare_ttl": {"type": "bool", "default": True},
    "on_difference": {"type": "str", "default": "ignore", "choices": ["ignore", "preview", "warn", "fail"]},
    "on_error": {"type": "str", "default": "fail", "choices": ["fail", "warn"]},
    "hint": {"type": "str", "default": ""},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_ERROR, reason="config")
    try:
        result = run(module.params)
    except RrsetError as err:
        if module.params["on_error"] == "warn" and err.reason in ("unreachable", "query_failed"):
            module.warn(f"{err}. {module.params['hint']}".rstrip(". ") + ".")
            module.exit_json(changed=False, reason=err.reason, msg=str(err), rrsets=[], changes=[], differences=[])
        module.fail_json(msg=str(err), reason=err.reason, rrsets=[], changes=[], differences=[])
    except (OSError, dns.exception.DNSException) as err:
        module.fail_json(msg=f"DNS error: {type(err).__name__}: {err}", reason="query_failed")
    differences = result["differences"]
    if differences and module.params["on_difference"] in ("warn", "fail"):
        message = "; ".join(differences)
        if module.params["hint"]:
            message += ". " + module.params["hint"]
        if module.params["on_difference"] == "fail":
            module.fail_json(msg=message, **{**result, "reason": "difference"})
        module.warn(message)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
