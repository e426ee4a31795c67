"""Files and directories on the host: read, compare, make, with check and diff.

One implementation for every module that converges a set of files in one call
(library/portal_files.py for the roles' plain files; cryptopro_key and
esia_client_host for theirs), instead of one ``copy`` or ``file`` task per file
(each a module start on the host).
"""

from __future__ import annotations

import os


def owner_ids(owner: str, group: str) -> tuple[int, int]:
    """(uid, gid) of an account and a group named on the host; KeyError when one is missing."""
    import grp
    import pwd

    return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid


def entry_ids(entry: dict) -> tuple[int, int]:
    """(uid, gid) of an entry's ``owner`` and ``group`` (root when unset); LookupError naming the entry."""
    try:
        return owner_ids(entry.get("owner") or "root", entry.get("group") or "root")
    except KeyError as exc:
        where = entry.get("path") or entry.get("dest")
        raise LookupError(f"no account or group {exc} on the host for {where}") from exc


def entry_mode(entry: dict, default: str) -> int:
    """An entry's octal ``mode`` string as a number; ValueError when it is not octal."""
    value = entry.get("mode") or default
    try:
        return int(str(value), 8)
    except ValueError:
        raise ValueError(f"mode {value!r} of {entry.get('path') or entry.get('dest')} is not octal") from None


def ensure_directories(entries: list, check: bool) -> list[str]:
    """ensure_directory for each {path, owner, group, mode} entry (mode 0755 when unset); the actions."""
    actions: list[str] = []
    for entry in entries:
        actions += ensure_directory(entry["path"], *entry_ids(entry), entry_mode(entry, "0755"), check)
    return actions


def ensure_directory(path: str, uid: int, gid: int, mode: int, check: bool) -> list[str]:
    """Make `path` a directory owned uid:gid with `mode`; the actions done (or, in check mode, to do)."""
    actions = []
    if not os.path.isdir(path):
        actions.append(f"create the directory {path} ({mode:o})")
        if not check:
            os.makedirs(path, exist_ok=True)
    if os.path.isdir(path):
        info = os.stat(path)
        if (info.st_uid, info.st_gid) != (uid, gid) or info.st_mode & 0o7777 != mode:
            actions.append(f"set owner and mode {mode:o} of {path}")
    if actions and not check:
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return actions


def ensure_file(
    path: str,
    data: bytes,
    uid: int,
    gid: int,
    mode: int,
    check: bool,
    validate: str = "",
    secret: bool = False,
) -> tuple[list[str], dict | None]:
    """Write `data` to `path` atomically, owned uid:gid with `mode`, when it differs.

    `validate` is a command with %s for the new file (run before it replaces the old one; a
    failure raises ValueError with its output). Returns (actions, diff entry); a `secret`
    file's diff says that it changed, never what it holds.
    """
    import shlex
    import subprocess
    import tempfile

    try:
        with open(path, "rb") as handle:
            before = handle.read()
    except OSError:
        before = None
    actions, diff = [], None
    if before != data:
        actions.append(f"write {path}")
        if secret:
            diff = {"before_header": path, "after_header": path, "before": "", "after": "(secret, not shown)\n"}
        else:
            diff = {
                "before_header": path,
                "after_header": path,
                "before": (before or b"").decode("utf-8", "replace"),
                "after": data.decode("utf-8", "replace"),
            }
        if not check:
            directory = os.path.dirname(path) or "."
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".esia-onboard-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.chown(temporary, uid, gid)
                os.chmod(temporary, mode)
                if validate:
                    argv = [part.replace("%s", temporary) for part in shlex.split(validate)]
                    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
                    if proc.returncode != 0:
                        raise ValueError(
                            f"{path} failed its check ({validate}): {(proc.stderr + proc.stdout).strip()[-800:]}"
                        )
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
    elif os.path.exists(path):
        info = os.stat(path)
        if (info.st_uid, info.st_gid) != (uid, gid) or info.st_mode & 0o7777 != mode:
            actions.append(f"set owner and mode {mode:o} of {path}")
            if not check:
                os.chown(path, uid, gid)
                os.chmod(path, mode)
    return actions, diff
