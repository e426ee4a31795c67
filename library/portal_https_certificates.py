#!/usr/bin/python
"""On the controller: take each certificate from its source, check it, decide OCSP stapling, in one call."""

from __future__ import annotations

import datetime
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard import tls

DOCUMENTATION = r"""
---
module: portal_https_certificates
short_description: Take every portal certificate from its source and check it before nginx is touched
description:
  - Runs on the controller (delegate_to localhost) after M(portal_https_tls) read the host with C(state=prepared).
  - "For each certificate: C(ownca) makes the lab CA on the controller when it is missing (also in check mode:
    lab-only controller state) and signs the host's request, keeping the certificate served now while it
    matches the request and the CA and is not due for renewal; C(provided) reads the certificate and chain
    files on the controller and saves the host's request there for the CA (when the key is made on the
    host); a missing certificate with a host key is returned in C(pending) (the play waits for the CA), a
    missing file otherwise fails naming the setting; C(selfsigned) takes the certificate the host made;
    C(acme) takes the certificate ordered in this run or the one served now (the ACME plan said it stays)."
  - Then every candidate is checked (key matches, names covered, chain order, validity; module_utils
    esia_onboard/tls.py) and OCSP stapling is decided against the host's trust store. Any failed check fails
    the task with every problem, before anything on the host is touched.
version_added: "1.0.0"
author:
  - esia-onboard maintainers
requirements:
  - cryptography (on the controller)
options:
  sites:
    description: The role's certificates (id, file, names, source, key_given, key_variable, certificate_file,
      chain_file).
    type: list
    elements: dict
    required: true
  host:
    description: What M(portal_https_tls) C(state=prepared) returned (its C(sites) and C(trust_store)).
    type: dict
    required: true
  private_keys:
    description: The vault keys by certificate id (for the sites with key_given).
    type: dict
    default: {}
  acme_issued:
    description: Certificates ordered from the ACME CA in this run, by id (C(cert), C(chain)).
    type: dict
    default: {}
  acme_plans:
    description: The ACME plans by id (C(due), C(leaf_pem), C(chain_pem)), for the acme sites.
    type: dict
    default: {}
  ownca_dir:
    description: The lab CA directory on the controller (portal_https_ownca_dir).
    type: path
    required: true
  artifacts_dir:
    description: This host's HTTPS artifacts directory on the controller (requests for the CA).
    type: path
    required: true
  tls_dir:
    description: The role's certificate directory on the host (portal_https_tls_dir), for messages and paths.
    type: str
    required: true
  inventory_hostname:
    description: The host, for messages.
    type: str
    required: true
  lab_days:
    description: Lifetime of a lab CA certificate (portal_https_lab_certificate_days).
    type: int
    default: 90
  warning_days:
    description: Warn (and renew ownca) within this many days (portal_https_expiry_warning_days).
    type: int
    default: 30
  ocsp_stapling:
    description: portal_https_ocsp_stapling.
    type: bool
    default: true
  extra_trusted:
    description: PEM of roots added to the host's trust store by this run (the pinned Russian Trusted Root CA).
    type: str
    default: ""
  trusted_label:
    description: The trust store's path, for messages (portal_https_trusted_certificate).
    type: str
    default: the trust store
notes:
  - Supports check mode and diff mode; in check mode only the lab CA (controller-only state) is made.
"""

EXAMPLES = r"""
- name: Take and check the certificates (controller)
  portal_https_certificates:
    sites: "{{ __portal_https_sites }}"
    host: "{{ __portal_https_host }}"
    private_keys: {main: "{{ portal_https_private_key }}"}
    ownca_dir: /srv/esia-onboard/.lab/ca
    artifacts_dir: /srv/esia-onboard/artifacts/99/https/lab-portal
    tls_dir: /etc/ssl/esia-portal
    inventory_hostname: lab-portal
  delegate_to: localhost
  register: checked
"""

RETURN = r"""
checked:
  description: By id, each checked certificate (id, names, file, key_given, leaf_pem, chain_pem, stapling,
    stapling_reason, summary for ansible_local.portal_https).
  returned: success
  type: dict
pending:
  description: What the operator must do for each certificate the CA has not issued yet.
  returned: success
  type: list
  elements: str
messages:
  description: What the run should say (expiry warnings, why OCSP stapling stays off, what check mode cannot preview).
  returned: success
  type: list
  elements: str
"""

