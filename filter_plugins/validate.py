"""Filters of the settings registry (module_utils/esia_onboard/settings.py).

playbooks/validate.yml and every role's entry check use them, so running a
role on its own gives the same message as validate.yml. The rules themselves
live in module_utils/esia_onboard/; this file is only the glue.

- ``portal_setting_names(kind)``: ``'public'``, ``'secret'`` or a role name -> setting names
  (from every role's meta/argument_specs.yml).
- ``portal_settings_check(values, role=None, host=None)`` -> {problems, warnings, message}.
- ``portal_secrets_check(values, vault_loaded, host=None)`` -> {problems, unchecked, message}.
- ``portal_role_check(values, role, host=None)`` -> {problems, warnings, message}: a role's entry check.
- ``portal_config_problems(config)`` -> the problems of one host (the older name).
- ``portal_account_problems(passwd, user, home)`` -> problems of an existing account on the host.
- ``rdn_escape(value)`` -> an RFC 4514 escaped attribute value.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ansible.module_utils
from ansible.errors import AnsibleFilterError

_MODULE_UTILS = str(Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)

from ansible.module_utils.esia_onboard import accounts, settings, subjects  # noqa: E402
from ansible.module_utils.esia_onboard.core import UNSET  # noqa: E402
from ansible.module_utils.esia_onboard.org import inn_valid, ogrn_valid  # noqa: E402, F401 (re-exported)

# Connection settings the rules read (the service account is not the connecting user).
_CONNECTION = ("ansible_user", "ansible_ssh_user", "remote_user")
ROLES_DIR = Path(__file__).resolve().parents[1] / "roles"
# What playbooks pass for a secret whose template cannot be resolved (its vault variable is undefined).
UNRESOLVED = "__esia_onboard_unresolved__"


@functools.lru_cache(maxsize=1)
def specs() -> dict[str, dict[str, Any]]:
    return settings.load_specs(ROLES_DIR)


def portal_setting_names(kind: str = "public") -> list[str]:
    """The settings of every role's argument spec: public, secret, or those of one role."""
    if kind == "public":
        return settings.public_names(specs())
    if kind == "secret":
        return settings.secret_names(specs())
    names = settings.role_names(specs(), kind)
    if not names:
        raise AnsibleFilterError(f"portal_setting_names: no role {kind!r} with an argument spec under {ROLES_DIR}")
    return names


def _plain(value: Any) -> Any:
    """A fully templated copy (lazy containers of Ansible 2.19 resolve here, raising on undefined)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def read_settings(values: Any, names: list[str], name: str = "portal_settings_check") -> dict[str, Any]:
    """``{name: value}`` for ``names`` from a mapping (``vars`` in a playbook: templated lazily).

    A name not in the mapping reads as UNSET; one whose template fails (it names
    an undefined variable, e.g. a vault variable while the vault is not loaded)
    reads as UNRESOLVED. Nothing else of the mapping is templated.
    """
    if not isinstance(values, Mapping):
        raise AnsibleFilterError(f"{name} expects a mapping of settings (e.g. vars), got {type(values).__name__}")
    result: dict[str, Any] = {}
    for key in names:
        try:
            result[key] = _plain(values[key]) if key in values else UNSET
        except Exception:  # AnsibleUndefinedVariable, MarkerError: a template that cannot be resolved here
            result[key] = UNRESOLVED
    return result


def _vault_loaded(values: Any) -> bool:
    """Some vault_* variable is defined (the names are read, not the values)."""
    return isinstance(values, Mapping) and any(str(key).startswith("vault_") for key in values)


def _message(head: str, problems: list[str]) -> str:
    return "\n".join([head, *(f"  - {text}" for text in problems)])


def portal_settings_check(values: Any, role: str | None = None, host: str | None = None) -> dict[str, Any]:
    """Every problem and warning of one host's settings (of one role's settings when ``role`` is given)."""
    unknown = settings.unknown_settings(values.keys(), specs()) if isinstance(values, Mapping) else []
    values = read_settings(values, [*portal_setting_names("public"), *_CONNECTION])
    unresolved = sorted(key for key, value in values.items() if value == UNRESOLVED)
    values = {key: value for key, value in values.items() if value not in (UNSET, UNRESOLVED)}
    only = portal_setting_names(role) if role else None
    problems, warnings = settings.check_settings(values, specs(), only=only)
    warnings += [
        f"{key}: not checked here, its template names a variable defined elsewhere (a role default?); "
        "the role checks it when it runs"
        for key in unresolved
        if only is None or key in only
    ]
    if role is None:
        warnings += unknown
    who = f"{host}: " if host else ""
    if role:
        head = f"{who}{len(problems)} problem(s) in the settings of role {role}; nothing was changed on the host."
    else:
        head = f"{who}{len(problems)} problem(s) in the inventory; nothing was changed on any host."
    return {
        "problems": problems,
        "warnings": warnings,
        "message": _message(head, problems) if problems else f"{who}configuration is valid",
    }


def portal_config_problems(config: Any) -> list[str]:  # the older name, for a plain mapping
    """All problems of one host's public configuration (empty when it is fine)."""
    return portal_settings_check(config)["problems"]


