#!/usr/bin/python
"""Ansible module esia_client_host: what the esia_client role needs from the portal host, in one call."""

# Ansible modules put their imports after DOCUMENTATION / EXAMPLES / RETURN.
# ruff: noqa: E402
from __future__ import annotations

DOCUMENTATION = r"""
module: esia_client_host
short_description: Read the cryptopro role's results, make the ESIA client's directories and run the signing self-check
description:
  - Reads the cryptopro role's local fact (I(fact_file)) and requires C(certificate_der), C(signer) and a 64-digit
    C(streebog256); fails naming the fact and what it holds when they are missing. In check mode, before the
    cryptopro role has really run, it warns instead and returns an empty RV(crypto).
  - Returns the DER certificate the fact names (base64, for the controller to check and describe), whether the
    deprecated hand-placed ESIA certificate I(legacy_esia_certificate) is on the host, and
    C(chronyc -n tracking).
  - Makes I(directories) (owner, group and mode; check and diff mode).
  - With I(self_check), the signing self-check - signs a fresh client_secret message of I(api_version) with the
    fact's signer as I(run_as) and verifies it against the certificate with OpenSSL's GOST engine (a changed
    message must be rejected). When I(previous) is the self-check of M(cryptopro_key) in the same run, for the
    same signer, account and certificate, and it covered I(api_version), that result is reported instead of
    signing a second time.
  - The signature itself is never returned; a failed step is reported in RV(signed) and RV(verified), not raised.
author:
  - esia-onboard maintainers
requirements:
  - the cryptopro role's results on the host (local fact esia_cryptopro, the DER certificate, C(esia-sign))
  - openssl with the GOST engine on the host (Debian C(libengine-gost-openssl), installed by the cryptopro role)
options:
  fact_file:
    description: The cryptopro role's local fact.
    type: path
    default: /etc/ansible/facts.d/esia_cryptopro.fact
  host_name:
    description: The inventory name of the host, for messages.
    type: str
    default: this host
  legacy_esia_certificate:
    description: Path of an ESIA certificate put on the host by hand (deprecated single form); empty for none.
    type: path
    default: ""
  directories:
    description: Directories to make once the fact is there, each C({path, owner, group, mode}).
    type: list
    elements: dict
    default: []
  self_check:
    description: Sign and verify a fresh client_secret (or report I(previous)).
    type: bool
    default: true
  previous:
    description: The C(self_check) result of M(cryptopro_key) in this run (empty when there is none).
    type: dict
    default: {}
  client_id:
    description: The IS mnemonic.
    type: str
    default: ""
  scope:
    description: The scope string.
    type: str
    default: ""
  scope_org:
    description: The organisation scopes (v2).
    type: str
    default: ""
  redirect_uri:
    description: The redirect URI (v2).
    type: str
    default: ""
  api_version:
    description: ESIA API version the portal uses.
    type: str
    choices: [v1, v2]
    default: v2
  run_as:
    description: The account the portal signs as.
    type: str
    required: true
  clock:
    description: Also read C(chronyc -n tracking).
    type: bool
    default: true
  timeout:
    description: Seconds the signer may take.
    type: int
    default: 30
"""

EXAMPLES = r"""
- name: Read the cryptopro role's results and self-check the signer
  esia_client_host:
    host_name: "{{ inventory_hostname }}"
    client_id: MIAC77PORTAL
    scope: openid fullname
    redirect_uri: https://zapis.miac77.ru/esia/callback
    run_as: esia-portal
    directories:
      - {path: /etc/esia-portal, owner: root, group: esia-portal, mode: "0750"}
  register: host
"""

RETURN = r"""
crypto:
  description: The cryptopro role's local fact (empty in check mode before it exists).
  type: dict
  returned: always
certificate: {description: Base64 of the DER certificate the fact names., type: str, returned: always}
certificate_sha1: {description: SHA-1 of that DER (upper hex)., type: str, returned: always}
legacy_esia_certificate:
  description: C(exists) and C(content) (base64) of the hand-placed ESIA certificate.
  type: dict
  returned: always
signed:
  description:
    - C(ok), C(error), C(message), C(state), C(timestamp), C(signature_bytes), C(signer), C(reused) (true when
      the cryptopro role's self-check of this run is reported). Empty without I(self_check).
  type: dict
  returned: always
verified:
  description: C(ok), C(error), C(verified), C(tamper_rejected), C(digest). Empty without I(self_check).
  type: dict
  returned: always
tracking: {description: C(rc), C(stdout), C(stderr) of C(chronyc -n tracking)., type: dict, returned: always}
"""

import base64
import hashlib
import json
import os
import subprocess
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard import esia, files

REQUIRED = ("certificate_der", "signer", "streebog256")


