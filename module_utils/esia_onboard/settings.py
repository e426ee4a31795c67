"""The registry of every public setting's rule, and the one function that applies it.

Contract (module_utils/esia_onboard/README.md explains it with examples):

- ``RULES[name](value, settings) -> list[str]``: the rule of one public setting.
  It is called only when the setting has a value (given, or its role default)
  and that value passed the argument_spec type and choices check, so a rule
  may rely on the type. ``settings`` is every setting with role defaults
  applied (plus connection facts such as ``ansible_user`` when known).
- ``CROSS_RULES``: ``rule(settings) -> list[str]`` for rules across settings.
  A cross rule judges only when every setting it reads is present and valid
  on its own (the single-setting rule reports the rest).
- ``WARNINGS``: ``rule(settings) -> list[str]`` for advice that never fails a run.
- ``SECRET_RULES[name](value, settings)``: rules of the ``no_log`` settings,
  applied by validate.yml's no_log play and by :func:`check_secrets`.
- :func:`check_settings` applies role defaults, checks types and choices
  strictly, runs RULES and CROSS_RULES and collects WARNINGS.
- :func:`load_specs` reads every role's ``meta/argument_specs.yml`` (entry
  point ``main``): its public options are exactly what validate.yml checks.

Registering a rule is one line: ``RULES["my_setting"] = mytopic.my_rule``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ansible.module_utils.esia_onboard import (
    accounts,
    acme,
    consistency,
    names,
    net,
    nginx,
    org,
    paths,
    secrets,
    subjects,
    values,
)
from ansible.module_utils.esia_onboard.core import UNSET, problem

Rule = Callable[[Any, Mapping[str, Any]], list[str]]
CrossRule = Callable[[Mapping[str, Any]], list[str]]

RULES: dict[str, Rule] = {}
CROSS_RULES: list[CrossRule] = []
WARNINGS: list[CrossRule] = []
SECRET_RULES: dict[str, Rule] = {}
# What each choice means, added to the "use one of" message of a setting with choices.
CHOICE_HINTS: dict[str, str] = {
    "cryptopro_provider_type": (
        "80 = GOST R 34.10-2012 256 bit, 81 = 512 bit; 75 (GOST 2001) is refused by ESIA since 2019"
    ),
    "cryptopro_backend": "cryptopro = CryptoPro CSP, production; openssl_gost = lab, tests",
    "esia_client_environment": "test first, per the Appendix E application; prod after ESIA's answer",
    "esia_client_api_version": "v2 = v2/ac + v3/te, the default; v1 = legacy",
    "portal_https_certificate_source": "provided = production (CSR); acme = an ACME CA; ownca, selfsigned = lab, tests",
    "portal_https_fallback_certificate_source": "or leave it out to follow portal_https_certificate_source",
    "portal_https_fallback_mode": "serve = the old name keeps serving the portal, as the seed asks; redirect = 301",
    "portal_https_key_type": "auto = rsa for provided, ecdsa for the others (the default); ecdsa = P-256; rsa",
    "portal_https_acme_challenge": "http-01 = through this nginx on port 80; dns-01 = TXT with the portal_domain key",
    "portal_domain_tsig_algorithm": "hmac-sha256 recommended; hmac-md5 is refused as weak",
}


# --------------------------------------------------------------------------
# Argument specs: the list of public settings, their types and defaults.
# --------------------------------------------------------------------------

_TEMPLATE_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def load_specs(roles_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every option of every role's ``main`` entry point, merged by name.

    Each value is the option's spec plus ``roles`` (the roles declaring it).
    A setting required by any role is required; the first role that gives a
    default gives it; choices are the intersection where several roles list them.
    """
    import yaml  # controller-only; modules never call this

    merged: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(Path(roles_dir).glob("*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        document = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
        options = ((document.get("argument_specs") or {}).get("main") or {}).get("options") or {}
        for name, option in options.items():
            option = dict(option or {})
            entry = merged.setdefault(name, {"roles": []})
            entry["roles"].append(role)
            for key, value in option.items():
                if key == "description":
                    continue
                if key == "required":
                    entry["required"] = bool(entry.get("required")) or bool(value)
                elif key == "choices" and "choices" in entry:
                    entry["choices"] = [c for c in entry["choices"] if c in value]
                elif key == "no_log":
                    entry["no_log"] = bool(entry.get("no_log")) or bool(value)
                else:
                    entry.setdefault(key, value)
    return merged


def public_names(specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The settings validate.yml checks in its first play (everything not no_log)."""
    return sorted(name for name, spec in specs.items() if not spec.get("no_log"))


def secret_names(specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The no_log settings (checked by validate.yml's second, no_log play)."""
    return sorted(name for name, spec in specs.items() if spec.get("no_log"))


def role_names(specs: Mapping[str, Mapping[str, Any]], role: str) -> list[str]:
    """The public settings one role declares."""
    return sorted(name for name, spec in specs.items() if role in spec.get("roles", ()) and not spec.get("no_log"))


def _is_set(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value == UNSET)


def _resolve_default(default: Any, settings: Mapping[str, Any]) -> Any:
    """A spec default; ``{{ other_setting }}`` references are filled in from ``settings``.

    A default that still holds Jinja after that (or names a setting that is
    not set) is returned as UNSET: the role computes it, nothing to judge here.
    """
    if not isinstance(default, str) or "{{" not in default:
        return default

    unresolved = False

    def fill(match: re.Match[str]) -> str:
        nonlocal unresolved
        value = settings.get(match[1])
        if not _is_set(value) or isinstance(value, (dict, list)):
            unresolved = True
            return ""
        return str(value)

    filled = _TEMPLATE_VAR.sub(fill, default)
    return UNSET if unresolved or "{{" in filled or "{%" in filled else filled


def with_defaults(settings: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``settings`` with every unset setting given its role default (when it has one)."""
    result = {key: value for key, value in settings.items() if _is_set(value)}
    pending = [name for name, spec in specs.items() if name not in result and "default" in spec]
    # Two passes: a default may name another setting's default.
    for _ in range(2):
        for name in list(pending):
            value = _resolve_default(specs[name]["default"], result)
            if _is_set(value):
                result[name] = value
                pending.remove(name)
    return result


# --------------------------------------------------------------------------
# Strict types.
# --------------------------------------------------------------------------

_TYPE_FIX = {
    "str": "write it as a quoted string",
    "path": "set an absolute path as a string",
    "int": "set a whole number without quotes",
    "float": "set a number",
    "bool": "set true or false (unquoted)",
    "list": "set a YAML list",
    "dict": "set a YAML mapping",
}


def _convert(value: Any, kind: str) -> tuple[bool, Any]:
    """(ok, value as the type) under strict rules; ok False when it is not of the type."""
    if kind in ("str", "path", "raw") or kind is None:
        return (kind == "raw" or kind is None or isinstance(value, str)), value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "int":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value, re.ASCII):
            return True, int(value)
        return False, value
    if kind == "float":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, (int, float)):
            return True, float(value)
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", value, re.ASCII):
            return True, float(value)
        return False, value
    if kind == "list":
        return isinstance(value, list), value
    if kind == "dict":
        return isinstance(value, Mapping), value
    return True, value


def check_type(name: str, value: Any, spec: Mapping[str, Any]) -> tuple[list[str], Any]:
    """Problems of ``value`` against its spec's type, elements and choices, and the converted value."""
    kind = spec.get("type", "str")
    ok, converted = _convert(value, kind)
    if not ok:
        return [problem(name, value, f"{_TYPE_FIX.get(kind, 'set a ' + kind)} ({kind} expected)")], value
    choices = spec.get("choices")
    if kind == "list":
        element_kind = spec.get("elements")
        items = []
        for index, item in enumerate(converted):
            item_ok, item_value = _convert(item, element_kind) if element_kind else (True, item)
            if not item_ok:
                fix = _TYPE_FIX.get(element_kind, "set a " + str(element_kind))
                return [problem(f"{name}[{index}]", item, f"{fix} ({element_kind} expected)")], value
            if choices and item_value not in choices:
                return [problem(f"{name}[{index}]", item, "use one of " + ", ".join(map(str, choices)))], value
            items.append(item_value)
        return [], items
    if choices and converted not in choices:
        hint = CHOICE_HINTS.get(name)
        fix = "use one of " + ", ".join(map(str, choices)) + (f" ({hint})" if hint else "")
        return [problem(name, value, fix)], value
    return [], converted


# --------------------------------------------------------------------------
# The check.
# --------------------------------------------------------------------------


def problem_setting(text: str) -> str:
    """The top-level setting a problem names (``portal_org.ogrn: got ...`` -> ``portal_org``)."""
    head = text.split(":", 1)[0]
    return re.split(r"[.\[ ]", head, maxsplit=1)[0]


def check_settings(
    settings: Mapping[str, Any],
    specs: Mapping[str, Mapping[str, Any]],
    only: Any = None,
) -> tuple[list[str], list[str]]:
    """(problems, warnings) of one host's settings.

    ``settings`` maps names to values; a value that is None or UNSET counts as
    left out and takes its role default. Only public settings (not no_log) are
    judged. ``only`` (a collection of names) keeps the problems and warnings
    that name those settings: a role's entry check passes its own settings.
    """
    complete = with_defaults(settings, specs)
    problems: list[str] = []
    valid: dict[str, Any] = {key: value for key, value in complete.items() if key not in specs}
    for name in public_names(specs):
        spec = specs[name]
        if name not in complete:
            if spec.get("required"):
                roles = ", ".join(spec.get("roles", ()))
                problems.append(problem(name, None, f"set it in the inventory (required by {roles})"))
            continue
        found, converted = check_type(name, complete[name], spec)
        if found:
            problems += found
            continue
        rule = RULES.get(name)
        found = rule(converted, complete) if rule else []
        if found:
            problems += found
        else:
            valid[name] = converted
    for cross in CROSS_RULES:
        problems += cross(valid)
    warnings = [text for warn in WARNINGS for text in warn(valid)]
    problems = list(dict.fromkeys(problems))
    if only is not None:
        keep = set(only)
        problems = [text for text in problems if problem_setting(text) in keep]
        warnings = [text for text in warnings if problem_setting(text) in keep]
    return problems, warnings


def unknown_settings(keys: Any, specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Warnings for variables named like a role's setting that no argument spec declares (typos).

    A variable counts when it starts with a role's name and ``_`` (or
    ``portal_service_``); its value is never read.
    """
    import difflib

    prefixes = tuple({f"{role}_" for spec in specs.values() for role in spec.get("roles", ())} | {"portal_service_"})
    found = []
    for key in sorted(str(key) for key in keys):
        if key in specs or key.startswith("_") or not key.startswith(prefixes):
            continue
        close = difflib.get_close_matches(key, list(specs), n=1, cutoff=0.85)
        hint = f"did you mean {close[0]}?" if close else "see the roles' meta/argument_specs.yml"
        found.append(f"{key}: no role declares this setting, so nothing uses it; {hint}")
    return found


def check_secrets(settings: Mapping[str, Any], specs: Mapping[str, Mapping[str, Any]], only: Any = None) -> list[str]:
    """Problems of the no_log settings that have a value (never showing the value)."""
    complete = with_defaults(settings, specs)
    problems: list[str] = []
    for name in secret_names(specs):
        if only is not None and name not in only:
            continue
        if name not in complete:
            continue
        rule = SECRET_RULES.get(name)
        if rule:
            problems += rule(complete[name], complete)
    return problems


# --------------------------------------------------------------------------
# The registry. One line per setting; the functions live in the topic modules.
# --------------------------------------------------------------------------

RULES.update(
    {
        # who operates the system
        "portal_region_code": names.region_code_rule,
        "portal_org": org.org_rule,
        "portal_service_user": accounts.service_user_rule,
        "portal_service_group": accounts.service_group_rule,
        "portal_service_home": paths.dedicated_dir_rule,
        # portal_domain
        "portal_domain_name": names.portal_name_rule,
        "portal_domain_zone": names.zone_rule,
        "portal_domain_fallback": names.host_name_rule,
        "portal_domain_aliases": names.host_names_rule,
        "portal_domain_address": net.ipv4_target_rule,
        "portal_domain_address6": net.ipv6_target_or_empty_rule,
        "portal_domain_ttl": values.ttl_rule,
        "portal_domain_dns_server": net.ip_target_rule,
        "portal_domain_dns_port": net.port_rule,
        "portal_domain_tsig_name": names.key_name_rule,
        "portal_domain_tsig_algorithm": secrets.tsig_algorithm_rule,
        "portal_domain_resolvers": net.resolvers_rule,
        "portal_domain_fallback_resolvers": net.resolvers_rule,
        "portal_domain_dns_timeout": values.positive_rule,
        "portal_domain_dns_attempts": values.positive_rule,
        "portal_domain_dns_retry_delay": values.non_negative_rule,
        "portal_domain_verify_retries": values.positive_rule,
        "portal_domain_verify_delay": values.non_negative_rule,
        # portal_https
        "portal_https_extra_names": nginx.server_names_rule,
        "portal_https_fallback_extra_names": nginx.server_names_rule,
        "portal_https_certificate_file": values.one_line_rule,
        "portal_https_chain_file": values.one_line_rule,
        "portal_https_fallback_certificate_file": values.one_line_rule,
        "portal_https_fallback_chain_file": values.one_line_rule,
        "portal_https_russian_trusted_root_file": values.one_line_rule,
        "portal_https_russian_trusted_root_sha256": values.sha256_rule,
        "portal_https_csr_subject": subjects.csr_subject_rule,
        "portal_https_expiry_warning_days": values.positive_rule,
        "portal_https_lab_certificate_days": values.positive_rule,
        "portal_https_http_port": net.port_rule,
        "portal_https_https_port": net.port_rule,
        "portal_https_hsts_max_age": values.positive_rule,
        "portal_https_ssl_ciphers": nginx.ciphers_rule,
        "portal_https_ssl_ecdh_curve": nginx.curves_rule,
        "portal_https_resolvers": nginx.resolvers_rule,
        "portal_https_trusted_certificate": paths.absolute_path_rule,
        "portal_https_upstream": nginx.upstream_rule,
        "portal_https_server_extra_config": nginx.extra_config_rule,
        "portal_https_tls_dir": paths.dedicated_dir_rule,
        "portal_https_webroot": paths.dedicated_dir_rule,
        "portal_https_ownca_dir": values.one_line_rule,
        "portal_https_acme_directory": acme.directory_rule,
        "portal_https_acme_email": acme.email_or_empty_rule,
        "portal_https_acme_renew_days": acme.renew_days_rule,
        "portal_https_acme_ca_bundle": acme.ca_bundle_rule,
        "portal_https_acme_eab_kid": acme.eab_kid_rule,
        "portal_https_acme_webroot": paths.dedicated_dir_rule,
        # cryptopro
        "cryptopro_container": names.container_rule,
        "cryptopro_export_dir": paths.dedicated_dir_rule,
        "cryptopro_private_dir": paths.dedicated_dir_rule,
        "cryptopro_config_dir": paths.dedicated_dir_rule,
        "cryptopro_signer_path": paths.absolute_path_rule,
        "cryptopro_subject": subjects.cryptopro_subject_rule,
        "cryptopro_certificate_file": values.one_line_rule,
        "cryptopro_selfsigned_days": values.positive_rule,
        "cryptopro_selfsigned_renew_days": values.positive_rule,
        "cryptopro_artifacts_dir": values.one_line_rule,
        "cryptopro_openssl_packages": values.packages_rule,
        "cryptopro_distribution": values.one_line_rule,
        "cryptopro_distribution_sha256": values.sha256_or_empty_rule,
        "cryptopro_version_package": values.package_rule,
        "cryptopro_install_dir": paths.dedicated_dir_rule,
        "cryptopro_rng_gamma_file": values.one_line_rule,
        "cryptopro_csptest": paths.absolute_path_rule,
        "cryptopro_certmgr": paths.absolute_path_rule,
        "cryptopro_cryptcp": paths.absolute_path_rule,
        "cryptopro_cpconfig": paths.absolute_path_rule,
        # esia_client
        "esia_client_mnemonic": names.mnemonic_rule,
        "esia_client_scopes": values.scopes_rule,
        "esia_client_base_url": nginx.base_url_rule,
        "esia_client_logout_path": nginx.url_path_rule,
        "esia_client_person_path": nginx.url_path_rule,
        "esia_client_redirect_path": nginx.url_path_rule,
        "esia_client_redirect_uris_extra": nginx.https_urls_rule,
        "esia_client_logout_redirect_path": nginx.url_path_rule,
        "esia_client_config_dir": paths.dedicated_dir_rule,
        "esia_client_esia_certificate": paths.absolute_path_rule,
        "esia_client_esia_certificate_src": values.one_line_rule,
        "esia_client_esia_certificate_min_days": values.positive_rule,
        "esia_client_time_max_offset": values.positive_rule,
        "esia_client_probe_timeout": values.positive_rule,
        "esia_client_probe_ca_bundle": values.one_line_rule,
        "esia_client_is_name": values.one_line_nonempty_rule,
        "esia_client_org_type": values.one_line_rule,
        "esia_client_signatory_name": values.one_line_rule,
        "esia_client_signatory_position": values.one_line_rule,
        "esia_client_application_email": org.email_rule,
        "esia_client_application_dir": values.one_line_rule,
        "esia_client_packages": values.packages_rule,
        # portal_base
        "portal_base_timezone": values.timezone_rule,
        "portal_base_ntp_servers": net.ntp_sources_rule,
        "portal_base_ntp_pools": net.ntp_sources_rule,
        "portal_base_ntp_local_stratum": values.stratum_rule,
        "portal_base_time_max_offset": values.positive_rule,
        "portal_base_time_sync_timeout": values.positive_rule,
        "portal_base_packages": values.packages_rule,
        "portal_base_extra_packages": values.packages_rule,
        "portal_base_apt_cache_valid_time": values.non_negative_rule,
    }
)


def _bind_names(rules: dict[str, Rule]) -> None:
    """A shared rule (one that takes ``setting=``) gets the name it is registered under."""
    for name, rule in list(rules.items()):
        target = rule.func if isinstance(rule, functools.partial) else rule
        if "setting" in inspect.signature(target).parameters:
            rules[name] = functools.partial(target, setting=name)


_bind_names(RULES)

# esia_client, issue 13: the rules of module_utils/esia_onboard/esia.py
from ansible.module_utils.esia_onboard import esia  # noqa: E402

RULES.update(
    {
        "esia_client_token_alg": esia.token_alg_rule,
        "esia_client_esia_certificates": esia.esia_certificates_rule,
        "esia_client_org_scopes": esia.org_scopes_rule,
        "esia_client_org_type": esia.org_type_rule,
        "esia_client_standard_solutions_date": esia.standard_solutions_date_rule,
    }
)
CROSS_RULES += [esia.portal_org_type_rule, esia.standard_solutions_problems, esia.certificate_files_cross]
WARNINGS += [esia.standard_solutions_warnings, esia.certificate_files_warning]

# portal_monitoring, issue 15: the rules of module_utils/esia_onboard/monitoring.py
from ansible.module_utils.esia_onboard import monitoring  # noqa: E402

RULES.update(
    {
        "portal_status_warn_days": monitoring.days_rule,
        "portal_status_critical_days": monitoring.days_rule,
        "portal_monitoring_state_file": monitoring.path_rule,
        "portal_monitoring_prometheus_textfile_dir": monitoring.path_rule,
        "portal_monitoring_zabbix_include_dir": monitoring.path_rule,
        "portal_monitoring_extra_certificates": monitoring.extra_certificates_rule,
        "portal_monitoring_refresh_on_calendar": monitoring.on_calendar_rule,
        "portal_monitoring_zabbix_agent_service": monitoring.agent_service_rule,
    }
)
_bind_names(RULES)
CROSS_RULES += [monitoring.thresholds_problems]

CROSS_RULES += [
    names.names_in_zone_cross,
    names.fallback_cross,
    names.national_tld_cross,
    accounts.not_connecting_user_cross,
    nginx.distinct_ports_cross,
    values.renewal_window_cross,
    subjects.default_subject_cross,
    acme.acme_cross,
    consistency.https_upstream_cross,
    consistency.https_fallback_cross,
]

WARNINGS += [
    secrets.tsig_algorithm_warning,
]

# cryptopro, issue 13: module_utils/esia_onboard/cryptopro.py (the role's entry check also looks at the files)
from ansible.module_utils.esia_onboard import cryptopro  # noqa: E402

CROSS_RULES.append(functools.partial(cryptopro.rules, check_files=False))
WARNINGS.append(cryptopro.warnings)

SECRET_RULES.update(
    {
        "portal_domain_tsig_secret": secrets.tsig_secret_rule,
        "cryptopro_pin": secrets.pin_rule,
        "cryptopro_license_serial": secrets.license_serial_rule,
        "portal_https_private_key": secrets.pem_key_or_empty_rule,
        "portal_https_fallback_private_key": secrets.pem_key_or_empty_rule,
        "portal_https_acme_account_key": acme.account_key_rule,
        "portal_https_acme_eab_hmac_key": acme.eab_hmac_rule,
    }
)
_bind_names(SECRET_RULES)

# Secret rules that also read public settings (given to them in ``settings``).
SECRET_CROSS_RULES: dict[str, list[Rule]] = {
    name: [functools.partial(consistency.private_key_source_rule, setting=name)]
    for name in ("portal_https_private_key", "portal_https_fallback_private_key")
}
