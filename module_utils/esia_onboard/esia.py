"""ESIA rules: token algorithm and ESIA's certificates, scope_org, organisation type, the
standard-solutions deadline (role esia_client).

Every function returns a list of problems (``core.problem``) or of warnings (same shape);
an empty list means fine. Certificates come in already parsed (the ``x509_info`` dict, or
``{"error": ...}``), so the rules read no files and import no Ansible.

The last section, "Signing", is what runs on the portal host: the client_secret string, the
signer called as the service account, and the verification of what it signed against the
certificate with OpenSSL's GOST engine (both forms: the raw v2 signature and the detached
CMS of v1, as OpenSSL and CryptoPro's cryptcp make it). The modules esia_client_secret,
esia_signature_verify, esia_client_host and cryptopro_key (its self-check) all use it.

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


def x509_filters():
    """filter_plugins/x509.py, the one certificate parser of the toolkit (controller only; Ansible does
    not import filter_plugins as a package, so the filters that need it load it through here)."""
    key = "esia_onboard_filter_x509"
    if key not in sys.modules:
        location = Path(__file__).resolve().parents[2] / "filter_plugins" / "x509.py"
        spec = importlib.util.spec_from_file_location(key, location)
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def _x509_info() -> Callable[[str], dict]:
    return x509_filters().x509_info


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


# ---------------------------------------------------------------------------- signing
# Runs on the portal host (or the controller for esia_signature_verify): standard library only.

# `yyyy.MM.dd HH:mm:ss Z` in ESIA's (Java) notation.
TIMESTAMP_FORMAT = "%Y.%m.%d %H:%M:%S %z"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
# Raw GOST R 34.10-2012 signatures: 64 bytes (256-bit key), 128 bytes (512-bit key).
_RAW_SIGNATURE_LENGTHS = (64, 128)
_DIGEST_BY_LENGTH = {64: "md_gost12_256", 128: "md_gost12_512"}


def esia_timestamp(moment: _dt.datetime | None = None) -> str:
    """The host's local time in ESIA's format, e.g. 2025.09.02 13:00:29 +0300."""
    return (moment or _dt.datetime.now().astimezone()).strftime(TIMESTAMP_FORMAT)


def build_message(
    api_version: str,
    client_id: str,
    scope: str,
    timestamp: str,
    state: str,
    redirect_uri: str = "",
    code: str | None = None,
    scope_org: str = "",
) -> str:
    """The string ESIA expects to be signed as client_secret (UTF-8, no separators).

    v2: client_id + scope + scope_org + timestamp + state + redirect_uri [+ code], as
    ilimurzin/esia 4.x src/Esia/Esia.php signs it (scope_org empty when there are none).
    """
    if api_version == "v1":
        if scope_org:
            raise ValueError("scope_org is a v2 parameter; the v1 flow has none (use api_version v2)")
        return scope + timestamp + client_id + state
    if api_version == "v2":
        return client_id + scope + scope_org + timestamp + state + redirect_uri + (code or "")
    raise ValueError(f"unknown ESIA API version {api_version!r} (expected v1 or v2)")


def decode_base64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_signature(output: str, api_version: str) -> tuple[str, bytes]:
    """(signature text, decoded bytes) from the signer's stdout; ValueError naming the problem."""
    text = output.strip()
    if not text:
        raise ValueError("the signer printed nothing on stdout")
    if not _BASE64URL.fullmatch(text):
        raise ValueError(f"the signer's output is not base64url without padding: {text[:80]!r}")
    raw = decode_base64url(text)
    if api_version == "v2" and len(raw) not in _RAW_SIGNATURE_LENGTHS:
        raise ValueError(
            f"the signature is {len(raw)} bytes; a raw GOST R 34.10-2012 signature is 64 (256-bit key) or 128 bytes"
        )
    if api_version == "v1" and raw[:1] != b"\x30":
        raise ValueError("the v1 signature is not DER (a detached CMS SignedData starts with a SEQUENCE)")
    return text, raw


