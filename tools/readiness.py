"""Readiness checklist of one portal host: the seed's ESIA steps and the domain work.

`evaluate()` is a pure function from what the status playbook observed (on the
host, on the controller, over the network) to the host's entry of the status
document (docs/status.md). It never raises on missing or odd observations: a
step that cannot be shown to be done is "not_done" and says why.
"""

# Messages and labels are Russian (the operators' language): Cyrillic letters are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA = "esia-onboard/status/1"

DONE, PENDING, NOT_DONE = "done", "pending", "not_done"
STATES = (DONE, PENDING, NOT_DONE)
STATE_LABELS = {DONE: "готово", PENDING: "ждёт подтверждения", NOT_DONE: "не готово"}
STATE_MARKS = {DONE: "[x]", PENDING: "[~]", NOT_DONE: "[ ]"}
# Expiry levels (roles/portal_monitoring) as the report names and marks them.
EXPIRY_LABELS = {
    "ok": "в порядке",
    "warning": "скоро истекает",
    "critical": "истекает",
    "expired": "истёк",
    "permanent": "бессрочно",
    "error": "нет данных",
}
EXPIRY_MARKS = {
    "ok": "[ok]",
    "warning": "[!]",
    "critical": "[!!]",
    "expired": "[XX]",
    "permanent": "[ok]",
    "error": "[?]",
}


@dataclass(frozen=True)
class Item:
    id: str
    step: str
    title: str
    short: str


# The checklist, in the order of the seed document (steps 1-4, the domain
# section), then what keeps the connection working (clock, self-check).
ITEMS: tuple[Item, ...] = (
    Item("esia_org_registered", "1", "Организация зарегистрирована в ЕСИА", "Орг. в ЕСИА"),
    Item("esia_is_registered", "2", "ИС зарегистрирована, мнемоника задана", "ИС, мнемоника"),
    Item("gost_certificate", "3", "Сертификат ГОСТ Р 34.10-2012 на хосте и действует", "Сертификат ГОСТ"),
    Item("gost_certificate_registered", "3", "Сертификат загружен на технологический портал", "Серт. на портале"),
    Item("application_generated", "4", "Пакет заявки (Приложение Е) сформирован", "Заявка сформирована"),
    Item("application_sent", "4", "Заявка отправлена на sd@sc.minsvyaz.ru", "Заявка отправлена"),
    Item("test_access_granted", "4", "Доступ к тестовой среде ЕСИА получен", "Доступ к тесту"),
    Item("dns", "домен", "Имя портала в зоне МИАЦ указывает на хост", "DNS"),
    Item("https", "домен", "HTTPS действителен для обоих имён", "HTTPS"),
    Item("fallback", "домен", "Резервное имя <код>.2dr.ru работает", "Резервное имя"),
    Item("clock", "время", "Часы синхронизированы (chrony)", "Время"),
    Item("esia_selfcheck", "ЕСИА", "Самопроверка подписи ЕСИА пройдена", "Самопроверка"),
)
ITEM_IDS = tuple(item.id for item in ITEMS)
ITEMS_BY_ID = {item.id: item for item in ITEMS}

# Operator confirmations: item id -> inventory variable holding the date.
CONFIRMATION_VARIABLES = {
    "esia_org_registered": "status_esia_org_registered",
    "esia_is_registered": "status_esia_is_registered",
    "gost_certificate_registered": "status_gost_certificate_registered",
    "application_sent": "status_application_sent",
    "test_access_granted": "status_test_access_granted",
}

GOST_2012_KEYS = {"gost2012_256": "ГОСТ Р 34.10-2012/256", "gost2012_512": "ГОСТ Р 34.10-2012/512"}


def parse_confirmation(value: Any, today: dt.date) -> tuple[dt.date | None, str | None]:
    """(date, None) for a confirmation date, (None, None) when unset, (None, problem) otherwise."""
    if value is None or value == "":
        return None, None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        date = value
    elif isinstance(value, str):
        try:
            date = dt.date.fromisoformat(value.strip())
        except ValueError:
            return None, f"{value!r} не дата в формате ГГГГ-ММ-ДД"
    else:
        return None, f"{value!r} не дата в формате ГГГГ-ММ-ДД"
    if date > today:
        return None, f"дата {date.isoformat()} ещё не наступила"
    return date, None


