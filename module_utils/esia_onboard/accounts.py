"""The portal's service account and group."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem

_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)
# Accounts Debian (and the packages the roles install) create for themselves.
SYSTEM_USERS = frozenset(
    [
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "_apt",
        "systemd-network",
        "systemd-resolve",
        "systemd-timesync",
        "systemd-coredump",
        "messagebus",
        "sshd",
        "nginx",
        "_chrony",
        "chrony",
        "ntp",
        "postfix",
        "polkitd",
        "avahi",
        "dnsmasq",
        "tss",
        "uuidd",
        "statd",
        "syslog",
        "operator",
        "halt",
        "shutdown",
        "ftp",
        "postgres",
        "mysql",
        "redis",
        "bind",
        "named",
    ]
)
SYSTEM_GROUPS = frozenset(
    [
        "root",
        "daemon",
        "bin",
        "sys",
        "adm",
        "tty",
        "disk",
        "lp",
        "mail",
        "news",
        "uucp",
        "man",
        "proxy",
        "kmem",
        "dialout",
        "fax",
        "voice",
        "cdrom",
        "floppy",
        "tape",
        "sudo",
        "audio",
        "dip",
        "www-data",
        "backup",
        "operator",
        "list",
        "irc",
        "src",
        "gnats",
        "shadow",
        "utmp",
        "video",
        "sasl",
        "plugdev",
        "staff",
        "games",
        "users",
        "nogroup",
        "wheel",
        "systemd-journal",
        "systemd-network",
        "systemd-resolve",
        "systemd-timesync",
        "input",
        "kvm",
        "render",
        "crontab",
        "messagebus",
        "ssl-cert",
        "nginx",
        "_chrony",
        "chrony",
        "netdev",
        "ssh",
    ]
)
# uid below this is a system account; the portal account is one too, so an
# existing one is accepted only when it is the account the role made.
_FIRST_REGULAR_UID = 1000


def account_name_valid(value: Any) -> bool:
    return isinstance(value, str) and _ACCOUNT.fullmatch(value) is not None


def service_user_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if not account_name_valid(value):
        return [problem("portal_service_user", value, "set a system account name such as esia-portal")]
    if value in SYSTEM_USERS:
        return [
            problem(
                "portal_service_user",
                value,
                "this is an account of the system or of another service; set a dedicated account such as "
                "esia-portal (the role creates it)",
            )
        ]
    return []


def service_group_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if not account_name_valid(value):
        return [problem("portal_service_group", value, "set a group name such as esia-portal")]
    if value in SYSTEM_GROUPS:
        return [
            problem(
                "portal_service_group",
                value,
                "this group is shared with the system or other services, and would read the ESIA client "
                "configuration; set a dedicated group such as esia-portal",
            )
        ]
    return []


def not_connecting_user_cross(settings: Mapping[str, Any]) -> list[str]:
    """The service account is not the account Ansible connects as."""
    user = settings.get("portal_service_user")
    if not account_name_valid(user):
        return []
    for key in ("ansible_user", "remote_user", "ansible_ssh_user"):
        if settings.get(key) == user:
            return [
                problem(
                    "portal_service_user",
                    user,
                    f"this is the account Ansible connects as ({key}); the service account gets no login shell, "
                    "so set a dedicated account such as esia-portal",
                )
            ]
    return []


def parse_passwd(text: str) -> dict[str, dict[str, Any]]:
    """``/etc/passwd`` (or ``getent passwd``) lines -> {name: {uid, gid, home, shell}}."""
    accounts: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit():
            continue
        accounts[fields[0]] = {"uid": int(fields[2]), "gid": fields[3], "home": fields[5], "shell": fields[6]}
    return accounts


def host_account_problems(user: Any, home: Any, passwd: Any) -> list[str]:
    """On the host: an existing ``user`` is refused unless it is the account the role made.

    ``passwd`` is the host's passwd data: a ``getent passwd`` text, or the
    mapping ``ansible.builtin.getent`` leaves in ``ansible_facts.getent_passwd``
    ({name: [password, uid, gid, gecos, home, shell]}). The role makes a
    system account whose home is ``portal_service_home`` and whose shell is
    nologin; any other existing account (root, a person, another service) is
    not taken over.
    """
    if isinstance(passwd, str):
        accounts = parse_passwd(passwd)
    elif isinstance(passwd, Mapping):
        accounts = {}
        for name, fields in passwd.items():
            fields = list(fields or [])
            if len(fields) >= 6 and str(fields[1]).isdigit():
                accounts[name] = {"uid": int(fields[1]), "gid": fields[2], "home": fields[4], "shell": fields[5]}
    else:
        return []
    account = accounts.get(user)
    if account is None:
        return []
    if account["uid"] == 0:
        return [
            problem("portal_service_user", user, "has uid 0 on this host; set a dedicated account such as esia-portal")
        ]
    if account["uid"] >= _FIRST_REGULAR_UID:
        return [
            problem(
                "portal_service_user",
                user,
                f"is an existing login account on this host (uid {account['uid']}); set a dedicated account "
                "the role creates, such as esia-portal",
            )
        ]
    if account["home"] != home or not account["shell"].endswith("nologin"):
        return [
            problem(
                "portal_service_user",
                user,
                f"is an existing system account on this host (home {account['home']}, shell {account['shell']}) "
                "that the role did not create; set a dedicated account such as esia-portal",
            )
        ]
    return []
