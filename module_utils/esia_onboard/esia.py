"""ESIA rules: token algorithm and ESIA's certificates, scope_org, organisation type, the
standard-solutions deadline (role esia_client).

Every function returns a list of problems (``core.problem``) or of warnings (same shape);
an empty list means fine. Certificates come in already parsed (the ``x509_info`` dict, or
``{"error": ...}``), so nothing here reads files or imports Ansible.

Sources (see roles/esia_client/README.md, "Evidence"):

- scope_org: ilimurzin/esia 4.x, src/Esia/Esia.php (buildUrl, getToken, refreshToken) signs
  ``clientId . scopes . organizationScopes . timestamp . state . redirectUrl [. code]`` and sends
  ``scope`` and ``scope_org`` as two parameters.
- ESIA's certificates: ekapusta/oauth2-esia resources/README.md (ESIA publishes its GOST and RSA
  certificates in http://esia.gosuslugi.ru/public/esia.zip); AISGorod.AspNetCore.Authentication.Esia
  src/Esia/EsiaCertificates.cs (an RSA production certificate valid 2024-05-12..2025-05-12: a
  yearly rotation).
- Organisation types: Регламент ЕСИА, section 4.1, footnote 6 (consultant.ru,
  cons_doc_LAW_188493).
- The 2027-01-01 deadline: shared/notes/esia.md ("reports from 2025"; no official text found
  by this toolkit's authors): unconfirmed, so it is a setting and a warning.
"""

from __future__ import annotations

import base64
import datetime as _dt
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ansible.module_utils.esia_onboard.core import UNSET, problem

# esia_client_token_alg -> the key type (x509_info's key_algorithm) ESIA's certificate must have.
TOKEN_ALGORITHMS: dict[str, str] = {"GOST3410_2012_256": "gost2012_256", "RS256": "rsa"}

# The Регламент's list of organisation types (section 4.1, footnote 6), in its order.
ORG_TYPES: tuple[str, ...] = (
    "Федеральный орган исполнительной власти",
    "Государственный внебюджетный фонд",
    "Орган исполнительной власти субъекта РФ",
    "Орган местного самоуправления",
    "Государственное учреждение",
    "Муниципальное учреждение",
    "Многофункциональный центр",
    "Иная организация",
)
ORG_TYPES_SOURCE = "Регламент ЕСИА, раздел 4.1, сноска 6"

STANDARD_SOLUTIONS_SOURCE = (
    "shared/notes/esia.md (reports from 2025, unconfirmed by an official text): from the date connections must use "
    "the standard solutions of the current Методические рекомендации по использованию ЕСИА (self-written modules "
    "only until the day before, for systems already connected) and the v1 flow (/aas/oauth2/ac, /te) ends"
)
STANDARD_SOLUTIONS_CHECK = (
    "check the current Методические рекомендации and the ESIA technology portal for the standard solutions and the "
    "date; move the portal to a standard solution and to API v2 (esia_client_api_version: v2)"
)
V1_OVERRIDE = "esia_client_allow_v1_after_standard_solutions_date"

# `name`, `name?key=value...`, or the legacy URI form http(s)://esia[-portal1.test].gosuslugi.ru/name.
_SCOPE_NAME = re.compile(
    r"(?:https?://esia(?:-portal1\.test)?\.gosuslugi\.ru/)?(?P<name>[A-Za-z0-9_]+)(?:/|\?.*)?", re.ASCII | re.DOTALL
)


def _given(value: Any) -> bool:
    return value is not None and value != UNSET