def _drop_privileges(user: str):
    import pwd

    entry = pwd.getpwnam(user)

    def demote() -> None:
        import os

        os.initgroups(entry.pw_name, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return demote, {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}


def sign(signer: str, message: str, api_version: str, run_as: str | None, timeout: int = 30) -> str:
    """Run the signer (stdin: the message; no secret on its command line); its stdout, or ValueError."""
    import os
    import pwd
    import subprocess

    if not os.path.exists(signer):
        raise ValueError(f"signer {signer} does not exist (run playbooks/cryptopro.yml)")
    if not os.access(signer, os.X_OK):
        raise ValueError(f"signer {signer} is not executable")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    preexec = None
    if run_as:
        try:
            preexec, account_env = _drop_privileges(run_as)
        except KeyError as exc:
            raise ValueError(f"account {run_as} does not exist on the host (run playbooks/base.yml)") from exc
        if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != run_as:
            raise ValueError(f"running the signer as {run_as} needs root (become: true)")
        env.update(account_env)
    try:
        proc = subprocess.run(
            [signer, "--mode", api_version],
            input=message.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            env=env,
            preexec_fn=preexec,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ValueError(f"signer {signer} did not answer within {timeout} s") from exc
    except OSError as exc:
        raise ValueError(f"cannot run signer {signer}: {exc}") from exc
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        who = f" as {run_as}" if run_as else ""
        raise ValueError(
            f"signer {signer} --mode {api_version}{who} exited {proc.returncode}: {stderr or '(no message)'}"
        )
    return proc.stdout.decode("utf-8", "replace")


def certificate_der(value: str) -> bytes:
    """DER bytes from base64 of DER or PEM text; ValueError otherwise."""
    import binascii

    text = value.strip()
    if text.startswith("-----BEGIN"):
        text = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"the certificate is neither PEM nor base64 of DER: {exc}") from exc
    if der[:1] != b"\x30":
        raise ValueError("the certificate is not DER (it does not start with a SEQUENCE)")
    return der


class OpenSSL:
    """The openssl CLI with the GOST engine, working in `workdir`."""

    def __init__(self, binary: str, engine: str, workdir: str) -> None:
        self.binary, self.engine, self.workdir = binary, engine, workdir

    def run(self, *args: str):
        import subprocess

        return subprocess.run(
            [self.binary, *args], cwd=self.workdir, capture_output=True, text=True, check=False, timeout=60
        )

    def path(self, name: str, data: bytes) -> str:
        import os

        path = os.path.join(self.workdir, name)
        with open(path, "wb") as stream:
            stream.write(data)
        return path


def _error_text(proc) -> str:
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line and not line.startswith("Engine ")]
    return " ".join(lines)[:400] or f"exit code {proc.returncode}"


def verify(openssl: OpenSSL, der: bytes, message: bytes, signature: bytes, mode: str) -> tuple[bool, str, str]:
    """(verified, digest, detail); raises ValueError when verification cannot even be attempted."""
    import os

    cert = openssl.path("cert.der", der)
    msg = openssl.path("message", message)
    sig = openssl.path("signature", signature)
    if mode == "v2":
        digest = _DIGEST_BY_LENGTH.get(len(signature))
        if digest is None:
            raise ValueError(f"a raw GOST R 34.10-2012 signature is 64 or 128 bytes, got {len(signature)}")
        pub = openssl.run("x509", "-engine", openssl.engine, "-inform", "DER", "-in", cert, "-pubkey", "-noout")
        if pub.returncode != 0 or "BEGIN PUBLIC KEY" not in pub.stdout:
            raise ValueError(
                f"OpenSSL cannot read the certificate's public key: {_error_text(pub)} "
                "(a GOST key also needs the GOST engine: libengine-gost-openssl)"
            )
        key = openssl.path("public.pem", pub.stdout.encode())
        proc = openssl.run("dgst", "-engine", openssl.engine, f"-{digest}", "-verify", key, "-signature", sig, msg)
        return proc.returncode == 0 and "Verified OK" in proc.stdout, digest, _error_text(proc)
    pem = openssl.run("x509", "-engine", openssl.engine, "-inform", "DER", "-in", cert, "-out", "cert.pem")
    if pem.returncode != 0:
        raise ValueError(f"OpenSSL cannot read the certificate: {_error_text(pem)}")
    # -certfile: a CMS without the signer's certificate verifies too (cryptcp's and OpenSSL's both embed it).
    proc = openssl.run(
        "cms", "-engine", openssl.engine, "-verify", "-binary", "-inform", "DER", "-in", sig,
        "-content", msg, "-certfile", "cert.pem", "-noverify", "-out", os.devnull,
    )  # fmt: skip
    return proc.returncode == 0, "cms", _error_text(proc)