def _result(item_id: str, state: str, evidence: str, confirmed: dt.date | None = None, **data: Any) -> dict:
    item = ITEMS_BY_ID[item_id]
    return {
        "id": item.id,
        "step": item.step,
        "title": item.title,
        "state": state,
        "evidence": evidence,
        "confirmed": confirmed.isoformat() if confirmed else None,
        "data": data,
    }


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Evaluation:
    """Evaluates the items of one host in order (later items use earlier ones)."""

    def __init__(self, observations: Mapping[str, Any], network: Mapping[str, Any], now: dt.datetime) -> None:
        self.obs = observations
        self.settings: Mapping[str, Any] = observations.get("settings") or {}
        self.host: Mapping[str, Any] = observations.get("on_host") or {}
        self.network = network
        self.now = now
        self.today = now.date()
        self.results: dict[str, dict] = {}

    # -- helpers -----------------------------------------------------------

    def confirmation(self, item_id: str) -> tuple[dt.date | None, str | None]:
        raw = (self.obs.get("confirmations") or {}).get(CONFIRMATION_VARIABLES[item_id])
        return parse_confirmation(raw, self.today)

    def manual(self, item_id: str, ready: bool, waiting_for: str, not_ready: str = "") -> dict:
        """A step a person does: done when confirmed with a date, pending when
        everything before it is done, not done otherwise."""
        variable = CONFIRMATION_VARIABLES[item_id]
        date, problem = self.confirmation(item_id)
        if problem:
            return _result(item_id, NOT_DONE, f"{variable}: {problem}")
        if date:
            return _result(item_id, DONE, f"подтверждено оператором {date.isoformat()} ({variable})", date)
        if not ready:
            return _result(item_id, NOT_DONE, not_ready)
        return _result(item_id, PENDING, f"{waiting_for}; после этого задайте {variable}: ГГГГ-ММ-ДД")

    def unreachable(self) -> str | None:
        if self.host.get("reachable", False):
            return None
        return f"хост недоступен: {self.host.get('error') or 'нет данных с хоста'}"

    def done(self, item_id: str) -> bool:
        return self.results[item_id]["state"] == DONE

    # -- the items ---------------------------------------------------------

    def esia_org_registered(self) -> dict:
        return self.manual("esia_org_registered", True, "зарегистрируйте организацию в ЕСИА с КЭП руководителя (шаг 1)")

    def esia_is_registered(self) -> dict:
        mnemonic = str(self.settings.get("mnemonic") or "").strip()
        result = self.manual(
            "esia_is_registered",
            True,
            (f"мнемоника {mnemonic} задана в инвентаре" if mnemonic else "мнемоника не задана")
            + "; зарегистрируйте ИС на технологическом портале (шаг 2)",
        )
        if result["state"] == DONE and not mnemonic:
            return _result(
                "esia_is_registered",
                NOT_DONE,
                f"регистрация подтверждена {result['confirmed']}, но esia_client_mnemonic пуст",
            )
        if result["state"] == DONE:
            result["evidence"] = f"мнемоника {mnemonic}; {result['evidence']}"
            result["data"]["mnemonic"] = mnemonic
        return result

    def gost_certificate(self) -> dict:
        item = "gost_certificate"
        if problem := self.unreachable():
            return _result(item, NOT_DONE, problem)
        fact = self.host.get("cryptopro_fact")
        if not isinstance(fact, Mapping) or not fact:
            return _result(
                item, NOT_DONE, "нет /etc/ansible/facts.d/esia_cryptopro.fact: роль cryptopro не выполнялась"
            )
        certificate = self.host.get("certificate") or {}
        path = certificate.get("path") or fact.get("certificate_der") or "?"
        if not certificate.get("exists"):
            return _result(item, NOT_DONE, f"нет файла сертификата {path}")
        info = certificate.get("info")
        if not isinstance(info, Mapping):
            return _result(item, NOT_DONE, f"{path} не читается как сертификат: {certificate.get('error') or '?'}")
        algorithm = info.get("key_algorithm")
        subject = info.get("subject", "?")
        thumbprint = str(info.get("sha1_thumbprint", "")).upper()
        data = {
            "path": path,
            "subject": subject,
            "serial_number": info.get("serial_number"),
            "sha1_thumbprint": thumbprint,
            "streebog256": info.get("streebog256"),
            "not_after": info.get("not_after"),
            "key_algorithm": algorithm,
        }
        if algorithm not in GOST_2012_KEYS:
            return _result(
                item, NOT_DONE, f"{path}: ключ {algorithm}, а ЕСИА принимает только ГОСТ Р 34.10-2012", **data
            )
        not_before, not_after = _parse_time(info.get("not_before")), _parse_time(info.get("not_after"))
        if not_before is None or not_after is None:
            return _result(item, NOT_DONE, f"{path}: не прочитан срок действия", **data)
        if not_before > self.now:
            return _result(item, NOT_DONE, f"{path}: действует только с {not_before.date().isoformat()}", **data)
        days_left = (not_after - self.now).days
        data["days_left"] = days_left
        if not_after <= self.now:
            return _result(item, NOT_DONE, f"{path}: истёк {not_after.date().isoformat()}", **data)
        min_days = int(self.settings.get("gost_min_days", 30))
        fact_thumbprint = str(fact.get("sha1_thumbprint", "")).upper()
        if fact_thumbprint and thumbprint and fact_thumbprint != thumbprint:
            return _result(
                item,
                NOT_DONE,
                f"отпечаток в esia_cryptopro.fact ({fact_thumbprint}) не совпадает с {path} ({thumbprint}):"
                " повторите playbooks/cryptopro.yml",
                **data,
            )
        description = (
            f"{GOST_2012_KEYS[algorithm]}, {subject}, SHA-1 {thumbprint}, действует до "
            f"{not_after.date().isoformat()} (ещё {days_left} дн.)"
        )
        if days_left < min_days:
            return _result(
                item, NOT_DONE, f"{description}: меньше {min_days} дн. (status_gost_certificate_min_days)", **data
            )
        return _result(item, DONE, description, **data)

    def gost_certificate_registered(self) -> dict:
        item = "gost_certificate_registered"
        certificate = self.results["gost_certificate"]
        current = certificate["data"].get("sha1_thumbprint", "")
        artifact = self.settings.get("certificate_artifact") or "сертификат (DER)"
        result = self.manual(
            item,
            certificate["state"] == DONE,
            f"загрузите {artifact} на технологический портал ЕСИА (шаг 3)",
            "сначала нужен действующий сертификат ГОСТ 2012 на хосте",
        )
        registered = str(self.settings.get("registered_thumbprint") or "").replace(" ", "").upper()
        if result["state"] == DONE and certificate["state"] != DONE:
            return _result(item, NOT_DONE, f"{result['evidence']}, но сертификата на хосте нет или он недействителен")
        if result["state"] == DONE and registered and current and registered != current:
            return _result(
                item,
                PENDING,
                f"на портале зарегистрирован сертификат {registered}, на хосте {current}: загрузите новый"
                " и обновите status_gost_certificate_registered и status_gost_certificate_registered_thumbprint",
            )
        return result

    def application_generated(self) -> dict:
        item = "application_generated"
        application = self.obs.get("application") or {}
        directory = application.get("dir", "?")
        files = [f for f in application.get("files") or [] if isinstance(f, Mapping)]
        if not files:
            return _result(item, NOT_DONE, f"нет файлов в {directory}: выполните playbooks/esia.yml")
        newest = max(float(f.get("mtime", 0)) for f in files)
        when = dt.datetime.fromtimestamp(newest, dt.UTC).date().isoformat()
        names = ", ".join(sorted(_relative(str(f.get("path", "?")), str(directory)) for f in files))
        return _result(
            item, DONE, f"{len(files)} файл(ов) в {directory} от {when}: {names}", files=len(files), generated=when
        )

    def application_sent(self) -> dict:
        return self.manual(
            "application_sent",
            self.done("application_generated"),
            "отправьте заявку с сертификатом (DER) на sd@sc.minsvyaz.ru (шаг 4)",
            "сначала сформируйте пакет заявки",
        )

    def test_access_granted(self) -> dict:
        return self.manual(
            "test_access_granted",
            self.done("application_sent"),
            "дождитесь ответа оператора ЕСИА о доступе к тестовой среде",
            "заявка ещё не отправлена",
        )

    def dns(self) -> dict:
        item = "dns"
        dns = self.network.get("dns") or {}
        name, expected = self.settings.get("portal_name", "?"), self.settings.get("address", "?")
        via = _resolvers_text(dns.get("resolvers"))
        if dns.get("error"):
            return _result(item, NOT_DONE, f"{name}: {dns['error']} ({via})")
        addresses = list(dns.get("addresses") or [])
        if expected in addresses:
            return _result(item, DONE, f"{name} → {', '.join(addresses)} ({via})", addresses=addresses)
        return _result(
            item,
            NOT_DONE,
            f"{name} → {', '.join(addresses) or 'нет адресов'}, ожидается {expected} ({via})",
            addresses=addresses,
        )

    def https(self) -> dict:
        item = "https"
        probes = self.network.get("https") or {}
        names = [self.settings.get("portal_name"), self.settings.get("fallback_name")]
        min_days = int(self.settings.get("https_min_days", 14))
        lines, good = [], True
        for name in names:
            probe = probes.get(name) if name else None
            ok, text = _probe_text(name or "?", probe, self.now, min_days)
            good = good and ok
            lines.append(text)
        return _result(item, DONE if good else NOT_DONE, "; ".join(lines))

    def fallback(self) -> dict:
        item = "fallback"
        fallback = self.network.get("fallback") or {}
        name = self.settings.get("fallback_name", "?")
        via = _resolvers_text(fallback.get("resolvers"))
        if fallback.get("error"):
            return _result(item, NOT_DONE, f"{name}: {fallback['error']} ({via})")
        addresses = list(fallback.get("addresses") or [])
        if not addresses:
            return _result(item, NOT_DONE, f"{name}: нет адресов ({via})")
        ok, text = _probe_text(name, fallback.get("probe"), self.now, 0)
        return _result(
            item, DONE if ok else NOT_DONE, f"{name} → {', '.join(addresses)} ({via}); {text}", addresses=addresses
        )

    def clock(self, parse_tracking: Callable[[str, float], Mapping[str, Any]]) -> dict:
        item = "clock"
        if problem := self.unreachable():
            return _result(item, NOT_DONE, problem)
        chrony = self.host.get("chrony") or {}
        if chrony.get("rc") != 0:
            detail = (chrony.get("stderr") or chrony.get("stdout") or "нет chronyc").strip()
            return _result(item, NOT_DONE, f"chronyc -n tracking не отвечает: {detail}")
        max_offset = float(self.settings.get("clock_max_offset", 1.0))
        try:
            tracking = parse_tracking(chrony.get("stdout", ""), max_offset)
        except Exception as error:  # the parser names what it could not read
            return _result(item, NOT_DONE, f"вывод chronyc не разобран: {error}")
        text = (
            f"источник {tracking.get('reference') or '—'}, слой {tracking.get('stratum')}, "
            f"смещение {tracking.get('offset_seconds')} с (допустимо {max_offset} с), {tracking.get('leap_status')}"
        )
        state = DONE if tracking.get("synchronised") else NOT_DONE
        return _result(item, state, text, offset_seconds=tracking.get("offset_seconds"))

    def esia_selfcheck(self) -> dict:
        item = "esia_selfcheck"
        if problem := self.unreachable():
            return _result(item, NOT_DONE, problem)
        check = self.host.get("selfcheck") or {}
        signer = check.get("signer") or "/usr/local/bin/esia-sign"
        if not check.get("signer_present"):
            return _result(item, NOT_DONE, f"нет подписывающей программы {signer}: роль cryptopro не выполнялась")
        mode = check.get("mode") or "v2"
        account = check.get("run_as") or "root"
        signed = check.get("signed") if isinstance(check.get("signed"), Mapping) else {}
        if not signed.get("ok"):
            detail = signed.get("error") or signed.get("msg") or "нет результата"
            return _result(item, NOT_DONE, f"{signer} (client_secret {mode}, от имени {account}) не подписал: {detail}")
        verified = check.get("verified") if isinstance(check.get("verified"), Mapping) else {}
        described = f"client_secret {mode} подписан {signer} от имени {account} ({signed.get('signature_bytes')} байт)"
        if not verified:
            return _result(item, NOT_DONE, f"{described}, но подпись не проверялась: нет сертификата на хосте")
        if not verified.get("ok"):
            detail = verified.get("error") or verified.get("msg") or "подпись не сходится с сертификатом"
            return _result(item, NOT_DONE, f"{described}, но проверка на контроллере не прошла: {detail}")
        return _result(
            item,
            DONE,
            f"{described}; подпись проверена по сертификату на контроллере ({verified.get('digest') or mode}),"
            " изменённое сообщение отвергнуто",
        )