def read_fact(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def complete(fact: dict) -> bool:
    return (
        bool(fact)
        and bool(fact.get("certificate_der"))
        and bool(fact.get("signer"))
        and len(str(fact.get("streebog256") or "")) == 64
    )


def reusable(previous: dict, signer: str, run_as: str, sha1: str, mode: str) -> bool:
    return (
        bool(previous.get("ok"))
        and previous.get("signer") == signer
        and previous.get("run_as") == run_as
        and previous.get("certificate_sha1") == sha1
        and mode in (previous.get("modes") or {})
    )


def self_check(p: dict, signer: str, der: bytes, sha1: str) -> tuple[dict, dict]:
    mode = p["api_version"]
    previous = p["previous"] or {}
    if reusable(previous, signer, p["run_as"], sha1, mode):
        entry = previous["modes"][mode]
        signed = {"ok": True, "error": "", "message": entry.get("message", ""), "state": previous.get("state", ""),
                  "timestamp": previous.get("timestamp", ""), "signature_bytes": entry.get("signature_bytes", 0),
                  "signer": signer, "reused": True}  # fmt: skip
        verified = {k: entry.get(k) for k in ("ok", "error", "verified", "tamper_rejected", "digest")}
        return signed, verified
    state, timestamp = str(uuid.uuid4()), esia.esia_timestamp()
    signed = {"ok": False, "error": "", "message": "", "state": state, "timestamp": timestamp,
              "signature_bytes": 0, "signer": signer, "reused": False}  # fmt: skip
    try:
        message = esia.build_message(
            mode, p["client_id"], p["scope"], timestamp, state, p["redirect_uri"], scope_org=p["scope_org"]
        )
    except ValueError as exc:
        signed["error"] = str(exc)
        return signed, {"ok": False, "error": "not attempted: signing failed"}
    signed["message"] = message
    checked = esia.signer_self_check(signer, p["run_as"], der, {mode: message}, timeout=p["timeout"])
    entry = checked["modes"][mode]
    signed.update(
        ok=entry["signed"], signature_bytes=entry["signature_bytes"], error="" if entry["signed"] else entry["error"]
    )
    if not entry["signed"]:
        return signed, {"ok": False, "error": "not attempted: signing failed"}
    verified = {k: entry[k] for k in ("ok", "error", "verified", "tamper_rejected", "digest")}
    return signed, verified


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "fact_file": {"type": "path", "default": "/etc/ansible/facts.d/esia_cryptopro.fact"},
            "host_name": {"type": "str", "default": "this host"},
            "legacy_esia_certificate": {"type": "path", "default": ""},
            "directories": {"type": "list", "elements": "dict", "default": []},
            "self_check": {"type": "bool", "default": True},
            "previous": {"type": "dict", "default": {}},
            "client_id": {"type": "str", "default": ""},
            "scope": {"type": "str", "default": ""},
            "scope_org": {"type": "str", "default": ""},
            "redirect_uri": {"type": "str", "default": ""},
            "api_version": {"type": "str", "choices": ["v1", "v2"], "default": "v2"},
            "run_as": {"type": "str", "required": True},
            "clock": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    p = module.params
    result = {"changed": False, "crypto": {}, "certificate": "", "certificate_sha1": "",
              "legacy_esia_certificate": {"exists": False, "content": ""}, "signed": {}, "verified": {},
              "tracking": {}}  # fmt: skip
    fact = read_fact(p["fact_file"])
    if not complete(fact):
        if module.check_mode and not fact:
            module.warn(
                f"{p['fact_file']} is missing: in check mode before the cryptopro role has really run, the ESIA "
                "client configuration, self-check and application package are skipped."
            )
            module.exit_json(**result)
        module.fail_json(
            msg=f"esia_client step 'cryptopro': {p['fact_file']} on {p['host_name']} is missing or incomplete "
            f"(needs {', '.join(REQUIRED)}; found {sorted(fact)}). Run playbooks/cryptopro.yml first.",
            **result,
        )
    result["crypto"] = fact
    try:
        with open(fact["certificate_der"], "rb") as handle:
            der = handle.read()
    except OSError as exc:
        module.fail_json(
            msg=f"ESIA self-check step 'certificate' failed for {fact['certificate_der']}: cannot read it "
            f"({exc.strerror}); re-run playbooks/cryptopro.yml",
            **result,
        )
    sha1 = hashlib.sha1(der).hexdigest().upper()
    result.update(certificate=base64.b64encode(der).decode("ascii"), certificate_sha1=sha1)
    legacy = p["legacy_esia_certificate"]
    if legacy and os.path.isfile(legacy):
        with open(legacy, "rb") as handle:
            result["legacy_esia_certificate"] = {"exists": True, "content": base64.b64encode(handle.read()).decode()}
    actions: list[str] = []
    try:
        actions.extend(files.ensure_directories(p["directories"], module.check_mode))
    except (LookupError, ValueError, OSError) as exc:
        module.fail_json(msg=f"esia_client_host: {exc}", **result)
    if p["clock"]:
        try:
            proc = subprocess.run(
                ["chronyc", "-n", "tracking"], capture_output=True, text=True, check=False, timeout=30
            )
            result["tracking"] = {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
        except (OSError, subprocess.TimeoutExpired) as exc:
            result["tracking"] = {"rc": 127, "stdout": "", "stderr": str(exc)}
    if p["self_check"]:
        result["signed"], result["verified"] = self_check(p, fact["signer"], der, sha1)
    result["changed"] = bool(actions)
    result["diff"] = {"before": "", "after": "".join(f"{a}\n" for a in actions)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
