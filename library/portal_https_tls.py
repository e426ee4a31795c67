#!/usr/bin/python
"""The TLS state of a portal host for every served name, read and converged in one call."""

from __future__ import annotations

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard import tls_host

DOCUMENTATION = r"""
---
module: portal_https_tls
short_description: Read and converge the TLS state of a portal host for every served name in one call
description:
  - "C(state=prepared): for each certificate of the role (the MIAC name and the fallback) make the private key
    and the certificate signing request on the host when they are missing or no longer what the settings ask
    for (a key behind a C(provided) certificate is never replaced), make or renew the C(selfsigned)
    certificate, and read what is installed: the request, the key's public half, the served certificate
    (C(live/<name>/fullchain.pem)), the role's local fact, the trust store nginx verifies OCSP answers with
    and the host's name servers. Nothing is made for a certificate whose key comes from the vault."
  - "C(state=installed): put each checked certificate and its key into a new pair directory
    (C(pairs/<name>.<16 hex of the certificate's SHA-256>)), written in full first, then switch
    C(live/<name>) to it with one rename, point C(<name>.fullchain.pem) at the served pair and remove the
    pairs older than the previous one. A run interrupted at any point leaves C(live/<name>) on a complete,
    matching pair."
  - Rules and parsing come from module_utils/esia_onboard/tls_host.py.
version_added: "1.0.0"
author:
  - esia-onboard maintainers
requirements:
  - python3-cryptography on the host, only to make keys, requests and self-signed certificates
options:
  state:
    description: C(prepared) reads and makes keys and requests; C(installed) installs the checked pairs.
    type: str
    choices: [prepared, installed]
    required: true
  tls_dir:
    description: The role's certificate directory (portal_https_tls_dir).
    type: path
    required: true
  sites:
    description:
      - "C(prepared): one entry per certificate: C(id), C(file) (the name the files are called by), C(names),
        C(source), C(key_type) (C(rsa) or C(ecdsa)) and C(key_given) (the key comes from the vault)."
      - "C(installed): one entry per checked certificate: C(id), C(file), C(leaf_pem), C(chain_pem),
        C(key_given); the key is the host's C(private/<file>.key) unless C(key_given)."
    type: list
    elements: dict
    required: true
  private_keys:
    description: C(installed) only; the vault keys by certificate C(id), for the entries with C(key_given).
    type: dict
    default: {}
  key_size:
    description: RSA key size (portal_https_key_size).
    type: int
    default: 2048
  key_curve:
    description: ECDSA curve (portal_https_key_curve).
    type: str
    default: secp256r1
  subject:
    description: Subject of the requests (portal_https_csr_subject); the commonName is the first name.
    type: dict
    default: {}
  selfsigned_days:
    description: Lifetime of a self-signed certificate (portal_https_lab_certificate_days).
    type: int
    default: 90
  renew_days:
    description: A self-signed certificate with fewer days left is made again (portal_https_expiry_warning_days).
    type: int
    default: 30
  trust_store:
    description: C(prepared); the trust store file to read (empty to skip).
    type: str
    default: ""
  fact_file:
    description: C(prepared); the role's local fact file to read.
    type: str
    default: /etc/ansible/facts.d/portal_https.fact
notes:
  - Supports check mode and diff mode. In check mode on a fresh host a key that does not exist yet is not made,
    and the result says the certificate cannot be previewed (C(key_ready=false)).
"""

EXAMPLES = r"""
- name: Make the keys and requests and read the TLS state of the host
  portal_https_tls:
    state: prepared
    tls_dir: /etc/ssl/esia-portal
    sites:
      - {id: main, file: zapis.miac99.test, names: [zapis.miac99.test], source: ownca, key_type: ecdsa,
         key_given: false}
    subject: {countryName: RU, organizationName: ГБУЗ МИАЦ}
    trust_store: /etc/ssl/certs/ca-certificates.crt
  register: tls_state

- name: Install the checked certificates (new pair, then one rename)
  portal_https_tls:
    state: installed
    tls_dir: /etc/ssl/esia-portal
    sites: "{{ checked_certificates }}"
    private_keys: "{{ {'main': vault_key} }}"
  no_log: false
"""