def check(openssl: OpenSSL, der: bytes, message: str, signature: bytes, mode: str) -> dict:
    """Verify, then check that a changed message is rejected; {ok, error, verified, tamper_rejected, digest}."""
    import subprocess

    result = {"ok": False, "error": "", "verified": False, "tamper_rejected": False, "digest": ""}
    try:
        verified, digest, detail = verify(openssl, der, message.encode("utf-8"), signature, mode)
        result.update(verified=verified, digest=digest)
        if not verified:
            result["error"] = (
                "the signature does not verify against the certificate: the signer uses another key than "
                f"the certificate's, or signs something else ({detail})"
            )
            return result
        tampered, _, _ = verify(openssl, der, (message + "#").encode("utf-8"), signature, mode)
        result["tamper_rejected"] = not tampered
        if tampered:
            result["error"] = "the verifier also accepted a changed message: the check proves nothing"
            return result
    except (ValueError, OSError, subprocess.TimeoutExpired) as exc:
        result["error"] = str(exc)
        return result
    result["ok"] = True
    return result


def signer_self_check(
    signer: str,
    run_as: str | None,
    der: bytes,
    messages: Mapping[str, str],
    openssl_binary: str = "openssl",
    engine: str = "gost",
    timeout: int = 30,
) -> dict:
    """Sign each message (mode -> message) with the signer as `run_as`, verify each signature against
    the certificate (DER) and that a changed message is rejected.

    Returns {ok, error, signer, run_as, certificate_sha1, modes: {mode: {ok, error, message,
    signature_bytes, client_secret, verified, tamper_rejected, digest}}}; `error` names the first
    failed mode and what failed. The one signing self-check of the cryptopro and esia_client roles.
    """
    import hashlib
    import shutil
    import tempfile

    result: dict = {
        "ok": True,
        "error": "",
        "signer": signer,
        "run_as": run_as or "",
        "certificate_sha1": hashlib.sha1(der).hexdigest().upper(),
        "modes": {},
    }
    binary = shutil.which(openssl_binary) or openssl_binary
    for mode, message in messages.items():
        entry = {"ok": False, "error": "", "message": message, "signature_bytes": 0, "client_secret": "",
                 "signed": False, "verified": False, "tamper_rejected": False, "digest": ""}  # fmt: skip
        try:
            text, raw = check_signature(sign(signer, message, mode, run_as, timeout), mode)
        except ValueError as exc:
            entry["error"] = str(exc)
        else:
            entry.update(signed=True, client_secret=text, signature_bytes=len(raw))
            with tempfile.TemporaryDirectory(prefix="esia-verify-") as workdir:
                verdict = check(OpenSSL(binary, engine, workdir), der, message, raw, mode)
            entry.update(verdict)
        result["modes"][mode] = entry
        if not entry["ok"] and result["ok"]:
            result.update(ok=False, error=f"{mode}: {entry['error']}")
    return result
