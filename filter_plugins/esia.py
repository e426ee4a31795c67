"""Filters `esia_scopes`, `esia_scope_string`, `esia_scope_details`: the ESIA scope catalogue;
`esia_client_problems`, `esia_client_warnings`, `esia_certificate_targets`, `esia_certificate_checks`:
glue to the rules in module_utils/esia_onboard/esia.py (ESIA's certificates, token algorithm,
scope_org, organisation type, the standard-solutions deadline).

The catalogue is data (data/esia_scope_catalogue.yml), read once on first use.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import ansible.module_utils
import yaml
from ansible.errors import AnsibleFilterError

_MODULE_UTILS = str(Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
from ansible.module_utils.esia_onboard import esia as esia_rules  # noqa: E402

_CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "esia_scope_catalogue.yml"
_REQUIRED_SCOPE = "openid"
# `name`, or `name?key=value&key=value` (fullname?oid=123, org_shortname?org_oid=123).
_SCOPE = re.compile(
    r"(?P<name>[A-Za-z0-9_]+)(?:\?(?P<params>[A-Za-z_][A-Za-z0-9_]*=[^\s&=?#]+(?:&[A-Za-z_][A-Za-z0-9_]*=[^\s&=?#]+)*))?",
    re.ASCII,
)
# The legacy URI form, e.g. http://esia.gosuslugi.ru/usr_inf (production or test host).
_LEGACY_URI = re.compile(r"https?://esia(?:-portal1\.test)?\.gosuslugi\.ru/(?P<name>[A-Za-z0-9_]+)/?", re.ASCII)


@functools.cache
def _catalogue_data() -> dict:
    try:
        with _CATALOGUE_PATH.open(encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
        return {
            "groups": {group["name"]: dict(group) for group in data["groups"]},
            "scopes": {entry["name"]: dict(entry) for entry in data["scopes"]},
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"esia_scopes: cannot read the scope catalogue {_CATALOGUE_PATH}: {exc}") from exc


def scope_catalogue() -> dict[str, dict]:
    """The catalogue's scopes by name, in catalogue order (read on first use)."""
    return _catalogue_data()["scopes"]


def scope_groups() -> dict[str, dict]:
    """The catalogue's groups by name, in catalogue order."""
    return _catalogue_data()["groups"]


def _extra_names(extra: object) -> set[str]:
    if extra is None:
        return set()
    if isinstance(extra, str) or not isinstance(extra, Iterable):
        raise AnsibleFilterError(
            f"esia_scopes: extra allowed names must be a list of strings, got {type(extra).__name__}"
        )
    names = list(extra)
    bad = [repr(name) for name in names if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name)]
    if bad:
        raise AnsibleFilterError(
            f"esia_scopes: extra allowed names must be plain scope names (letters, digits, _), got {', '.join(bad)}"
        )
    return set(names)