def _relative(path: str, directory: str) -> str:
    prefix = directory.rstrip("/") + "/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def _resolvers_text(resolvers: Any) -> str:
    if resolvers:
        return "DNS " + ", ".join(str(r) for r in resolvers)
    return "системный резолвер"


def _probe_text(name: str, probe: Any, now: dt.datetime, min_days: int) -> tuple[bool, str]:
    """(ok, evidence) of one HTTPS probe: verified chain and name, enough validity, an HTTP answer."""
    if not isinstance(probe, Mapping):
        return False, f"{name}: не проверялось"
    where = f"{probe.get('address', '?')}:{probe.get('port', '?')}"
    certificate = probe.get("certificate") if isinstance(probe.get("certificate"), Mapping) else {}
    described = ""
    days_left = None
    not_after = _parse_time(certificate.get("not_after"))
    if certificate:
        described = f" (сертификат {certificate.get('subject', '?')}, выдан {certificate.get('issuer', '?')}"
        if not_after:
            days_left = (not_after - now).days
            described += f", до {not_after.date().isoformat()}"
        described += ")"
    if probe.get("error"):
        return False, f"{name} @ {where}: {probe['error']}{described}"
    if not probe.get("verified"):
        return False, f"{name} @ {where}: сертификат не проверен{described}"
    status = probe.get("http_status")
    if not isinstance(status, int) or status >= 500:
        return False, f"{name} @ {where}: TLS в порядке, но HTTP-ответ {status or 'не получен'}{described}"
    if days_left is not None and days_left < min_days:
        return False, f"{name} @ {where}: сертификат истекает через {days_left} дн.{described}"
    return True, f"{name} @ {where}: HTTP {status}{described}"