def parse_date(value: Any) -> _dt.date | None:
    """A date from YYYY-MM-DD text or a date; None when it is neither."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _moment(value: str) -> _dt.datetime:
    moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


def _now(today: Any) -> _dt.datetime:
    if isinstance(today, _dt.datetime):
        return today if today.tzinfo else today.replace(tzinfo=_dt.UTC)
    day = parse_date(today)
    if day is not None:
        return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC)
    return _dt.datetime.now(_dt.UTC)


# --- token algorithm and ESIA's certificates -------------------------------------------------


def token_alg_problems(value: Any) -> list[str]:
    """esia_client_token_alg is one of the algorithms the technology portal offers."""
    if isinstance(value, str) and value in TOKEN_ALGORITHMS:
        return []
    return [
        problem(
            "esia_client_token_alg",
            value,
            f"set one of {', '.join(TOKEN_ALGORITHMS)}: the algorithm of ESIA's token signatures chosen for the IS on "
            "the technology portal",
        )
    ]


def certificate_list_problems(value: Any, setting: str = "esia_client_esia_certificates") -> list[str]:
    """A list of controller-side file paths, no two with the same file name (they share one directory on the host)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [
            problem(
                setting,
                value,
                "give a list of files on the controller, e.g. ['{{ inventory_dir }}/files/esia-2026.cer']",
            )
        ]
    problems = []
    names: dict[str, str] = {}
    for item in value:
        if not isinstance(item, str) or not item.strip() or item != item.strip() or "\n" in item:
            problems.append(problem(setting, item, "each item is one path to a certificate file on the controller"))
            continue
        name = item.rsplit("/", 1)[-1]
        if name in names:
            problems.append(
                problem(
                    setting, item, f"has the same file name as {names[name]!r}; rename one (both go to one directory)"
                )
            )
        names[name] = item
    return problems


def certificate_targets(
    sources: Sequence[str], directory: str, legacy_src: str = "", legacy_dest: str = ""
) -> list[dict]:
    """Where each controller-side certificate goes on the host: [{src, dest}], in the given order.

    The list goes into ``directory``; the deprecated single ``esia_client_esia_certificate_src``
    (when set) keeps its old destination ``esia_client_esia_certificate``.
    """
    targets = [{"src": src, "dest": f"{directory.rstrip('/')}/{src.rsplit('/', 1)[-1]}"} for src in sources]
    if legacy_src:
        targets.append({"src": legacy_src, "dest": legacy_dest})
    return targets


def certificate_findings(
    certificates: Sequence[Mapping[str, Any]],
    token_alg: str,
    environment: str,
    today: Any = None,
    min_days: int = 30,
    setting: str = "esia_client_esia_certificates",
) -> dict[str, list]:
    """Judge ESIA's certificates: ``{"problems": [...], "warnings": [...], "checks": [...]}``.

    ``certificates``: ``[{"path": ..., "info": x509_info dict}]`` or ``[{"path": ..., "error": text}]``.
    A certificate whose key type does not match ``token_alg`` or that cannot be read is a problem;
    one that has expired or expires within ``min_days`` is a warning; in ``prod`` at least one
    currently valid certificate of the right type is required. ``checks`` has one
    ``{path, status (OK|WARN|FAIL), detail}`` per certificate, for the self-check report.
    """
    now = _now(today)
    expected = TOKEN_ALGORITHMS.get(token_alg)
    problems: list[str] = []
    warnings: list[str] = []
    checks: list[dict] = []
    valid = 0
    fix_rotation = (
        "download ESIA's current certificates (esia.zip) and list old and new (docs/runbooks/08-renewal-rotation.md)"
    )
    for entry in certificates:
        path = entry.get("path", "?")
        info = entry.get("info")
        if not info:
            text = f"{path} is not a readable certificate ({entry.get('error', 'missing')})"
            problems.append(problem(setting, path, f"{text}: {fix_rotation}"))
            checks.append({"path": path, "status": "FAIL", "detail": text})
            continue
        subject, not_after = info.get("subject", "?"), info.get("not_after", "")
        key = info.get("key_algorithm", "unknown")
        if expected and key != expected:
            text = (
                f"{path} ({subject}) has a {key} key, but esia_client_token_alg is {token_alg}, which needs a "
                f"{expected} certificate"
            )
            problems.append(
                problem(
                    setting,
                    path,
                    f"{text}: take ESIA's {token_alg} certificate from esia.zip, or set "
                    "esia_client_token_alg to what the technology portal shows",
                )
            )
            checks.append({"path": path, "status": "FAIL", "detail": text})
            continue
        try:
            starts, ends = _moment(info["not_before"]), _moment(not_after)
        except (KeyError, ValueError):
            problems.append(problem(setting, path, "its validity dates cannot be read"))
            checks.append({"path": path, "status": "FAIL", "detail": f"{path}: validity dates unreadable"})
            continue
        days = (ends - now).days
        if ends <= now:
            text = f"{path} ({subject}) expired on {not_after}"
            warnings.append(problem(setting, path, f"{text}; remove it once its successor is listed"))
            checks.append({"path": path, "status": "WARN", "detail": text})
        elif starts > now:
            text = f"{path} ({subject}) is not valid before {info['not_before']}"
            text += " (a successor, kept beside the current one)"
            checks.append({"path": path, "status": "OK", "detail": text})
        else:
            valid += 1
            if days < int(min_days):
                text = f"{path} ({subject}) expires on {not_after}, in {days} day(s)"
                warnings.append(problem(setting, path, f"{text}: {fix_rotation}"))
                checks.append({"path": path, "status": "WARN", "detail": text})
            else:
                checks.append({"path": path, "status": "OK", "detail": f"{path} ({subject}) valid until {not_after}"})
    if environment == "prod" and valid == 0:
        problems.append(
            problem(
                setting,
                [entry.get("path") for entry in certificates],
                f"production needs at least one currently valid {token_alg} certificate of ESIA to verify its tokens: "
                f"{fix_rotation}",
            )
        )
    elif not certificates:
        warnings.append(
            problem(
                setting,
                [],
                "no ESIA certificate is installed, so the portal cannot verify ESIA's tokens; fine for "
                "a lab, required in prod: " + fix_rotation,
            )
        )
    return {"problems": problems, "warnings": warnings, "checks": checks}


