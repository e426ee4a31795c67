#!/usr/bin/python
"""Ansible module portal_base_chrony: chrony's files, service and a synchronised clock, or the old files back."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard.chrony import (
    DROPIN,
    TrackingError,
    managed_files,
    tracking,
    unsynchronised_message,
)

DOCUMENTATION = r"""
module: portal_base_chrony
short_description: Converge chrony's files and service, wait for a synchronised clock, else put the old files back
description:
  - Validates O(config) with C(chronyd -p -f) before anything is written, then writes C(/etc/chrony/chrony.conf)
    and, with O(shared_clock=true) (a container whose kernel clock belongs to the host), the systemd drop-in
    C(/etc/systemd/system/chrony.service.d/shared-clock.conf) (no C(CAP_SYS_TIME) condition) and
    C(/etc/default/chrony) (C(-x), never adjust the clock). A file that differs keeps its previous version beside it
    (C(<file>.<pid>.<date>~)), as Ansible's C(backup=true) does.
  - Enables and starts C(chrony), restarts it when a file changed, then waits up to O(timeout) seconds for
    C(chronyc -n tracking) to report a reference, leap status Normal and an offset within O(max_offset).
  - When the clock does not synchronise, puts the previous files back (removes those this run created),
    restarts chrony on them and only then fails, naming the servers, chrony's last report and the files put back.
  - In check mode nothing is written or restarted; the diff shows the files as they would be. When chrony is
    installed, check mode also reads the clock as the current configuration keeps it.
options:
  config:
    description: The whole content of C(/etc/chrony/chrony.conf).
    type: str
    required: true
  shared_clock:
    description: The host is a container sharing its host's kernel clock (chrony measures, never adjusts).
    type: bool
    default: false
  max_offset:
    description: Largest offset in seconds that counts as synchronised.
    type: float
    default: 1.0
  timeout:
    description: Seconds to wait for a synchronised clock.
    type: int
    default: 60
  servers:
    description: The NTP servers of O(config), named in the failure message (portal_base_ntp_servers).
    type: list
    elements: str
    default: []
  pools:
    description: The NTP pools of O(config), named in the failure message when O(servers) is empty.
    type: list
    elements: str
    default: []
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
requirements: [chrony (chronyd, chronyc), systemd]
author: [esia-onboard]
"""

EXAMPLES = r"""
- name: Write the chrony configuration and wait for a synchronised clock
  portal_base_chrony:
    config: "{{ lookup('ansible.builtin.template', 'chrony.conf.j2') }}"
    shared_clock: false
    max_offset: 1.0
    timeout: 60
    servers: [ntp1.miac77.ru, ntp2.miac77.ru]
"""

RETURN = r"""
tracking:
  description: >-
    The clock as C(chronyc -n tracking) reports it - C(reference), C(stratum), C(leap_status),
    C(offset_seconds), C(max_offset_seconds), C(synchronised). Absent in check mode on a host without chrony.
  type: dict
  returned: when chrony is installed
files:
  description: The files this run wrote (or would write), each with C(path) and C(backup) (empty when created).
  type: list
  elements: dict
  returned: always
restored:
  description: The files put back after the clock did not synchronise.
  type: list
  elements: str
  returned: on failure