RETURN = r"""
sites:
  description: C(prepared); by certificate id, what the host has.
  returned: state=prepared
  type: dict
  contains:
    key_ready:
      description: The key exists (or comes from the vault); false only in check mode on a fresh host.
      type: bool
    key_path:
      description: The host's key file.
      type: str
    csr_pem:
      description: The request (empty with a vault key, or when the key is not ready).
      type: str
    csr_made:
      description: The request is (or in check mode would be) made in this run.
      type: bool
    public_key_pem:
      description: The public half of the host's key.
      type: str
    served_pem:
      description: The certificate chain nginx serves now (empty on a fresh host).
      type: str
    selfsigned_pem:
      description: C(selfsigned); the self-signed certificate.
      type: str
trust_store:
  description: C(prepared); the text of the trust store.
  returned: state=prepared
  type: str
fact:
  description: C(prepared); the text of the role's local fact ("" when absent).
  returned: state=prepared
  type: str
resolvers:
  description: C(prepared); the host's name servers (resolv.conf), IPv6 in brackets.
  returned: state=prepared
  type: list
  elements: str
nginx_present:
  description: /usr/sbin/nginx exists.
  returned: always
  type: bool
pairs:
  description: C(installed); by certificate id, the pair directory served.
  returned: state=installed
  type: dict
"""


def _prepare(module: AnsibleModule) -> dict:
    p = module.params
    tls_dir = p["tls_dir"]
    changed = False
    diffs = []
    sites = {}
    generated = [s for s in p["sites"] if not s.get("key_given")]
    if generated and not module.check_mode:
        for path, mode in ((tls_dir, 0o755), (f"{tls_dir}/private", 0o700)):
            changed |= tls_host.ensure_directory(path, mode)
    for site in p["sites"]:
        file, names = site["file"], list(site["names"])
        key_path = f"{tls_dir}/private/{file}.key"
        csr_path = f"{tls_dir}/{file}.csr"
        entry = {
            "key_ready": True,
            "key_path": key_path,
            "csr_pem": "",
            "csr_made": False,
            "public_key_pem": "",
            "served_pem": tls_host.read_text(f"{tls_dir}/live/{file}/fullchain.pem"),
            "selfsigned_pem": "",
        }
        sites[site["id"]] = entry
        if site.get("key_given"):
            continue
        key_text = tls_host.read_text(key_path)
        if not key_text and module.check_mode:
            entry["key_ready"] = False
            changed = True
            diffs.append({"before_header": key_path, "after_header": key_path, "before": "", "after": "(a new key)\n"})
            continue
        key = tls_host.load_key(key_text) if key_text else None
        fits = key is not None and (
            site["source"] == "provided" or tls_host.key_fits(key, site["key_type"], p["key_size"], p["key_curve"])
        )
        if not fits:
            changed = True
            diffs.append({"before_header": key_path, "after_header": key_path, "before": "", "after": "(a new key)\n"})
            key, key_pem = tls_host.new_key(site["key_type"], p["key_size"], p["key_curve"])
            if not module.check_mode:
                tls_host.write_file(key_path, key_pem, 0o600)
        csr_text = tls_host.read_text(csr_path)
        if not fits or not tls_host.request_fits(csr_text, key, names, p["subject"], site["key_type"]):
            new = tls_host.new_request(key, names, p["subject"], site["key_type"])
            changed = True
            entry["csr_made"] = True
            diffs.append({"before_header": csr_path, "after_header": csr_path, "before": csr_text, "after": new})
            if not module.check_mode:
                tls_host.write_file(csr_path, new, 0o644)
            # In check mode a request that would be made is not there yet: nothing to issue or check.
            csr_text = "" if module.check_mode else new
        entry["csr_pem"] = csr_text
        entry["public_key_pem"] = tls_host.public_pem(key) if entry["csr_pem"] else ""
        if site["source"] == "selfsigned" and entry["csr_pem"]:
            path = f"{tls_dir}/{file}.selfsigned.pem"
            cert_text = tls_host.read_text(path)
            if not tls_host.selfsigned_fits(cert_text, key, names, p["renew_days"]):
                new = tls_host.new_selfsigned(key, entry["csr_pem"], p["selfsigned_days"])
                changed = True
                diffs.append({"before_header": path, "after_header": path, "before": cert_text, "after": new})
                if not module.check_mode:
                    tls_host.write_file(path, new, 0o644)
                cert_text = new
            entry["selfsigned_pem"] = cert_text
    return {
        "changed": changed,
        "sites": sites,
        "trust_store": tls_host.read_text(p["trust_store"]) if p["trust_store"] else "",
        "fact": tls_host.read_text(p["fact_file"]),
        "resolvers": tls_host.resolvers(tls_host.read_text("/etc/resolv.conf")),
        "diff": diffs,
    }


