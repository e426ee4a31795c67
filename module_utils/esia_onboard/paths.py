"""Paths on the host: absolute, normal, and directories of their own."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem

_PATH = re.compile(r"(?:/[A-Za-z0-9._+@%=,-]+)+|/", re.ASCII)
# Directories of the system: a setting naming one of these would chown or
# chmod a directory the host needs for itself.
SYSTEM_DIRS = frozenset(
    [
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/lost+found",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/games",
        "/usr/include",
        "/usr/lib",
        "/usr/lib64",
        "/usr/libexec",
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/etc",
        "/usr/local/lib",
        "/usr/local/sbin",
        "/usr/local/share",
        "/usr/sbin",
        "/usr/share",
        "/usr/src",
        "/var",
        "/var/backups",
        "/var/cache",
        "/var/lib",
        "/var/local",
        "/var/lock",
        "/var/log",
        "/var/mail",
        "/var/opt",
        "/var/run",
        "/var/spool",
        "/var/tmp",
        "/var/www",
        "/etc/ssl",
        "/etc/ssl/certs",
        "/etc/ssl/private",
        "/etc/nginx",
        "/etc/default",
        "/etc/systemd",
        "/etc/cron.d",
        "/opt/cprocsp",
    ]
)
# Trees whose content is not kept or belongs to the kernel.
VOLATILE_TREES = ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/boot")


def path_problem(value: Any) -> str | None:
    """Why ``value`` is not an absolute, normal path (None when it is)."""
    if not isinstance(value, str) or not value.startswith("/"):
        return "set an absolute path"
    if value != "/" and value.endswith("/") and _PATH.fullmatch(value.rstrip("/")):
        return f"write it without the trailing slash: {value.rstrip('/')}"
    if not _PATH.fullmatch(value):
        return "use letters, digits and . _ - + @ % = , between single slashes (no spaces, quotes or newlines)"
    parts = value.split("/")
    if ".." in parts or "." in parts:
        return "write the path without '.' or '..' parts"
    return None


def absolute_path_rule(value: Any, settings: Mapping[str, Any], setting: str = "path") -> list[str]:
    reason = path_problem(value)
    return [problem(setting, value, reason)] if reason else []


def dedicated_dir_problem(value: Any) -> str | None:
    reason = path_problem(value)
    if reason:
        return reason
    if value in SYSTEM_DIRS:
        return (
            "this is a directory of the system, not one of its own; "
            "set a dedicated directory such as /var/lib/esia-portal"
        )
    for tree in VOLATILE_TREES:
        if value == tree or value.startswith(tree + "/"):
            return (
                f"{tree} is not kept (or belongs to the kernel); set a dedicated directory such as /var/lib/esia-portal"
            )
    if posixpath.dirname(value) == "/home":
        return "this is a person's home; set a dedicated directory such as /var/lib/esia-portal"
    return None


def dedicated_dir_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_service_home") -> list[str]:
    reason = dedicated_dir_problem(value)
    return [problem(setting, value, reason)] if reason else []
