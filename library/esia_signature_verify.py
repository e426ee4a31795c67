#!/usr/bin/python
"""Ansible module esia_signature_verify: check an ESIA client_secret against the IS certificate."""

# Ansible modules put their imports after DOCUMENTATION / EXAMPLES / RETURN.
# ruff: noqa: E402
from __future__ import annotations

DOCUMENTATION = r"""
module: esia_signature_verify
short_description: Verify an ESIA client_secret against the IS certificate with OpenSSL's GOST engine
description:
  - 'Meant to run on the controller (C(delegate_to: localhost)), independently of the host''s signer.'
  - C(v2) verifies a raw GOST R 34.10-2012 signature over Streebog (256 or 512 by the signature's length) with
    the certificate's public key; C(v1) verifies a detached CMS signature.
  - As a control, also checks that the same signature does NOT verify a changed message, so a verifier that
    accepts anything is caught.
  - Read-only; never reports a change; runs in check mode. Problems come back in RV(error) with RV(ok) false.
author:
  - esia-onboard maintainers
requirements:
  - openssl with the GOST engine on the controller (Debian C(libengine-gost-openssl)).
options:
  certificate:
    description: The IS certificate, base64 of the DER (what M(ansible.builtin.slurp) returns) or PEM text.
    type: str
    required: true
  message:
    description: The signed string.
    type: str
    required: true
  signature:
    description: The signature, base64url (padding optional).
    type: str
    required: true
  mode:
    description: C(v2) raw GOST signature, C(v1) detached CMS (DER).
    type: str
    choices: [v1, v2]
    default: v2
  openssl:
    description: OpenSSL binary.
    type: path
    default: openssl
  engine:
    description: Name of the OpenSSL GOST engine.
    type: str
    default: gost
"""

EXAMPLES = r"""
- name: Verify the signature on the controller
  esia_signature_verify:
    certificate: "{{ der.content }}"
    message: "{{ signed.message }}"
    signature: "{{ signed.client_secret }}"
  delegate_to: localhost
"""

RETURN = r"""
ok:
  description: True when the signature verifies and the control (a changed message) is rejected.
  type: bool
  returned: always
error: {description: What failed., type: str, returned: always}
verified: {description: The signature verifies the message., type: bool, returned: always}
tamper_rejected: {description: The signature does not verify a changed message., type: bool, returned: always}
digest: {description: Digest used for v2 (md_gost12_256 or md_gost12_512)., type: str, returned: always}
"""

import binascii
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard.esia import (  # the one copy, shared with the self-check modules
    OpenSSL,
    certificate_der,
    check,
    decode_base64url,
    verify,
)

__all__ = ["OpenSSL", "certificate_der", "check", "decode_base64url", "verify"]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "certificate": {"type": "str", "required": True},
            "message": {"type": "str", "required": True},
            "signature": {"type": "str", "required": True, "no_log": False},
            "mode": {"type": "str", "choices": ["v1", "v2"], "default": "v2"},
            "openssl": {"type": "path", "default": "openssl"},
            "engine": {"type": "str", "default": "gost"},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        der = certificate_der(p["certificate"])
        signature = decode_base64url(p["signature"])
    except (ValueError, binascii.Error) as exc:
        module.exit_json(changed=False, ok=False, error=str(exc), verified=False, tamper_rejected=False, digest="")
    with tempfile.TemporaryDirectory(prefix="esia-verify-") as workdir:
        openssl = OpenSSL(module.get_bin_path(p["openssl"], required=True), p["engine"], workdir)
        result = check(openssl, der, p["message"], signature, p["mode"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
