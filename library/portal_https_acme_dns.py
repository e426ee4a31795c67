#!/usr/bin/python
"""Ansible module portal_https_acme_dns: put or take away ACME dns-01 TXT values at a zone's primary master."""

from __future__ import annotations

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.esia_onboard.rfc2136 import HAS_DNSPYTHON, DnsError, Master, absolute_name

DOCUMENTATION = r"""
module: portal_https_acme_dns
short_description: Add or remove ACME dns-01 TXT values at the zone's primary master (RFC 2136, TSIG)
description:
  - The dns-01 half of portal_https's ACME source. For every C(_acme-challenge) name in O(records), adds
    (O(state=present)) or removes (O(state=absent)) exactly the given TXT values with one conditional
    RFC 2136 UPDATE per name, TSIG-signed, whose prerequisite is the set as it was read; other values at
    the same name (another client's challenge) are kept.
  - With O(state=present) it then reads every set back from the primary master and fails unless each
    value is there, so the CA is only asked to validate what the master serves.
  - Uses the same client as portal_domain (module_utils/esia_onboard/rfc2136.py); the TSIG secret never
    appears in a message.
options:
  server:
    description: The zone's primary master as C(ip), C(ip:port) or C([ipv6]:port).
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
  key_name:
    description: TSIG key the zone's update policy grants.
    type: str
    required: true
  key_secret:
    description: Base64 secret of O(key_name).
    type: str
    required: true
  key_algorithm:
    description: TSIG algorithm of O(key_name).
    type: str
    default: hmac-sha256
    choices: [hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512]
  zone:
    description: The zone every name is in.
    type: str
    required: true
  records:
    description: Map of owner name (C(_acme-challenge.<name>)) to its TXT values (the unquoted ACME digests).
    type: dict
    required: true
  ttl:
    description: TTL of an added set.
    type: int
    default: 60
  state:
    description: C(present) adds and checks the values; C(absent) removes them.
    type: str
    default: present
    choices: [present, absent]
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
requirements: [dnspython >= 2.4]
author: [esia-onboard]
"""

EXAMPLES = r"""
- name: Add the _acme-challenge TXT records on the primary master
  portal_https_acme_dns:
    server: 192.0.2.53
    zone: miac77.ru
    key_name: miac77-portal-update
    key_secret: "{{ portal_domain_tsig_secret }}"
    records: "{{ order.challenge_data_dns }}"
    state: present
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
names:
  description: The owner names whose set was changed (also on failure, those changed before it).
  type: list
  elements: str
  returned: always
reason:
  description: C(ok), or why it failed (C(tsig), C(refused), C(unreachable), C(not_in_zone), C(missing), ...).
  type: str
  returned: always
"""


def _quoted(values: list[str]) -> list[str]:
    return ['"' + str(v).strip().strip('"') + '"' for v in values]


def converge(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    master = Master.from_settings(
        params["server"],
        params["port"],
        key_name=params["key_name"],
        key_secret=params["key_secret"],
        key_algorithm=params["key_algorithm"],
        timeout=params["timeout"],
    )
    changed_names: list[str] = []
    try:
        for name, values in sorted(params["records"].items()):
            values = values if isinstance(values, list) else [values]
            wanted = _quoted(values)
            if check_mode:
                current = set(master.rrset(name, "TXT")["rdata"])
                differs = not set(wanted) <= current if params["state"] == "present" else bool(current & set(wanted))
                if differs:
                    changed_names.append(absolute_name(name))
                continue
            if params["state"] == "present":
                change = master.add_values(params["zone"], name, "TXT", params["ttl"], wanted)
            else:
                change = master.remove_values(params["zone"], name, "TXT", wanted)
            if change is not None:
                changed_names.append(change["name"])
        if params["state"] == "present" and not check_mode:
            for name, values in sorted(params["records"].items()):
                held = set(master.rrset(name, "TXT")["rdata"])
                missing = [v for v in _quoted(values if isinstance(values, list) else [values]) if v not in held]
                if missing:
                    raise DnsError(
                        "missing", f"{master.where} does not serve {' '.join(missing)} at {name} TXT after the update"
                    )
    except DnsError as err:
        err.names = changed_names  # what was already sent, so the caller can take it back
        raise
    return {"changed": bool(changed_names), "names": changed_names, "reason": "ok"}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "server": {"type": "str", "required": True},
            "port": {"type": "int", "default": 53},
            "timeout": {"type": "float", "default": 5},
            "key_name": {"type": "str", "required": True},
            "key_secret": {"type": "str", "required": True, "no_log": True},
            "key_algorithm": {
                "type": "str",
                "default": "hmac-sha256",
                "choices": ["hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"],
            },
            "zone": {"type": "str", "required": True},
            "records": {"type": "dict", "required": True},
            "ttl": {"type": "int", "default": 60},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        },
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), reason="config", names=[])
    try:
        result = converge(module.params, module.check_mode)
    except DnsError as err:
        module.fail_json(msg=str(err), reason=err.reason, names=getattr(err, "names", []))
    except Exception as err:  # dnspython or OS errors without a reason of their own
        module.fail_json(
            msg=f"DNS error: {type(err).__name__}: {err}",
            reason="update_failed",
            names=[],
            exception=traceback.format_exc(),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