"""

CHRONYD = "/usr/sbin/chronyd"
POLL_SECONDS = 2


def read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def needs_write(path: str, content: str) -> bool:
    if read(path) != content:
        return True
    info = os.stat(path)
    return info.st_uid != 0 or info.st_gid != 0 or (info.st_mode & 0o7777) != 0o644


def write(module: AnsibleModule, path: str, content: str) -> None:
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".portal_base_chrony.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(temp, 0o644)
    os.chown(temp, 0, 0)
    module.atomic_move(temp, path)


def validate(module: AnsibleModule, config: str) -> None:
    fd, temp = tempfile.mkstemp(prefix="portal_base_chrony.", suffix=".conf")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(config)
        rc, out, err = module.run_command([CHRONYD, "-p", "-f", temp])
    finally:
        os.unlink(temp)
    if rc != 0:
        module.fail_json(
            msg=f"chronyd refuses the new configuration (chronyd -p): {(err or out).strip()}. Nothing was changed.",
            files=[],
        )


def systemctl(module: AnsibleModule, *args: str, check: bool = True) -> int:
    rc, out, err = module.run_command(["systemctl", *args])
    if check and rc != 0:
        module.fail_json(msg=f"systemctl {' '.join(args)} failed: {(err or out).strip()}")
    return rc


def read_tracking(module: AnsibleModule, max_offset: float) -> tuple[dict[str, Any] | None, str]:
    rc, out, err = module.run_command(["chronyc", "-n", "tracking"])
    if rc != 0:
        return None, (out + err).strip()
    try:
        return tracking(out, max_offset), out
    except TrackingError as error:
        return None, f"{out.strip()} ({error})"


def wait(module: AnsibleModule, max_offset: float, timeout: int) -> tuple[dict[str, Any] | None, str]:
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        state, text = read_tracking(module, max_offset)
        if state is not None and state["synchronised"]:
            return state, text
        if time.monotonic() + POLL_SECONDS > deadline:
            return state, text
        time.sleep(POLL_SECONDS)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "str", "required": True},
            "shared_clock": {"type": "bool", "default": False},
            "max_offset": {"type": "float", "default": 1.0},
            "timeout": {"type": "int", "default": 60},
            "servers": {"type": "list", "elements": "str", "default": []},
            "pools": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    installed = os.path.exists(CHRONYD)
    wanted = managed_files(params["config"], params["shared_clock"])
    pending = [(path, content) for path, content in wanted if needs_write(path, content)]
    result: dict[str, Any] = {"changed": False, "files": []}
    if module._diff and pending:
        result["diff"] = [
            {"before_header": path, "after_header": path, "before": read(path) or "", "after": content}
            for path, content in pending
        ]
    if installed:
        validate(module, params["config"])
    elif not module.check_mode:
        module.fail_json(msg=f"{CHRONYD} is missing: install chrony first (portal_base_packages)", files=[])

    if module.check_mode:
        result["files"] = [{"path": path, "backup": ""} for path, _content in pending]
        result["changed"] = bool(pending)
        if installed:
            if systemctl(module, "is-enabled", "--quiet", "chrony", check=False) != 0:
                result["changed"] = True
            if systemctl(module, "is-active", "--quiet", "chrony", check=False) != 0:
                result["changed"] = True
            else:
                state, _text = read_tracking(module, params["max_offset"])
                if state is not None:
                    result["tracking"] = state
        module.exit_json(**result)

    written: list[dict[str, str]] = []
    for path, content in pending:
        backup = module.backup_local(path) if os.path.exists(path) else ""
        write(module, path, content)
        written.append({"path": path, "backup": backup})
    result["files"] = written
    result["changed"] = bool(written)
    if any(item["path"] == DROPIN for item in written):
        systemctl(module, "daemon-reload")
    if systemctl(module, "is-enabled", "--quiet", "chrony", check=False) != 0:
        systemctl(module, "enable", "chrony")
        result["changed"] = True
    if systemctl(module, "is-active", "--quiet", "chrony", check=False) != 0:
        systemctl(module, "start", "chrony")
        result["changed"] = True
    elif written:
        systemctl(module, "restart", "chrony")

    state, text = wait(module, params["max_offset"], params["timeout"])
    if state is not None and state["synchronised"]:
        result["tracking"] = state
        module.exit_json(**result)

    # Put the previous files back (remove those this run created) and restart chrony on them.
    restored = []
    for item in written:
        if item["backup"]:
            # The backup stays beside the file, as Ansible's backup=true leaves it.
            write(module, item["path"], read(item["backup"]) or "")
        else:
            os.unlink(item["path"])
        restored.append(item["path"])
    if restored:
        systemctl(module, "daemon-reload")
        systemctl(module, "restart", "chrony")
    module.fail_json(
        msg=unsynchronised_message(
            params["timeout"], params["max_offset"], params["servers"], params["pools"], text, restored
        ),
        files=written,
        restored=restored,
        tracking=state or {},
    )


if __name__ == "__main__":
    main()