try:
    from ansible.module_utils.esia_onboard.lab_ca import ensure_lab_ca, write_file
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
except ImportError:  # pragma: no cover - reported by the module
    x509 = None


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _san(item) -> list[str]:
    try:
        return item.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        return []


def ownca_keeps(served_pem: str, csr, issuing, warning_days: int) -> bool:
    """The certificate served now stays while it is the request's key and names, the lab CA's, and not due."""
    blocks = tls.certs.pem_blocks(served_pem.encode()) if served_pem else []
    if not blocks:
        return False
    try:
        leaf = x509.load_pem_x509_certificate(blocks[0])
        leaf.verify_directly_issued_by(issuing)
    except Exception:  # any reason not to keep it is a reason to issue anew
        return False
    now = datetime.datetime.now(datetime.UTC)
    return (
        _spki(leaf.public_key()) == _spki(csr.public_key())
        and leaf.subject == csr.subject
        and _san(leaf) == _san(csr)
        and leaf.not_valid_after_utc - now >= datetime.timedelta(days=warning_days)
    )


def ownca_sign(csr, issuing, issuing_key, days: int) -> str:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuing.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()), critical=False)
    )
    for extension in csr.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return _pem(builder.sign(issuing_key, hashes.SHA256()))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "sites": {"type": "list", "elements": "dict", "required": True},
            "host": {"type": "dict", "required": True},
            "private_keys": {"type": "dict", "default": {}, "no_log": True},
            "acme_issued": {"type": "dict", "default": {}},
            "acme_plans": {"type": "dict", "default": {}},
            "ownca_dir": {"type": "path", "required": True},
            "artifacts_dir": {"type": "path", "required": True},
            "tls_dir": {"type": "str", "required": True},
            "inventory_hostname": {"type": "str", "required": True},
            "lab_days": {"type": "int", "default": 90},
            "warning_days": {"type": "int", "default": 30},
            "ocsp_stapling": {"type": "bool", "default": True},
            "extra_trusted": {"type": "str", "default": ""},
            "trusted_label": {"type": "str", "default": "the trust store"},
        },
        supports_check_mode=True,
    )
    if x509 is None:
        module.fail_json(msg="portal_https_certificates needs the Python package cryptography on the controller")
    p = module.params
    host_sites = p["host"].get("sites", {})
    trusted = p["host"].get("trust_store", "") + p["extra_trusted"]
    changed, diffs = False, []
    checked, pending, messages, errors = {}, [], [], []
    issuing = issuing_key = issuing_pem = None
    tls_dir = p["tls_dir"]
    live_dir = f"{tls_dir}/live"

    for site in p["sites"]:
        state = host_sites.get(site["id"], {})
        names, file, source = list(site["names"]), site["file"], site["source"]
        key_path = f"{tls_dir}/private/{file}.key"
        csr_pem = state.get("csr_pem", "")
        generates_key = not site.get("key_given")
        if generates_key and not state.get("key_ready", True):
            messages.append(
                f"Check mode: the key {key_path} is not made yet, so the {site['id']} certificate cannot be issued"
                " or checked in this run."
            )
        chain_path = site.get("chain_file") or re.sub(r"\.(crt|pem|cer)$", "", site["certificate_file"]) + ".chain.pem"
        certificate_text, chain_text = "", ""
        label = site["certificate_file"]
        if source == "ownca":
            if issuing is None:
                made, cert_path, key_file = ensure_lab_ca(p["ownca_dir"])
                changed |= made
                issuing_pem = _read(cert_path)
                issuing = x509.load_pem_x509_certificate(issuing_pem.encode())
                issuing_key = serialization.load_pem_private_key(open(key_file, "rb").read(), None)  # noqa: SIM115
            chain_path = f"{p['ownca_dir']}/issuing-ca.crt"
            label = f"the lab CA certificate for {names[0]}"
            if csr_pem:
                csr = x509.load_pem_x509_csr(csr_pem.encode())
                served = state.get("served_pem", "")
                if ownca_keeps(served, csr, issuing, p["warning_days"]):
                    certificate_text = tls.certs.pem_blocks(served.encode())[0].decode()
                else:
                    certificate_text = ownca_sign(csr, issuing, issuing_key, p["lab_days"])
                chain_text = issuing_pem
        elif source == "selfsigned":
            label = f"{tls_dir}/{file}.selfsigned.pem"
            certificate_text = state.get("selfsigned_pem", "")
        elif source == "acme":
            issued = p["acme_issued"].get(site["id"])
            plan = p["acme_plans"].get(site["id"], {})
            if issued:
                certificate_text, chain_text = issued.get("cert", ""), issued.get("chain", "")
            elif plan and not plan.get("due", True):
                certificate_text, chain_text = plan.get("leaf_pem", ""), plan.get("chain_pem", "")
        elif source == "provided":
            if generates_key and csr_pem:
                artifact = f"{p['artifacts_dir']}/{file}.csr"
                before = _read(artifact)
                if before != csr_pem:
                    changed = True
                    diffs.append(
                        {"before_header": artifact, "after_header": artifact, "before": before or "", "after": csr_pem}
                    )
                    if not module.check_mode:
                        os.makedirs(p["artifacts_dir"], mode=0o755, exist_ok=True)
                        write_file(artifact, csr_pem.encode(), 0o644)
            certificate = _read(site["certificate_file"])
            chain = _read(chain_path)
            setting = (
                "portal_https_fallback_certificate_file"
                if site["id"] == "fallback"
                else "portal_https_certificate_file"
            )
            if certificate is None and not generates_key:
                module.fail_json(
                    msg=f"{site['certificate_file']}: no such file on the controller; it should hold the {site['id']}"
                    f" certificate for {', '.join(names)} (PEM). Set {setting} to the file the CA issued, or leave"
                    f" {site['key_variable']} empty so that the role makes a key and a request for the CA."
                )
            if certificate is not None and site.get("chain_file") and chain is None:
                module.fail_json(
                    msg=f"{chain_path}: no such file on the controller; it should hold the intermediate certificates"
                    f" for {', '.join(names)} (PEM, issuer of the certificate first, no root)."
                )
            if certificate is None:
                if not module.check_mode or state.get("key_ready", True):
                    pending.append(
                        f"{site['id']} certificate for {', '.join(names)}: the key is on {p['inventory_hostname']}"
                        f" ({key_path}); send the request"
                        f" {p['artifacts_dir']}/{file}.csr to the CA, put the certificate"
                        f" it issues at {site['certificate_file']} (PEM) and its intermediate certificates at"
                        f" {chain_path}, then run playbooks/https.yml again (docs/runbooks/06-https.md)."
                    )
            else:
                certificate_text, chain_text = certificate, chain or ""
        if not certificate_text:
            continue

        private_key = p["private_keys"].get(site["id"]) if site.get("key_given") else None
        result = tls.portal_https_certificate_check(
            certificate_text,
            names=names,
            chain=chain_text,
            private_key=private_key or None,
            public_key=state.get("public_key_pem") or None,
            warning_days=p["warning_days"],
            certificate_label=label,
            chain_label=chain_path,
            key_label=site["key_variable"] if site.get("key_given") else key_path,
        )
        if result["errors"]:
            errors.append(
                f"The {site['id']} certificate for {', '.join(names)} cannot be used; nothing was installed and nginx"
                f" was not touched. {' | '.join(result['errors'])}"
            )
            continue
        messages.extend(f"WARNING: {warning}" for warning in result["warnings"])
        stapling = tls.portal_https_stapling(
            result["leaf_pem"],
            chain_pem=result["chain_pem"],
            ocsp_uri=result["ocsp_uri"],
            trusted=trusted,
            enabled=p["ocsp_stapling"],
            trusted_label=p["trusted_label"],
        )
        if not stapling["on"]:
            messages.append(f"OCSP stapling stays off for {', '.join(names)}: {stapling['reason']}")
        checked[site["id"]] = {
            "id": site["id"],
            "names": names,
            "file": file,
            "key_given": bool(site.get("key_given")),
            "leaf_pem": result["leaf_pem"],
            "chain_pem": result["chain_pem"],
            "stapling": stapling["on"],
            "stapling_reason": stapling["reason"],
            "summary": {
                "source": source,
                "names": names,
                "certificate": f"{tls_dir}/{file}.fullchain.pem",
                "private_key": f"{live_dir}/{file}/privkey.pem",
                "subject": result["subject"],
                "issuer": result["issuer"],
                "not_before": result["not_before"],
                "not_after": result["not_after"],
                "dns_names": result["dns_names"],
                "sha256_fingerprint": result["sha256_fingerprint"],
                "chain_length": result["chain_length"],
                "ocsp_stapling": stapling["on"],
                "ocsp_stapling_reason": stapling["reason"],
            },
        }
    if errors:
        module.fail_json(msg=" ".join(errors))
    module.exit_json(changed=changed, checked=checked, pending=pending, messages=messages, diff=diffs)


if __name__ == "__main__":
    main()
