#!/usr/bin/python
"""Converge a set of directories and files on the host in one call, with check and diff."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: portal_files
short_description: Make directories and write files on the portal host in one call, each only when it differs
description:
  - Makes each directory in I(directories) (owner, group, mode), then writes each file in I(files) when its
    content, owner, group or mode differ; a new file is written next to the old one, checked with its
    I(validate) command when given, and put in place with one rename, so a reader never sees half a file.
  - One module start on the host for the whole set, where a C(ansible.builtin.copy) loop starts one (or two)
    per file. Check mode says what would change and writes nothing; diff mode shows each changed file.
  - Used by the portal_monitoring role for the expiry export's script, configuration, Zabbix items and
    systemd units.
version_added: "1.0.0"
author:
  - esia-onboard maintainers
requirements:
  - Python 3 on the host (standard library only)
options:
  directories:
    description: Directories to make before the files are written.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: The directory., type: path, required: true}
      owner: {description: Owning account., type: str, default: root}
      group: {description: Owning group., type: str, default: root}
      mode: {description: Octal mode as a string., type: str, default: "0755"}
  files:
    description: Files to write.
    type: list
    elements: dict
    default: []
    suboptions:
      dest: {description: The file on the host; its directory must exist (or be in I(directories))., type: path,
             required: true}
      content: {description: What the file holds (text); give this or I(content_b64)., type: str}
      content_b64:
        description: What the file holds, base64 (for binary files such as a DER certificate); its diff names
          the sizes only.
        type: str
      owner: {description: Owning account., type: str, default: root}
      group: {description: Owning group., type: str, default: root}
      mode: {description: Octal mode as a string., type: str, default: "0644"}
      validate:
        description: A command with C(%s) for the new file, run before it replaces the old one; a failure
          leaves the old file in place and fails the task with the command's output.
        type: str
        default: ""
      secret:
        description: The diff says that the file changed, never what it holds.
        type: bool
        default: false
seealso:
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Install the expiry script, its configuration and the refresh timer
  portal_files:
    directories:
      - {path: /etc/esia-onboard}
    files:
      - dest: /usr/local/sbin/esia-onboard-expiry
        content: "{{ lookup('file', 'esia_onboard_expiry.py', rstrip=false) }}"
        mode: "0755"
      - {dest: /etc/esia-onboard/expiry.json, content: "{{ config | to_nice_json }}\n"}
  register: installed
"""

RETURN = r"""
changed_files:
  description: The files written (or, in check mode, that would be written), and those whose owner or mode was set.
  returned: always
  type: list
  elements: str
actions:
  description: What was done (or, in check mode, would be done), one line each.
  returned: always
  type: list
  elements: str
"""

import base64  # noqa: E402
import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.esia_onboard import files  # noqa: E402


def main() -> None:
    entry = {"owner": {"type": "str", "default": "root"}, "group": {"type": "str", "default": "root"}}
    module = AnsibleModule(
        argument_spec={
            "directories": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "path": {"type": "path", "required": True},
                    **entry,
                    "mode": {"type": "str", "default": "0755"},
                },
            },
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "dest": {"type": "path", "required": True},
                    "content": {"type": "str"},
                    "content_b64": {"type": "str"},
                    **entry,
                    "mode": {"type": "str", "default": "0644"},
                    "validate": {"type": "str", "default": ""},
                    "secret": {"type": "bool", "default": False, "no_log": False},
                },
                "required_one_of": [["content", "content_b64"]],
                "mutually_exclusive": [["content", "content_b64"]],
            },
        },
        supports_check_mode=True,
    )
    actions: list[str] = []
    changed_files: list[str] = []
    diffs: list[dict] = []

    try:
        actions += files.ensure_directories(module.params["directories"], module.check_mode)
    except (LookupError, ValueError, OSError) as exc:
        module.fail_json(msg=f"portal_files: {exc}")
    for item in module.params["files"]:
        binary = item["content_b64"] is not None
        data = base64.b64decode(item["content_b64"]) if binary else item["content"].encode("utf-8")
        old = os.path.getsize(item["dest"]) if binary and os.path.isfile(item["dest"]) else None
        try:
            done, diff = files.ensure_file(
                item["dest"],
                data,
                *files.entry_ids(item),
                files.entry_mode(item, "0644"),
                module.check_mode,
                validate=item["validate"],
                secret=item["secret"],
            )
        except (LookupError, OSError, ValueError) as exc:
            module.fail_json(msg=f"portal_files: {item['dest']}: {exc}", actions=actions, changed_files=changed_files)
        actions += done
        if done:
            changed_files.append(item["dest"])
        if diff and binary:
            diff = {
                **diff,
                "before": "" if old is None else f"(binary, {old} bytes)\n",
                "after": f"(binary, {len(data)} bytes)\n",
            }
        if diff:
            diffs.append(diff)
    result = {"changed": bool(actions), "actions": actions, "changed_files": changed_files}
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
