#!/usr/bin/python
"""Write the portal's nginx site after an in-context nginx -t, and retire Debian's stock default site."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard import tls_host

DOCUMENTATION = r"""
---
module: portal_https_nginx
short_description: Write the portal's nginx site (tested in context with nginx -t), retire Debian's stock site
description:
  - Installs the in-context configuration test (C(test_script)) and, without an upstream, the placeholder page.
  - "Debian's default site (C(default_site)) is removed only when it is the file the package shipped (its
    md5sum is the one dpkg recorded for nginx-common) and only once the new configuration has passed
    nginx -t without it; a default site someone changed stays, and the result's C(warnings) say so."
  - The site file (C(path)) is replaced only when the configuration with it passes the in-context test;
    when nginx refuses it the task fails with nginx's reason and the old file keeps serving.
  - Rules and parsing come from module_utils/esia_onboard/nginx.py and tls.py.
version_added: "1.0.0"
author:
  - esia-onboard maintainers
requirements:
  - nginx and dpkg on the host (Debian family)
options:
  path:
    description: The portal's site file.
    type: path
    default: /etc/nginx/conf.d/esia-portal.conf
  content:
    description: The site's text (the role renders templates/esia-portal.conf.j2 on the controller).
    type: str
    required: true
  test_script:
    description: The text of the in-context test (files/portal-https-nginx-test).
    type: str
    required: true
  test_script_path:
    description: Where the test is installed.
    type: path
    default: /usr/local/sbin/portal-https-nginx-test
  placeholder:
    description: The placeholder page's text; empty when an upstream is served (the page is left alone).
    type: str
    default: ""
  webroot:
    description: The placeholder directory (portal_https_webroot).
    type: path
    default: /var/www/esia-portal
  default_site:
    description: Debian's default site link.
    type: path
    default: /etc/nginx/sites-enabled/default
  remove_default_site:
    description: portal_https_nginx_remove_default_site.
    type: bool
    default: true
  http_port:
    description: The portal's HTTP port, for the message about a customised default site.
    type: int
    default: 80
  fact:
    description: What is served, for later roles; written as JSON to C(fact_file) once the site is in place.
    type: dict
    default: {}
  fact_file:
    description: The role's local fact (ansible_local.portal_https).
    type: path
    default: /etc/ansible/facts.d/portal_https.fact
notes:
  - Supports check mode and diff mode; in check mode the configuration is not tested (nginx may not be installed yet).
"""

EXAMPLES = r"""
- name: Write the nginx configuration for the portal names
  portal_https_nginx:
    content: "{{ lookup('ansible.builtin.template', 'esia-portal.conf.j2') }}"
    test_script: "{{ lookup('ansible.builtin.file', 'portal-https-nginx-test') }}"
    placeholder: "{{ lookup('ansible.builtin.template', 'index.html.j2') }}"
  register: nginx_site
"""

RETURN = r"""
default_site_removed:
  description: Debian's stock default site was (or in check mode would be) removed.
  returned: always
  type: bool
site_changed:
  description: The site file was (or would be) replaced.
  returned: always
  type: bool
nginx_present:
  description: /usr/sbin/nginx exists (false on a fresh host in check mode).
  returned: always
  type: bool
