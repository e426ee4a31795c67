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

import base64
import binascii
import os
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule

_DIGEST_BY_LENGTH = {64: "md_gost12_256", 128: "md_gost12_512"}


def decode_base64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def certificate_der(value: str) -> bytes:
    """DER bytes from base64 of DER or PEM text; ValueError otherwise."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
        text = body
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the certificate is neither PEM nor base64 of DER: {exc}") from exc
    if der[:1] != b"\x30":
        raise ValueError("the certificate is not DER (it does not start with a SEQUENCE)")
    return der


class OpenSSL:
    def __init__(self, binary: str, engine: str, workdir: str) -> None:
        self.binary, self.engine, self.workdir = binary, engine, workdir

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.binary, *args], cwd=self.workdir, capture_output=True, text=True, check=False, timeout=60
        )

    def path(self, name: str, data: bytes) -> str:
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as stream:
            stream.write(data)
        return path


def _error_text(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line and not line.startswith("Engine ")]
    return " ".join(lines)[:400] or f"exit code {proc.returncode}"


def verify(openssl: OpenSSL, der: bytes, message: bytes, signature: bytes, mode: str) -> tuple[bool, str, str]:
    """(verified, digest, detail); raises ValueError when verification cannot even be attempted."""
    cert = openssl.path("cert.der", der)
    msg = openssl.path("message", message)
    sig = openssl.path("signature", signature)
    if mode == "v2":
        digest = _DIGEST_BY_LENGTH.get(len(signature))
        if digest is None:
            raise ValueError(f"a raw GOST R 34.10-2012 signature is 64 or 128 bytes, got {len(signature)}")
        pub = openssl.run("x509", "-engine", openssl.engine, "-inform", "DER", "-in", cert, "-pubkey", "-noout")
        if pub.returncode != 0 or "BEGIN PUBLIC KEY" not in pub.stdout:
            raise ValueError(
                f"the controller's OpenSSL cannot read the certificate's public key: {_error_text(pub)} "
                "(a GOST key also needs the GOST engine on the controller: libengine-gost-openssl)"
            )
        key = openssl.path("public.pem", pub.stdout.encode())
        proc = openssl.run("dgst", "-engine", openssl.engine, f"-{digest}", "-verify", key, "-signature", sig, msg)
        return proc.returncode == 0 and "Verified OK" in proc.stdout, digest, _error_text(proc)
    pem = openssl.run("x509", "-engine", openssl.engine, "-inform", "DER", "-in", cert, "-out", "cert.pem")
    if pem.returncode != 0:
        raise ValueError(f"the controller's OpenSSL cannot read the certificate: {_error_text(pem)}")
    proc = openssl.run(
        "cms", "-engine", openssl.engine, "-verify", "-binary", "-inform", "DER", "-in", sig,
        "-content", msg, "-certfile", "cert.pem", "-noverify", "-out", os.devnull,
    )  # fmt: skip
    return proc.returncode == 0, "cms", _error_text(proc)


def check(openssl: OpenSSL, der: bytes, message: str, signature: bytes, mode: str) -> dict:
    result = {"ok": False, "error": "", "verified": False, "tamper_rejected": False, "digest": ""}
    try:
        verified, digest, detail = verify(openssl, der, message.encode("utf-8"), signature, mode)
        result.update(verified=verified, digest=digest)
        if not verified:
            result["error"] = (
                "the signature does not verify against the certificate: the signer uses another key than "
                f"the certificate's, or signs something else ({detail})"
            )
            return result
        tampered, _, _ = verify(openssl, der, (message + "#").encode("utf-8"), signature, mode)
        result["tamper_rejected"] = not tampered
        if tampered:
            result["error"] = "the verifier also accepted a changed message: the check proves nothing"
            return result
    except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
        result["error"] = str(exc)
        return result
    result["ok"] = True
    return result


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
