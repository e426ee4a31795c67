#!/usr/bin/python
"""Ansible module esia_client_secret: build and sign an ESIA client_secret on the portal host."""

# Ansible modules put their imports after DOCUMENTATION / EXAMPLES / RETURN.
# ruff: noqa: E402
from __future__ import annotations

DOCUMENTATION = r"""
module: esia_client_secret
short_description: Build an ESIA client_secret message and sign it with the host's signer
description:
  - Builds the string ESIA's authorisation endpoint signs for the configured API version, with a fresh
    C(state) (UUID 4) and C(timestamp) (host clock, C(yyyy.MM.dd HH:mm:ss Z)) unless they are given.
  - Pipes it to the signer (C(esia-sign --mode v2|v1), left on the host by the cryptopro role) and checks
    that what comes back is base64url of a plausible signature.
  - Read-only; never reports a change; runs in check mode. Problems are returned in RV(error) with RV(ok)
    false (the caller reports every self-check step before failing), not raised.
  - The result carries a signed client_secret, so register it in a task with C(no_log=true).
author:
  - esia-onboard maintainers
requirements:
  - the signer left on the host by the cryptopro role (C(/usr/local/bin/esia-sign))
options:
  client_id:
    description: The IS mnemonic.
    type: str
    required: true
  scope:
    description: The space-separated scope string, exactly as sent to ESIA.
    type: str
    required: true
  scope_org:
    description:
      - The space-separated organisation scopes, sent to ESIA as C(scope_org) (v2 only).
      - Signed right after C(scope), as ilimurzin/esia 4.x (src/Esia/Esia.php) does
        (client_id + scope + scope_org + timestamp + state + redirect_uri [+ code]).
    type: str
    default: ""
  redirect_uri:
    description: The redirect URI sent with the request (part of the v2 message only).
    type: str
    default: ""
  api_version:
    description: C(v2) signs client_id+scope+scope_org+timestamp+state+redirect_uri raw (GOST R 34.10-2012); C(v1) signs
      scope+timestamp+client_id+state as detached CMS.
    type: str
    choices: [v1, v2]
    default: v2
  code:
    description: Authorisation code; appended to the v2 message to build the v3/te client_secret.
    type: str
  signer:
    description: Signer command on the host.
    type: path
    default: /usr/local/bin/esia-sign
  run_as:
    description: Run the signer as this account (the portal's service account), as the portal will. Needs root.
    type: str
  state:
    description: Use this state instead of a fresh UUID.
    type: str
  timestamp:
    description: Use this timestamp instead of the host clock.
    type: str
  timeout:
    description: Seconds the signer may take.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Sign a fresh client_secret as the service account
  esia_client_secret:
    client_id: MIAC77PORTAL
    scope: openid fullname
    redirect_uri: https://zapis.miac77.ru/esia/callback
    run_as: esia-portal
  register: signed
  no_log: true

- name: Sign a request that also asks for organisation scopes (sent as scope_org)
  esia_client_secret:
    client_id: MIAC77PORTAL
    scope: openid fullname usr_org
    scope_org: org_shortname org_ogrn
    redirect_uri: https://zapis.miac77.ru/esia/callback
  register: signed_org
  no_log: true
"""

RETURN = r"""
ok: {description: True when a signature came back and looks right., type: bool, returned: always}
error: {description: What went wrong, naming the signer and its message., type: str, returned: always}
message: {description: The signed string., type: str, returned: always}
scope_org: {description: The organisation scopes signed (sent as scope_org; may be empty)., type: str, returned: always}
state: {description: The state used., type: str, returned: always}
timestamp: {description: The timestamp used., type: str, returned: always}
client_secret: {description: The signature, base64url without padding., type: str, returned: always}
signature_bytes: {description: Length of the decoded signature., type: int, returned: always}
"""

import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard.esia import (  # the one copy, shared with the self-check modules
    TIMESTAMP_FORMAT,
    build_message,
    check_signature,
    decode_base64url,
    esia_timestamp,
    sign,
)

__all__ = ["TIMESTAMP_FORMAT", "build_message", "check_signature", "decode_base64url", "esia_timestamp", "sign"]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "client_id": {"type": "str", "required": True},
            "scope": {"type": "str", "required": True},
            "scope_org": {"type": "str", "default": ""},
            "redirect_uri": {"type": "str", "default": ""},
            "api_version": {"type": "str", "choices": ["v1", "v2"], "default": "v2"},
            "code": {"type": "str"},
            "signer": {"type": "path", "default": "/usr/local/bin/esia-sign"},
            "run_as": {"type": "str"},
            "state": {"type": "str"},
            "timestamp": {"type": "str"},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    p = module.params
    state = p["state"] or str(uuid.uuid4())
    timestamp = p["timestamp"] or esia_timestamp()
    try:
        message = build_message(
            p["api_version"], p["client_id"], p["scope"], timestamp, state, p["redirect_uri"], p["code"], p["scope_org"]
        )
    except ValueError as exc:
        module.fail_json(msg=f"esia_client_secret: {exc}")
    result = {
        "changed": False,
        "ok": False,
        "error": "",
        "message": message,
        "scope_org": p["scope_org"],
        "state": state,
        "timestamp": timestamp,
        "client_secret": "",
        "signature_bytes": 0,
    }
    try:
        output = sign(p["signer"], message, p["api_version"], p["run_as"], p["timeout"])
        text, raw = check_signature(output, p["api_version"])
    except ValueError as exc:
        result["error"] = str(exc)
        module.exit_json(**result)
    result.update(ok=True, client_secret=text, signature_bytes=len(raw))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