def _expiry_script() -> Any:
    """The host's expiry script (roles/portal_monitoring): its levels and day count are the report's too."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "roles" / "portal_monitoring" / "files" / "esia_onboard_expiry.py"
    spec = importlib.util.spec_from_file_location("esia_onboard_expiry", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deadline_notices(settings: Mapping[str, Any], now: dt.datetime) -> list[str]:
    """The ESIA standard-solutions deadline warning of module_utils/esia_onboard/esia.py, when it is there."""
    try:
        from module_utils.esia_onboard import esia
    except ImportError:
        return []
    warn = getattr(esia, "standard_solutions_warnings", None)
    if warn is None:
        return []
    given = settings.get("esia_settings") if isinstance(settings.get("esia_settings"), Mapping) else {}
    try:
        return [str(text) for text in warn({k: v for k, v in given.items() if v is not None}, now)]
    except Exception as error:  # a broken setting is validate.yml's to report; say it here too
        return [f"срок перехода на типовые решения не проверен: {error}"]


def expiry_section(expiry: Mapping[str, Any] | None, settings: Mapping[str, Any], now: dt.datetime) -> dict:
    """Days left per certificate and licence, from the state file the host keeps (roles/portal_monitoring).

    Days are counted from now (not from the host's last refresh) and judged by
    portal_status_warn_days / portal_status_critical_days of the inventory.
    """
    script = _expiry_script()
    warn = int(settings.get("expiry_warn_days") or 30)
    critical = int(settings.get("expiry_critical_days") or 7)
    expiry = expiry or {}
    source = str(expiry.get("file") or "/var/lib/esia-onboard/expiry.json")
    section: dict[str, Any] = {
        "source": source,
        "generated_at": None,
        "level": script.ERROR,
        "warn_days": warn,
        "critical_days": critical,
        "error": None,
        "notices": _deadline_notices(settings, now),
        "entries": [],
    }
    state = expiry.get("state")
    if not isinstance(state, Mapping) or state.get("schema") != script.SCHEMA:
        detail = expiry.get("error") or "нет данных"
        section["error"] = f"{source}: {detail}; выполните playbooks/monitoring.yml (роль portal_monitoring)"
        return section
    section["generated_at"] = state.get("generated_at")
    for raw in state.get("entries") or []:
        if not isinstance(raw, Mapping):
            continue
        entry = {key: raw.get(key) for key in ("type", "kind", "name", "path")}
        entry.update({"not_after": raw.get("not_after"), "days_left": None, "error": raw.get("error")})
        if raw.get("level") in (script.ERROR, script.PERMANENT) or "not_after_timestamp" not in raw:
            entry["level"] = raw.get("level") if raw.get("level") == script.PERMANENT else script.ERROR
        else:
            days = script.days_left(dt.datetime.fromtimestamp(int(raw["not_after_timestamp"]), dt.UTC), now)
            entry.update(days_left=days, level=script.level(days, warn, critical))
        section["entries"].append(entry)
    section["level"] = script.worst([e["level"] for e in section["entries"]])
    return section


def _default_tracking_parser() -> Callable[[str, float], Mapping[str, Any]]:
    from filter_plugins.timesync import chrony_tracking

    return chrony_tracking


def evaluate(
    observations: Mapping[str, Any],
    network: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    parse_tracking: Callable[[str, float], Mapping[str, Any]] | None = None,
) -> dict:
    """The host's entry of the status document: every item with its state and evidence."""
    now = now or dt.datetime.now(dt.UTC)
    evaluation = Evaluation(observations, network or {}, now)
    parser = parse_tracking or _default_tracking_parser()
    for item in ITEMS:
        method = getattr(evaluation, item.id)
        evaluation.results[item.id] = method(parser) if item.id == "clock" else method()
    items = [evaluation.results[item_id] for item_id in ITEM_IDS]
    counts = {state: sum(1 for i in items if i["state"] == state) for state in STATES}
    settings = evaluation.settings
    return {
        "host": str(observations.get("host", "?")),
        "checked_at": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "portal_name": settings.get("portal_name"),
        "fallback_name": settings.get("fallback_name"),
        "environment": settings.get("environment"),
        "summary": {**counts, "total": len(items), "ready": counts[DONE] == len(items)},
        "items": items,
        "expiry": expiry_section(evaluation.host.get("expiry"), settings, now),
    }


def region_document(region: str, org: str, hosts: list[dict], now: dt.datetime | None = None) -> dict:
    """The status document of one region (what status.json holds)."""
    now = now or dt.datetime.now(dt.UTC)
    return {
        "schema": SCHEMA,
        "generated_at": now.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "region": region,
        "org": org,
        "hosts": sorted(hosts, key=lambda h: h["host"]),
    }


def text_table(document: Mapping[str, Any], evidence_width: int = 100) -> str:
    """The plain-text checklist printed in the playbook's output."""
    lines = []
    for host in document.get("hosts", []):
        summary = host.get("summary", {})
        lines.append(
            f"Регион {document.get('region')} · {document.get('org')} · {host.get('host')} · "
            f"{host.get('portal_name')}: готово {summary.get(DONE, 0)} из {summary.get('total', 0)}, "
            f"ждёт подтверждения {summary.get(PENDING, 0)}, не готово {summary.get(NOT_DONE, 0)}"
        )
        width = max(len(i.get("title", "")) for i in host.get("items", [])) if host.get("items") else 10
        for entry in host.get("items", []):
            evidence = str(entry.get("evidence", ""))
            if len(evidence) > evidence_width:
                evidence = evidence[: evidence_width - 1] + "…"
            mark = STATE_MARKS.get(entry.get("state"), "[?]")
            lines.append(f"  {mark} {entry.get('step', ''):<6} {entry.get('title', ''):<{width}}  {evidence}")
        expiry = host.get("expiry")
        if isinstance(expiry, Mapping):
            lines.append(f"  Сроки действия ({expiry.get('source')}):")
            if expiry.get("error"):
                lines.append(f"    {expiry['error']}")
            for entry in expiry.get("entries", []):
                days = entry.get("days_left")
                left = f"ещё {days} дн." if days is not None else (entry.get("error") or "")
                until = f"до {str(entry.get('not_after'))[:10]}, " if entry.get("not_after") else ""
                mark = EXPIRY_MARKS.get(entry.get("level"), "?")
                lines.append(f"    {mark} {entry.get('kind')} {entry.get('name')}: {until}{left}")
            lines += [f"    ! {notice}" for notice in expiry.get("notices", [])]
    return "\n".join(lines)