def portal_secrets_check(values: Any, role: str | None = None, host: str | None = None) -> dict[str, Any]:
    """Problems of the no_log settings; no message ever shows a secret.

    ``values`` is a mapping such as ``vars``. A secret reads as its value, as
    UNSET (nothing defines it) or UNRESOLVED (it is defined, but its template
    names a variable that nothing defines: a vault variable while the vault is
    not loaded). With the vault loaded (some ``vault_*`` variable is defined)
    an UNRESOLVED secret is a problem; without it the secret is listed in
    ``unchecked``, so validate.yml runs without the vault password.
    """
    vault_loaded = _vault_loaded(values)
    secrets = read_settings(values, portal_setting_names("secret"), "portal_secrets_check")
    context = read_settings(values, portal_setting_names("public"), "portal_secrets_check")
    context = settings.with_defaults({k: v for k, v in context.items() if v != UNRESOLVED}, specs())
    problems: list[str] = []
    unchecked: list[str] = []
    names = settings.secret_names(specs())
    if role:
        names = [name for name in names if role in specs()[name].get("roles", ())]
    for name in names:
        spec = specs()[name]
        value = secrets.get(name, UNSET)
        if value == UNRESOLVED:
            if vault_loaded:
                problems.append(
                    f"{name}: got (hidden); its template names a variable the vault does not define: "
                    "add that variable to the vault (ansible-vault edit) or fix its name"
                )
            else:
                unchecked.append(name)
        elif (value is None or value == UNSET) and "default" not in spec:
            if spec.get("required"):
                roles = ", ".join(spec.get("roles", ()))
                problems.append(f"{name}: got nothing (not set); set it from the vault (required by {roles})")
        else:
            # A secret left out takes its role default before it is judged (an
            # EAB key id with no HMAC key in the vault is a problem here, not
            # only in the role).
            value = spec["default"] if value is None or value == UNSET else value
            for rule in [settings.SECRET_RULES.get(name), *settings.SECRET_CROSS_RULES.get(name, [])]:
                problems += rule(value, {**context, name: value}) if rule else []
    who = f"{host}: " if host else ""
    head = f"{who}{len(problems)} problem(s) in the secrets; nothing was changed on any host."
    return {
        "problems": problems,
        "unchecked": unchecked,
        "message": _message(head, problems) if problems else f"{who}secrets are valid",
    }


def portal_role_check(values: Any, role: str, host: str | None = None) -> dict[str, Any]:
    """A role's entry check: validate.yml's rules for the role's public settings and secrets."""
    public = portal_settings_check(values, role=role)
    secret = portal_secrets_check(values, role=role)
    problems = public["problems"] + secret["problems"]
    who = f"{host}: " if host else ""
    head = f"{who}{len(problems)} problem(s) in the settings of role {role}; nothing was changed on the host."
    return {
        "problems": problems,
        "warnings": public["warnings"],
        "message": _message(head, problems) if problems else f"{who}the settings of role {role} are valid",
    }


def portal_account_problems(passwd: Any, user: Any, home: Any) -> list[str]:
    """Problems of an existing account named ``user`` in the host's passwd data."""
    return accounts.host_account_problems(user, home, passwd)


def rdn_escape(value: Any) -> str:
    return subjects.rdn_escape(value)


class FilterModule:
    def filters(self) -> dict:
        return {
            "portal_setting_names": portal_setting_names,
            "portal_settings_check": portal_settings_check,
            "portal_secrets_check": portal_secrets_check,
            "portal_config_problems": portal_config_problems,
            "portal_account_problems": portal_account_problems,
            "portal_role_check": portal_role_check,
            "rdn_escape": rdn_escape,
        }