def _install(module: AnsibleModule) -> dict:
    p = module.params
    tls_dir = p["tls_dir"]
    pairs_dir, live_dir = f"{tls_dir}/pairs", f"{tls_dir}/live"
    changed = False
    diffs = []
    served = {}
    check = module.check_mode
    for path, mode in ((tls_dir, 0o755), (f"{tls_dir}/private", 0o700), (pairs_dir, 0o711), (live_dir, 0o755)):
        if check:
            changed |= not os.path.isdir(path)
        else:
            changed |= tls_host.ensure_directory(path, mode)
    for site in p["sites"]:
        file = site["file"]
        fullchain = site["leaf_pem"] + site["chain_pem"]
        if site.get("key_given"):
            key_text = str(p["private_keys"].get(site["id"], "")).strip() + "\n"
        else:
            key_text = tls_host.read_text(f"{tls_dir}/private/{file}.key")
            if not key_text and not check:
                module.fail_json(msg=f"{tls_dir}/private/{file}.key: the host's key for {file} is missing")
        pair = f"{pairs_dir}/{tls_host.pair_name(file, site['leaf_pem'])}"
        live = f"{live_dir}/{file}"
        served[site["id"]] = pair
        previous = os.readlink(live) if os.path.islink(live) else ""
        # 1. the new pair, written in full.
        cert_differs = tls_host.file_differs(f"{pair}/fullchain.pem", fullchain, 0o644)
        key_differs = tls_host.file_differs(f"{pair}/privkey.pem", key_text, 0o600)
        if cert_differs or key_differs or not os.path.isdir(pair):
            changed = True
            before = tls_host.read_text(f"{pair}/fullchain.pem")
            diffs.append(
                {
                    "before_header": f"{pair}/fullchain.pem",
                    "after_header": f"{pair}/fullchain.pem",
                    "before": before,
                    "after": fullchain,
                }
            )
            if not check:
                tls_host.ensure_directory(pair, 0o711)
                if cert_differs:
                    tls_host.write_file(f"{pair}/fullchain.pem", fullchain, 0o644)
                if key_differs:
                    tls_host.write_file(f"{pair}/privkey.pem", key_text, 0o600)
        # 2. the switch, in one rename.
        if not tls_host.link_points_at(live, pair):
            changed = True
            served[f"{site['id']}_switched"] = True
            diffs.append({"before_header": live, "after_header": live, "before": previous + "\n", "after": pair + "\n"})
            if not check:
                tls_host.switch_link(live, pair)
        well_known = f"{tls_dir}/{file}.fullchain.pem"
        target = f"live/{file}/fullchain.pem"
        if not tls_host.link_points_at(well_known, target):
            changed = True
            if not check:
                tls_host.switch_link(well_known, target)
        # 3. the pairs older than the previous one.
        keep = {pair, previous}
        if os.path.isdir(pairs_dir):
            for entry in sorted(os.listdir(pairs_dir)):
                path = f"{pairs_dir}/{entry}"
                if entry.startswith(f"{file}.") and os.path.isdir(path) and path not in keep:
                    if entry[len(file) + 1 :].count(".") or len(entry) - len(file) - 1 != 16:
                        continue  # another name's pair (<file>.<16 hex> only)
                    changed = True
                    if not check:
                        shutil.rmtree(path)
    return {"changed": changed, "pairs": served, "diff": diffs}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["prepared", "installed"], "required": True},
            "tls_dir": {"type": "path", "required": True},
            "sites": {"type": "list", "elements": "dict", "required": True},
            "private_keys": {"type": "dict", "default": {}, "no_log": True},
            "key_size": {"type": "int", "default": 2048},
            "key_curve": {"type": "str", "default": "secp256r1"},
            "subject": {"type": "dict", "default": {}},
            "selfsigned_days": {"type": "int", "default": 90},
            "renew_days": {"type": "int", "default": 30},
            "trust_store": {"type": "str", "default": ""},
            "fact_file": {"type": "str", "default": "/etc/ansible/facts.d/portal_https.fact"},
        },
        supports_check_mode=True,
    )
    try:
        result = _prepare(module) if module.params["state"] == "prepared" else _install(module)
    except (ValueError, OSError) as exc:
        module.fail_json(msg=f"portal_https_tls: {exc}")
    result["nginx_present"] = os.path.exists("/usr/sbin/nginx")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