# --- scopes ---------------------------------------------------------------------------------


def _scope_name(item: str) -> str:
    match = _SCOPE_NAME.fullmatch(item)
    return match["name"] if match else item


def org_scope_problems(scopes: Any, org_scopes: Any) -> list[str]:
    """Organisation scopes (org_*) go in esia_client_org_scopes only; nothing else goes there.

    ESIA takes them as a separate ``scope_org`` parameter, signed right after ``scope``
    (ilimurzin/esia 4.x, src/Esia/Esia.php).
    """
    problems = []
    if isinstance(scopes, Sequence) and not isinstance(scopes, (str, bytes)):
        moved = [item for item in scopes if isinstance(item, str) and _scope_name(item).startswith("org_")]
        if moved:
            problems.append(
                problem(
                    "esia_client_scopes",
                    moved,
                    "organisation scopes are sent separately as scope_org: move them to esia_client_org_scopes "
                    f"(esia_client_org_scopes: {[_scope_name(item) if '://' in item else item for item in moved]})",
                )
            )
    if not _given(org_scopes):
        return problems
    if isinstance(org_scopes, (str, bytes)) or not isinstance(org_scopes, Sequence):
        return [
            *problems,
            problem("esia_client_org_scopes", org_scopes, "give a list of org_* scope names, one per item"),
        ]
    for item in org_scopes:
        if not isinstance(item, str) or not re.fullmatch(
            r"org_[a-z_]+(\?[A-Za-z_]+=[^\s&=?#]+(&[A-Za-z_]+=[^\s&=?#]+)*)?", item
        ):
            problems.append(
                problem(
                    "esia_client_org_scopes",
                    item,
                    "only organisation scopes go here (org_shortname, org_ogrn, ..., optionally org_NAME?org_oid=N); "
                    "person scopes and openid belong in esia_client_scopes",
                )
            )
    return problems


def org_scopes_api_problems(org_scopes: Any, api_version: Any) -> list[str]:
    """scope_org exists in the v2 flow only (the reference clients send it to v2/ac and v3/te)."""
    if api_version == "v1" and isinstance(org_scopes, Sequence) and not isinstance(org_scopes, str) and org_scopes:
        return [
            problem(
                "esia_client_org_scopes",
                list(org_scopes),
                "scope_org is a parameter of the v2 flow (v2/ac, v3/te): set esia_client_api_version: v2, "
                "or leave esia_client_org_scopes empty",
            )
        ]
    return []


# --- the Appendix E form ------------------------------------------------------------------------


def org_type_problems(value: Any, setting: str = "portal_org.type") -> list[str]:
    """The organisation type is one of the Регламент's types, spelt as listed."""
    if value in ORG_TYPES:
        return []
    return [problem(setting, value, f"choose one of the {ORG_TYPES_SOURCE} types: {'; '.join(ORG_TYPES)}")]


# --- the standard-solutions deadline ---------------------------------------------------------------