def _suggestion(name: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else "no similar known scope"


def _normalise_item(index: int, item: object, known: set[str]) -> tuple[str | None, str | None]:
    """(normalised scope, None) or (None, problem) for one list item."""
    if not isinstance(item, str):
        return None, f"item {index} is {type(item).__name__} ({item!r}), not a string"
    legacy = _LEGACY_URI.fullmatch(item)
    scope = legacy["name"] if legacy else item
    parsed = _SCOPE.fullmatch(scope)
    if parsed is None:
        if not item or any(char.isspace() for char in item):
            return None, f"item {index} ({item!r}) is empty or contains whitespace: give one scope per list item"
        return None, f"item {index} ({item!r}) is not a scope name, name?key=value, or an ESIA scope URI"
    name = parsed["name"]
    if name not in known:
        return None, f"unknown scope {item!r} ({_suggestion(name, known)})"
    if name == _REQUIRED_SCOPE and parsed["params"]:
        return None, f"item {index} ({item!r}): {_REQUIRED_SCOPE} takes no parameters"
    return str(scope), None


def esia_scopes(scopes: object, extra: object = None) -> list[str]:
    """Validate a list of ESIA scopes: known names only, no duplicates (first kept), `openid` first.

    Legacy URIs (http://esia.gosuslugi.ru/NAME) become NAME; parameterised forms
    (NAME?key=value) are kept as written when NAME is known. `extra` names are
    accepted in addition to the catalogue's. Every problem is reported at once.
    """
    if isinstance(scopes, (str, bytes)) or not isinstance(scopes, Sequence):
        raise AnsibleFilterError(
            f"esia_scopes expects a list of scope names, got {type(scopes).__name__}"
            + (" (split a space-separated string first: `| split`)" if isinstance(scopes, str) else "")
        )
    if not scopes:
        raise AnsibleFilterError(f"esia_scopes: the scope list is empty; at least {_REQUIRED_SCOPE!r} is required")
    known = set(scope_catalogue()) | _extra_names(extra)
    result: list[str] = []
    problems: list[str] = []
    for index, item in enumerate(scopes):
        scope, problem = _normalise_item(index, item, known)
        if problem:
            problems.append(problem)
        elif scope not in result:
            result.append(scope)
    if _REQUIRED_SCOPE not in result:
        problems.append(f"{_REQUIRED_SCOPE!r} is missing (ESIA requires it for authentication)")
    if problems:
        raise AnsibleFilterError(f"esia_scopes: {len(problems)} problem(s): " + "; ".join(problems))
    result.remove(_REQUIRED_SCOPE)
    return [_REQUIRED_SCOPE, *result]


def esia_scope_string(scopes: object, extra: object = None) -> str:
    """The validated scopes joined by single spaces, as ESIA's `scope` parameter wants them."""
    return " ".join(esia_scopes(scopes, extra))


def esia_scope_details(scopes: object, extra: object = None) -> list[dict]:
    """The validated scopes with their catalogue entries (group, ru, en, seed), for forms and docs."""
    catalogue = scope_catalogue()
    details = []
    for scope in esia_scopes(scopes, extra):
        name = scope.split("?", 1)[0]
        entry = catalogue.get(name, {"group": "extra", "ru": "", "en": "", "seed": False, "confirmed": False})
        details.append({**entry, "name": name, "scope": scope})
    return details


_MARKDOWN_INTRO = """\
# ESIA scopes known to esia-onboard

<!-- Generated from filter_plugins/data/esia_scope_catalogue.yml by
     `python -m filter_plugins.esia > docs/scopes.md`; edit the catalogue, not this file. -->

`esia_client_scopes` is checked against this list by the `esia_scopes` filter
(`esia_scope_string` gives the space-separated `scope` parameter):

- every name must be listed here, or be passed as an extra allowed name
  (`esia_client_scopes | esia_scopes(['new_scope'])`) for scopes added to ESIA
  after this catalogue; an unknown name fails with the closest known one;
- duplicates are dropped (the first occurrence stays), the order is kept and
  `openid` is moved first; `openid` is required;
- parameterised forms `NAME?key=value[&key=value]` (`fullname?oid=123`,
  `org_shortname?org_oid=123`, `prm_chg?oid=123`) are accepted when NAME is
  listed and are sent as written; `openid` takes no parameters;
- legacy URI forms `http://esia.gosuslugi.ru/NAME` (or the test host
  `esia-portal1.test.gosuslugi.ru`) are accepted when NAME is listed and are
  sent as the short NAME, the form the v2/v3 endpoints take.

Organisation scopes (`org_*`, the "Data of the user's organisation" table) go
into `esia_client_org_scopes`, never into `esia_client_scopes` (refused there
by `validate.yml` and the role, naming the fix): ESIA takes them as a separate
`scope_org` parameter, signed right after `scope` as client_id + scope +
scope_org + timestamp + state + redirect_uri [+ code] (ilimurzin/esia 4.x,
`src/Esia/Esia.php`); v2 only.

Every scope sent must also be approved for the information system in ESIA,
otherwise ESIA answers ESIA-007019.

"Seed" marks the {seed_count} scopes of the test-environment application in the
original procedure. "Unconfirmed" descriptions could not be checked against the
current Методические рекомендации; the names themselves are in use.

Seed list / список из заявки:

```
{seed_list}
```
"""


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def scope_catalogue_markdown() -> str:
    """docs/scopes.md: the catalogue as Markdown tables, one per group."""
    catalogue = scope_catalogue()
    seed = [name for name, entry in catalogue.items() if entry.get("seed")]
    parts = [_MARKDOWN_INTRO.format(seed_count=len(seed), seed_list=" ".join(seed))]
    for group_name, group in scope_groups().items():
        entries = [entry for entry in catalogue.values() if entry["group"] == group_name]
        parts.append(f"\n## {group['en']} / {group['ru']}\n\n")
        parts.append("| scope | описание | description | seed | note |\n|---|---|---|---|---|\n")
        for entry in entries:
            parts.append(
                f"| `{entry['name']}` | {_markdown_cell(entry['ru'])} | {_markdown_cell(entry['en'])} "
                f"| {'yes' if entry.get('seed') else ''} | {'' if entry.get('confirmed') else 'unconfirmed'} |\n"
            )
    return "".join(parts)


def _x509() -> ModuleType:
    """filter_plugins/x509.py (loaded once, by module_utils/esia_onboard/esia.py)."""
    return esia_rules.x509_filters()


def esia_client_problems(settings: object, today: object = None) -> list[str]:
    """Every problem of the esia_client settings (module_utils/esia_onboard/esia.py), ESIA's
    certificates on the controller included; empty when fine."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(f"esia_client_problems expects a mapping of settings, got {type(settings).__name__}")
    return esia_rules.role_problems(settings, today, _x509().x509_info)


def esia_client_warnings(settings: object, today: object = None) -> list[str]:
    """Non-fatal findings: the standard-solutions deadline, ESIA certificates about to expire."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(f"esia_client_warnings expects a mapping of settings, got {type(settings).__name__}")
    return esia_rules.role_warnings(settings, today, _x509().x509_info)


def esia_certificate_targets(
    sources: object, directory: str, legacy_src: str = "", legacy_dest: str = ""
) -> list[dict]:
    """[{src, dest}] for installing ESIA's certificates on the host."""
    problems = esia_rules.certificate_list_problems(sources)
    if problems:
        raise AnsibleFilterError("; ".join(problems))
    return esia_rules.certificate_targets(list(sources), directory, legacy_src or "", legacy_dest or "")


def esia_certificate_files(targets: object, group: str) -> list[dict]:
    """portal_files entries for ESIA's certificates: each {src, dest} target read on the
    controller (PEM or DER, so as base64), world-readable, in the service group."""
    if not isinstance(targets, Sequence) or isinstance(targets, (str, bytes)):
        raise AnsibleFilterError(
            f"esia_certificate_files expects a list of {{src, dest}}, got {type(targets).__name__}"
        )
    entries = []
    for target in targets:
        try:
            data = Path(target["src"]).read_bytes()
        except OSError as exc:
            raise AnsibleFilterError(
                f"esia_client_esia_certificates: cannot read {target['src']} on the controller ({exc.strerror})"
            ) from exc
        content = base64.b64encode(data).decode("ascii")
        entries.append({"dest": target["dest"], "content_b64": content, "group": group, "mode": "0644"})
    return entries


def esia_certificate_checks(
    slurped: object, token_alg: str, environment: str, min_days: int = 30, required: bool = False
) -> list[dict]:
    """Self-check lines for ESIA's certificates read on the host (results of a slurp loop:
    each with `source`/`item` and `content`, or failed) or installed there from the controller
    ({src, dest}: the controller's copy is read). One {step, status, detail} each, plus a
    summary FAIL when production has no valid certificate; WARN becomes FAIL when `required`."""
    entries = []
    for result in slurped if isinstance(slurped, Sequence) else []:
        path = result.get("source") or result.get("item") or result.get("dest") or "?"
        if "content" not in result and result.get("src"):
            # {src, dest}: what the role installs, judged from the controller's copy
            try:
                data = Path(result["src"]).read_bytes()
            except OSError as exc:
                entries.append(
                    {"path": path, "error": f"cannot read {result['src']} on the controller: {exc.strerror}"}
                )
            else:
                entries.append(esia_rules.certificate_entry(path, data, _x509().x509_info))
            continue
        if "content" not in result:
            entries.append({"path": path, "error": (result.get("msg") or "missing on the host").strip()})
            continue
        try:
            data = base64.b64decode(result["content"])
        except (binascii.Error, ValueError) as exc:
            entries.append({"path": path, "error": str(exc)})
            continue
        entries.append(esia_rules.certificate_entry(path, data, _x509().x509_info))
    findings = esia_rules.certificate_findings(entries, token_alg, environment, None, min_days)
    checks = []
    for check in findings["checks"]:
        status = "FAIL" if (check["status"] == "WARN" and required) else check["status"]
        checks.append({"step": "esia_certificate", "status": status, "detail": check["detail"]})
    if not entries:
        checks.append(
            {
                "step": "esia_certificate",
                "status": "FAIL" if (required or environment == "prod") else "WARN",
                "detail": "no ESIA certificate on the host: list ESIA's certificates in esia_client_esia_certificates "
                "(docs/runbooks/08-renewal-rotation.md)",
            }
        )
    elif environment == "prod" and findings["problems"] and not any(c["status"] == "OK" for c in checks):
        checks.append({"step": "esia_certificate", "status": "FAIL", "detail": findings["problems"][-1]})
    return checks


def esia_client_certificate(der: object, crypto: object) -> dict:
    """The IS certificate the esia_client role reads on the host (base64 of DER): GOST R 34.10-2012,
    valid now, and the one the cryptopro role recorded (same Streebog-256). Its x509_info; raises
    naming the 'certificate' step of the self-check otherwise."""
    recorded = crypto if isinstance(crypto, Mapping) else {}
    path = recorded.get("certificate_der", "the IS certificate")
    try:
        info = _x509().x509_require_gost2012(der)
    except AnsibleFilterError as exc:
        raise AnsibleFilterError(f"ESIA self-check step 'certificate' failed for {path}: {exc}") from exc
    if info["streebog256"].upper() != str(recorded.get("streebog256", "")).upper():
        raise AnsibleFilterError(
            f"ESIA self-check step 'certificate' failed for {path}: the certificate at {path} (Streebog-256 "
            f"{info['streebog256']}) is not the one the cryptopro role recorded ({recorded.get('streebog256')}); "
            "re-run playbooks/cryptopro.yml"
        )
    return info


class FilterModule:
    def filters(self) -> dict:
        return {
            "esia_scopes": esia_scopes,
            "esia_scope_string": esia_scope_string,
            "esia_scope_details": esia_scope_details,
            "esia_client_problems": esia_client_problems,
            "esia_client_warnings": esia_client_warnings,
            "esia_certificate_targets": esia_certificate_targets,
            "esia_certificate_checks": esia_certificate_checks,
            "esia_certificate_files": esia_certificate_files,
            "esia_client_certificate": esia_client_certificate,
        }


if __name__ == "__main__":
    print(scope_catalogue_markdown(), end="")