"""


def _stock(default_site: str) -> tuple[bool, str]:
    """(is the file dpkg shipped, unchanged; the real path behind the link)."""
    real = os.path.realpath(default_site)
    try:
        conffiles = subprocess.run(
            ["dpkg-query", "--showformat=${Conffiles}", "--show", "nginx-common"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        ).stdout
    except OSError:
        conffiles = ""
    try:
        with open(real, "rb") as handle:
            md5 = hashlib.md5(handle.read(), usedforsecurity=False).hexdigest()
    except OSError:
        md5 = ""
    for line in conffiles.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == real:
            return len(fields) == 2 and bool(md5) and fields[1].lower() == md5, real
    return False, real


def _put(module, path: str, text: str, mode: int, diffs: list) -> bool:
    if not tls_host.file_differs(path, text, mode):
        return False
    diffs.append({"before_header": path, "after_header": path, "before": tls_host.read_text(path), "after": text})
    if not module.check_mode:
        tls_host.write_file(path, text, mode)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/nginx/conf.d/esia-portal.conf"},
            "content": {"type": "str", "required": True},
            "test_script": {"type": "str", "required": True},
            "test_script_path": {"type": "path", "default": "/usr/local/sbin/portal-https-nginx-test"},
            "placeholder": {"type": "str", "default": ""},
            "webroot": {"type": "path", "default": "/var/www/esia-portal"},
            "default_site": {"type": "path", "default": "/etc/nginx/sites-enabled/default"},
            "remove_default_site": {"type": "bool", "default": True},
            "http_port": {"type": "int", "default": 80},
            "fact": {"type": "dict", "default": {}},
            "fact_file": {"type": "path", "default": "/etc/ansible/facts.d/portal_https.fact"},
        },
        supports_check_mode=True,
    )
    p = module.params
    check = module.check_mode
    changed, diffs = False, []
    content = p["content"] if p["content"].endswith("\n") else p["content"] + "\n"
    script = p["test_script"] if p["test_script"].endswith("\n") else p["test_script"] + "\n"
    changed |= _put(module, p["test_script_path"], script, 0o755, diffs)
    if p["placeholder"]:
        if not os.path.isdir(p["webroot"]):
            changed = True
            if not check:
                os.makedirs(p["webroot"], 0o755)
        page = p["placeholder"] if p["placeholder"].endswith("\n") else p["placeholder"] + "\n"
        changed |= _put(module, f"{p['webroot']}/index.html", page, 0o644, diffs)

    default_site = p["default_site"]
    removable = False
    if p["remove_default_site"] and os.path.lexists(default_site):
        removable, real = _stock(default_site)
        if not removable:
            module.warn(
                f"{real} is not the file the nginx package shipped (someone changed it), so it was left in"
                f" place. If it answers other names on port {p['http_port']}, merge what it does into the portal and"
                f" remove {default_site} by hand."
            )

    site_changed = tls_host.file_differs(p["path"], content, 0o644)
    if site_changed:
        changed = True
        diffs.append(
            {
                "before_header": p["path"],
                "after_header": p["path"],
                "before": tls_host.read_text(p["path"]),
                "after": content,
            }
        )
        if not check:
            candidate = f"{p['path']}.portal_https-candidate"
            tls_host.write_file(candidate, content, 0o644)
            try:
                argv = [p["test_script_path"], candidate, p["path"]] + ([default_site] if removable else [])
                test = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
                if test.returncode != 0:
                    module.fail_json(
                        msg=f"nginx refused the new configuration for {p['path']}, so it was not installed:"
                        " the previous"
                        " configuration stays in place and nginx keeps serving it. Fix the setting that put the"
                        " offending line there (for example portal_https_server_extra_config) and run again. A"
                        f" customised Debian default site ({default_site}) that also claims default_server conflicts"
                        " with the portal's catch-all servers: remove it or its default_server."
                        f" nginx -t said: {(test.stderr or test.stdout).strip()}"
                    )
                os.replace(candidate, p["path"])
            finally:
                if os.path.exists(candidate):
                    os.unlink(candidate)
    if removable:
        # The configuration that passed nginx -t without it (tested now, or on the run that wrote it).
        changed = True
        diffs.append(
            {
                "before_header": default_site,
                "after_header": default_site,
                "before": "(Debian's stock default site)\n",
                "after": "",
            }
        )
        if not check:
            os.unlink(default_site)
    if p["fact"]:
        text = json.dumps(p["fact"], indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"
        directory = os.path.dirname(p["fact_file"])
        if not os.path.isdir(directory):
            changed = True
            if not check:
                os.makedirs(directory, 0o755)
        if os.path.isdir(directory) or not check:
            changed |= _put(module, p["fact_file"], text, 0o644, diffs)
    module.exit_json(
        changed=changed,
        site_changed=site_changed,
        default_site_removed=removable,
        nginx_present=os.path.exists("/usr/sbin/nginx"),
        diff=diffs,
    )


if __name__ == "__main__":
    main()