def _deadline(settings: Mapping[str, Any]) -> tuple[_dt.date | None, list[str]]:
    raw = settings.get("esia_client_standard_solutions_date", "2027-01-01")
    raw = "2027-01-01" if not _given(raw) else raw
    day = parse_date(raw)
    if day is None:
        return None, [
            problem("esia_client_standard_solutions_date", raw, "write the date as YYYY-MM-DD, e.g. '2027-01-01'")
        ]
    return day, []


def standard_solutions_warnings(settings: Mapping[str, Any], today: Any = None) -> list[str]:
    """Warnings about the standard-solutions deadline, with the source and what to check.

    ``settings`` holds esia_client_environment, esia_client_api_version,
    esia_client_standard_solutions_date and esia_client_allow_v1_after_standard_solutions_date
    (role defaults applied). Always one warning (the deadline concerns every self-written
    client, this toolkit's signer included); one more when the flow is v1.
    """
    day, problems = _deadline(settings)
    if day is None:
        return problems
    now = _now(today).date()
    api = settings.get("esia_client_api_version", "v2")
    when = f"since {day.isoformat()}" if now >= day else f"from {day.isoformat()} (in {(day - now).days} day(s))"
    warnings = [
        problem(
            "esia_client_standard_solutions_date",
            day.isoformat(),
            f"{when} ESIA connections must use standard solutions. Source: {STANDARD_SOLUTIONS_SOURCE}. "
            f"What to check: {STANDARD_SOLUTIONS_CHECK}",
        )
    ]
    if api == "v1":
        warnings.append(
            problem(
                "esia_client_api_version",
                api,
                f"the v1 flow ends on {day.isoformat()}{' (passed)' if now >= day else ''}: "
                "switch to v2 (v2/ac + v3/te) before then; in prod v1 is refused from that "
                f"date unless {V1_OVERRIDE}: true",
            )
        )
    return warnings


def standard_solutions_problems(settings: Mapping[str, Any], today: Any = None) -> list[str]:
    """v1 in prod on or after the deadline is refused unless the named override is set."""
    day, problems = _deadline(settings)
    if day is None:
        return problems
    override = settings.get(V1_OVERRIDE, False)
    if _given(override) and not isinstance(override, bool):
        return [problem(V1_OVERRIDE, override, "write true or false (a YAML boolean, not a string)")]
    if (
        settings.get("esia_client_environment") == "prod"
        and settings.get("esia_client_api_version") == "v1"
        and _now(today).date() >= day
        and override is not True
    ):
        return [
            problem(
                "esia_client_api_version",
                "v1",
                f"the v1 flow ended on {day.isoformat()} ({STANDARD_SOLUTIONS_SOURCE}): "
                "set esia_client_api_version: v2; "
                f"only if ESIA confirmed in writing that v1 still works for this IS, set {V1_OVERRIDE}: true",
            )
        ]
    return []


def settings_problems(settings: Mapping[str, Any], today: Any = None) -> list[str]:
    """Every esia rule above that needs no file: token algorithm, certificate list, scopes, org type, deadline."""
    problems = token_alg_problems(settings.get("esia_client_token_alg", "GOST3410_2012_256"))
    certificates = settings.get("esia_client_esia_certificates", [])
    problems += certificate_list_problems([] if not _given(certificates) else certificates)
    org_scopes = settings.get("esia_client_org_scopes", [])
    problems += org_scope_problems(settings.get("esia_client_scopes"), org_scopes)
    problems += org_scopes_api_problems(org_scopes, settings.get("esia_client_api_version", "v2"))
    org = settings.get("portal_org")
    if isinstance(org, Mapping) and "type" in org:
        problems += org_type_problems(org["type"])
    org_type = settings.get("esia_client_org_type")
    if _given(org_type) and isinstance(org_type, str) and "{{" not in org_type:
        problems += org_type_problems(org_type, "esia_client_org_type")
    problems += standard_solutions_problems(settings, today)
    return problems


# --- the registry's signatures (settings.py: RULES[name](value, settings), CROSS_RULES/WARNINGS(settings)) ---


def token_alg_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return token_alg_problems(value)


def esia_certificates_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return certificate_list_problems(value)


def org_scopes_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return org_scope_problems(settings.get("esia_client_scopes"), value) + org_scopes_api_problems(
        value, settings.get("esia_client_api_version", "v2")
    )


