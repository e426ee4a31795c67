#!/usr/bin/python
"""Ansible module portal_base_account: the portal's system account, group and home, taking over no other account."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.esia_onboard.accounts import host_account_problems

DOCUMENTATION = r"""
module: portal_base_account
short_description: Create the portal's system account, group and home; never take over an account it did not create
description:
  - Reads the host's accounts first. An existing account named O(user) is refused (the module fails and changes
    nothing) when it is root (uid 0), a login account (uid 1000 and above), or a system account with another
    home or a login shell; the rule is C(host_account_problems) of C(module_utils/esia_onboard/accounts.py),
    the one portal_base has always applied.
  - Then creates the system group O(group), the system account O(user) (primary group O(group), home O(home) not
    made by useradd, shell O(shell)) and the home directory owned by the account with O(home_mode).
  - An existing account of the role whose primary group differs is moved to O(group) (C(usermod -g)).
  - Check mode reports what would be created or changed; the diff shows the account before and after.
options:
  user:
    description: The account (portal_service_user).
    type: str
    required: true
  group:
    description: Its primary group (portal_service_group), created as a system group when missing.
    type: str
    required: true
  home:
    description: Its home directory (portal_service_home).
    type: path
    required: true
  shell:
    description: Its shell.
    type: path
    default: /usr/sbin/nologin
  home_mode:
    description: Mode of the home directory.
    type: str
    default: "0750"
attributes:
  check_mode: {support: full}
  diff_mode: {support: full}
requirements: [shadow-utils (groupadd, useradd, usermod)]
author: [esia-onboard]
"""

EXAMPLES = r"""
- name: Create the portal service account, its group and home (never taking over another account)
  portal_base_account:
    user: esia-portal
    group: esia-portal
    home: /var/lib/esia-portal
"""

RETURN = r"""
uid: {description: The account's uid (absent in check mode before it exists)., type: int, returned: success}
gid: {description: The group's gid (absent in check mode before it exists)., type: int, returned: success}
actions: {description: What was done (or would be), in order., type: list, elements: str, returned: success}
"""


def passwd_text() -> str:
    return "".join(
        f"{p.pw_name}:x:{p.pw_uid}:{p.pw_gid}:{p.pw_gecos}:{p.pw_dir}:{p.pw_shell}\n" for p in pwd.getpwall()
    )


def lookup_user(name: str) -> Any:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def lookup_group(name: str) -> Any:
    try:
        return grp.getgrnam(name)
    except KeyError:
        return None


def describe(user: Any, group_name: str, home: str, home_state: Any, mode: int) -> str:
    if user is None:
        return "account: absent\n"
    lines = [f"account: {user.pw_name} uid {user.pw_uid} gid {user.pw_gid} home {user.pw_dir} shell {user.pw_shell}"]
    if home_state is None:
        lines.append(f"{home}: absent")
    else:
        lines.append(
            f"{home}: owner {home_state.st_uid}:{home_state.st_gid} mode {stat.S_IMODE(home_state.st_mode):04o}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "user": {"type": "str", "required": True},
            "group": {"type": "str", "required": True},
            "home": {"type": "path", "required": True},
            "shell": {"type": "path", "default": "/usr/sbin/nologin"},
            "home_mode": {"type": "str", "default": "0750"},
        },
        supports_check_mode=True,
    )
    user_name, group_name, home = module.params["user"], module.params["group"], module.params["home"]
    shell = module.params["shell"]
    mode = int(module.params["home_mode"], 8)

    problems = host_account_problems(user_name, home, passwd_text())
    if problems:
        module.fail_json(msg=f"{'; '.join(problems)}. Nothing was changed.", problems=problems)

    user = lookup_user(user_name)
    group = lookup_group(group_name)
    try:
        home_state: Any = os.stat(home)
    except FileNotFoundError:
        home_state = None
    before = describe(user, group_name, home, home_state, mode)
    actions: list[str] = []
    if group is None:
        actions.append(f"groupadd --system {group_name}")
    if user is None:
        actions.append(f"useradd --system {user_name}")
    elif group is None or user.pw_gid != group.gr_gid:
        actions.append(f"usermod -g {group_name} {user_name}")
    if home_state is None:
        actions.append(f"mkdir {home}")

    def run(*argv: str) -> None:
        rc, out, err = module.run_command(list(argv))
        if rc != 0:
            module.fail_json(msg=f"{' '.join(argv)} failed: {(err or out).strip()}", actions=actions)

    if not module.check_mode:
        if group is None:
            run("groupadd", "--system", group_name)
            group = grp.getgrnam(group_name)
        if user is None:
            run(
                "useradd", "--system", "--gid", group_name, "--home-dir", home, "--no-create-home",
                "--shell", shell, user_name,
            )  # fmt: skip
        elif user.pw_gid != group.gr_gid:
            run("usermod", "-g", group_name, user_name)
        user = pwd.getpwnam(user_name)
        if home_state is None:
            os.makedirs(home, mode=mode)
            home_state = os.stat(home)
    if user is not None and group is not None and home_state is not None:
        if (home_state.st_uid, home_state.st_gid) != (user.pw_uid, group.gr_gid):
            actions.append(f"chown {user_name}:{group_name} {home}")
            if not module.check_mode:
                os.chown(home, user.pw_uid, group.gr_gid)
        if stat.S_IMODE(home_state.st_mode) != mode:
            actions.append(f"chmod {mode:04o} {home}")
            if not module.check_mode:
                os.chmod(home, mode)
    elif module.check_mode and home_state is not None and user is None:
        actions.append(f"chown {user_name}:{group_name} {home}")

    result: dict[str, Any] = {"changed": bool(actions), "actions": actions}
    if user is not None:
        result["uid"] = user.pw_uid
    if group is not None:
        result["gid"] = group.gr_gid
    if actions and module._diff:
        after_home = None if module.check_mode and home_state is None else os.stat(home)
        result["diff"] = {
            "before_header": f"account {user_name}",
            "after_header": f"account {user_name}",
            "before": before,
            "after": (
                describe(lookup_user(user_name), group_name, home, after_home, mode)
                if not module.check_mode
                else "\n".join(actions) + "\n"
            ),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
