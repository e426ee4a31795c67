"""Action portal_settings_check: validate.yml's checks on the controller, one task per play.

Runs on the controller only (no connection, nothing on the host). The rules
are module_utils/esia_onboard/settings.py, applied through
filter_plugins/validate.py, the same glue the roles' entry checks use, so the
messages are the same.

Arguments:
  check: inventory   refuse an inventory without hosts in the group ``portal``
                     (warn about hosts outside it); run it on localhost.
  check: settings    every public setting of the host (role defaults applied);
                     the warnings go out through Ansible's warnings, the
                     problems fail the task with one message naming them all.
  check: secrets     the no_log settings; only setting names ever leave the
                     plugin (the values are read here, from the host's
                     variables, never passed as arguments nor returned).
  check: role        (or just ``role: NAME``) a role's entry check.
  show_warnings      with check=role: also return the role's warnings.

Returns ``msg``: the whole message (every problem on a line of its own);
fails when there is any problem. Reached from playbooks/ through
playbooks/action_plugins (a link to this directory).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

_REPO = Path(__file__).resolve().parents[2]
_GLUE = _REPO / "filter_plugins" / "validate.py"
_CHECKS = ("inventory", "settings", "secrets", "role")


def _load_glue() -> Any:
    spec = importlib.util.spec_from_file_location("esia_onboard_validate_glue", _GLUE)
    if spec is None or spec.loader is None:  # pragma: no cover - the repository is incomplete
        raise AnsibleActionFail(f"portal_settings_check: cannot load {_GLUE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def glue() -> Any:
    """filter_plugins/validate.py, loaded once per worker process."""
    return _load_glue()


class TemplatedVars(Mapping):
    """The host's variables as a playbook's ``vars`` sees them: each value templated when it is read.

    Only the values a check reads are templated; one whose template fails
    raises, which the glue reads as "not resolvable here".
    """

    def __init__(self, task_vars: Mapping[str, Any], templar: Any) -> None:
        self._vars = task_vars
        self._templar = templar

    def __getitem__(self, key: str) -> Any:
        return self._templar.template(self._vars[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __contains__(self, key: object) -> bool:
        return key in self._vars


def inventory_check(groups: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse an inventory without hosts in the group ``portal``; warn about hosts outside it."""
    portal = list(groups.get("portal") or [])
    every = list(groups.get("all") or [])
    if not portal:
        return {
            "failed": True,
            "msg": (
                "The inventory has no host in the group `portal` (hosts found: "
                f"{', '.join(every) or 'none'}), so nothing would be checked or configured. "
                "Put the portal hosts under all.children.portal.hosts (see inventories/region77/hosts.yml) "
                "and pass the inventory with -i inventories/region<code>."
            ),
        }
    outside = [host for host in every if host not in portal]
    result: dict[str, Any] = {"msg": f"{len(portal)} host(s) in the group `portal`: {', '.join(portal)}"}
    if outside:
        result["warnings"] = [f"Hosts outside the group `portal` are not checked or configured: {', '.join(outside)}."]
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("check", "role", "show_warnings"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        check = args.get("check", "role" if args.get("role") else "settings")
        if check not in _CHECKS:
            raise AnsibleActionFail(f"portal_settings_check: check must be one of {', '.join(_CHECKS)}, got {check!r}")
        result["changed"] = False
        if check == "inventory":
            result.update(inventory_check(task_vars.get("groups") or {}))
            return result

        host = task_vars.get("inventory_hostname")
        values = TemplatedVars(task_vars, self._templar)
        if check == "settings":
            found = glue().portal_settings_check(values, host=host)
            warnings = list(found["warnings"])
        elif check == "secrets":
            # Only setting names leave this function, never a value: an error
            # inside a rule is reported by its type only (its text may quote a secret).
            try:
                found = glue().portal_secrets_check(values, host=host)
            except Exception as error:  # any rule's failure, shown without its text
                result.update(
                    failed=True,
                    msg=f"{host}: the check of the secrets failed ({type(error).__name__}; its message is hidden "
                    "because it may quote a secret). Nothing was changed on any host.",
                )
                return result
            warnings = []
            if found["unchecked"]:
                warnings.append(
                    f"The vault is not loaded, so {', '.join(found['unchecked'])} were not checked; "
                    "site.yml checks them (run it with the vault password)."
                )
            if found["problems"]:
                # The task is no_log (validate.yml): Ansible then hides msg but
                # keeps warnings, so the problems (setting names and fixes,
                # never a value) reach the operator that way.
                warnings.append(found["message"])
        else:
            role = args.get("role")
            if not role:
                raise AnsibleActionFail("portal_settings_check: check=role needs role")
            found = glue().portal_role_check(values, role, host)
            warnings = list(found["warnings"]) if args.get("show_warnings", False) else []
        result["msg"] = found["message"]
        if warnings:
            result["warnings"] = warnings
        if found["problems"]:
            result["failed"] = True
        return result