def org_type_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return [] if isinstance(value, str) and "{{" in value else org_type_problems(value, "esia_client_org_type")


def portal_org_type_rule(settings: Mapping[str, Any]) -> list[str]:
    org = settings.get("portal_org")
    return org_type_problems(org["type"]) if isinstance(org, Mapping) and "type" in org else []


def standard_solutions_date_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return _deadline({"esia_client_standard_solutions_date": value})[1]


# --- ESIA's certificates on the controller (validate.yml and the role's entry check) -------------


def _x509_info() -> Callable[[str], dict]:
    """The one certificate parser of the toolkit, filter_plugins/x509.py's x509_info (controller only)."""
    key = "esia_onboard_filter_x509"
    if key not in sys.modules:
        location = Path(__file__).resolve().parents[2] / "filter_plugins" / "x509.py"
        spec = importlib.util.spec_from_file_location(key, location)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key].x509_info


def certificate_entry(path: str, data: bytes, parse: Callable[[str], dict] | None = None) -> dict:
    """{path, info} or {path, error} for the bytes of a certificate file (PEM or DER)."""
    parse = parse or _x509_info()
    try:
        text = data.decode("ascii") if data.lstrip().startswith(b"-----BEGIN") else base64.b64encode(data).decode()
        return {"path": path, "info": parse(text)}
    except Exception as exc:  # the parser raises its own error types: each is reported, not raised
        return {"path": path, "error": str(exc)}


def controller_certificates(settings: Mapping[str, Any], parse: Callable[[str], dict] | None = None) -> list[dict]:
    """esia_client_esia_certificates (and the deprecated _src) read and parsed on the controller."""
    sources = settings.get("esia_client_esia_certificates") or []
    legacy = settings.get("esia_client_esia_certificate_src") or ""
    if not _given(sources) or certificate_list_problems(sources):
        sources = []
    entries = []
    for path in [*sources, *([legacy] if isinstance(legacy, str) and _given(legacy) and legacy else [])]:
        try:
            entries.append(certificate_entry(path, Path(path).read_bytes(), parse))
        except OSError as exc:
            entries.append({"path": path, "error": f"cannot read it on the controller: {exc.strerror}"})
    return entries


def _file_findings(settings: Mapping[str, Any], today: Any, parse: Callable[[str], dict] | None) -> dict:
    token_alg = settings.get("esia_client_token_alg", "GOST3410_2012_256")
    if token_alg_problems(token_alg):
        return {"problems": [], "warnings": [], "checks": []}  # reported by token_alg_rule
    min_days = settings.get("esia_client_esia_certificate_min_days", 30)
    return certificate_findings(
        controller_certificates(settings, parse),
        token_alg,
        settings.get("esia_client_environment", "test"),
        today,
        min_days if isinstance(min_days, int) and _given(min_days) else 30,
    )


def certificate_files_cross(settings: Mapping[str, Any], today: Any = None, parse=None) -> list[str]:
    """CROSS rule: ESIA's certificates readable, of the token algorithm's key type; one valid now in prod."""
    return _file_findings(settings, today, parse)["problems"]


def certificate_files_warning(settings: Mapping[str, Any], today: Any = None, parse=None) -> list[str]:
    """WARNING: ESIA's certificates expiring soon or expired, none at all outside prod, the deprecated _src."""
    warnings = _file_findings(settings, today, parse)["warnings"]
    legacy = settings.get("esia_client_esia_certificate_src")
    if isinstance(legacy, str) and _given(legacy) and legacy:
        warnings.append(
            problem(
                "esia_client_esia_certificate_src",
                legacy,
                "is deprecated: list the file in esia_client_esia_certificates (meanwhile it is still installed at "
                "esia_client_esia_certificate and checked)",
            )
        )
    return warnings


def role_problems(settings: Mapping[str, Any], today: Any = None, parse=None) -> list[str]:
    """Everything above for the role's entry check: settings_problems + certificate_files_cross."""
    return settings_problems(settings, today) + certificate_files_cross(settings, today, parse)


def role_warnings(settings: Mapping[str, Any], today: Any = None, parse=None) -> list[str]:
    """The role's warnings: the standard-solutions deadline and certificate_files_warning."""
    return standard_solutions_warnings(settings, today) + certificate_files_warning(settings, today, parse)
