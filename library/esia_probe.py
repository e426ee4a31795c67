#!/usr/bin/python
"""Ansible module esia_probe: ask ESIA's authorisation endpoint and explain its answer."""

# Ansible modules put their imports after DOCUMENTATION / EXAMPLES / RETURN.
# ruff: noqa: E402, RUF001
from __future__ import annotations

DOCUMENTATION = r"""
module: esia_probe
short_description: Send one signed authorisation request to ESIA and translate the answer into what to fix
description:
  - 'Runs on the controller (C(delegate_to: localhost)) with C(requests). Sends a GET to the authorisation
    endpoint with the given parameters, without following redirects.'
  - ESIA answers a good request with its login page (or a redirect to it); a bad one with an error code
    C(ESIA-007xxx) in the redirect back to C(redirect_uri) (C(error), C(error_description)) or in its error page.
    The module finds the codes and says, for each, what it means and what to fix.
  - An unreachable ESIA, a TLS failure or a timeout is a clear failure message, not a traceback.
  - Read-only for the IS; never reports a change; runs in check mode.
author:
  - esia-onboard maintainers
requirements:
  - requests (Python, on the controller)
options:
  url:
    description: The authorisation endpoint, e.g. https://esia-portal1.test.gosuslugi.ru/aas/oauth2/v2/ac.
    type: str
    required: true
  params:
    description: Query parameters except client_secret (client_id, redirect_uri, scope, response_type, state, ...).
    type: dict
    required: true
  client_secret:
    description: The signed client_secret; kept out of logs and out of the returned redirect target.
    type: str
    required: true
  timeout:
    description: Seconds to wait for ESIA.
    type: float
    default: 15
  validate_certs:
    description: Verify ESIA's TLS certificate.
    type: bool
    default: true
  ca_bundle:
    description: CA bundle to verify ESIA's TLS certificate with (for example one holding the Russian Trusted Root CA).
    type: path
"""

EXAMPLES = r"""
- name: Probe the test environment
  esia_probe:
    url: https://esia-portal1.test.gosuslugi.ru/aas/oauth2/v2/ac
    params: "{{ probe_params }}"
  delegate_to: localhost
"""

RETURN = r"""
accepted:
  description: ESIA took the request (login page or a redirect to it, no error code).
  type: bool
  returned: always
status: {description: HTTP status of ESIA's answer., type: int, returned: when reached}
location:
  description: Redirect target, with the values of secret-bearing parameters removed.
  type: str
  returned: when reached
codes: {description: ESIA error codes found (e.g. ESIA-007019)., type: list, returned: always}
oauth_error: {description: The OAuth `error` parameter of a redirect back, if any., type: str, returned: always}
findings: {description: One dict per code or OAuth error, with meaning and fix., type: list, returned: always}
"""

import re
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule

try:
    import requests
except ImportError:  # reported by main()
    requests = None

# ESIA authorisation error codes: meaning (ESIA's own text first), and what to fix on our side. Sources:
# ESIA's Методические рекомендации and the client libraries listed in shared/notes/esia.md; the official
# texts of 007003, 007011, 007013, 007053, 007055 and 008010 as ofstudio/go-api-epgu esia/aas/errors.go
# quotes them.
ESIA_ERRORS: dict[str, tuple[str, str]] = {
    "ESIA-007002": (
        "Сертификат не соответствует мнемонике ИС / the certificate does not match the IS mnemonic.",
        "Загрузите сертификат <контейнер>.cer из пакета заявки на технологический портал этой среды (тестовой и "
        "промышленной отдельно) для мнемоники esia_client_mnemonic; проверьте, что client_id равен мнемонике, "
        "а client_certificate_hash — хэш именно этого сертификата.",
    ),
    "ESIA-007003": (
        "В запросе отсутствует обязательный параметр, запрос включает в себя неверное значение параметра или "
        "включает параметр несколько раз / a required parameter is missing, has a wrong value or is repeated.",
        "Сравните запрос с конфигурацией esia_client: каждый параметр ровно один раз (client_id, client_secret, "
        "redirect_uri, scope, scope_org, response_type, state, timestamp, access_type, client_certificate_hash); "
        "проверьте esia_client_access_type и что state — UUID.",
    ),
    "ESIA-007004": (
        "Владелец ресурса или ЕСИА отказали в доступе / access denied (the user declined or has no access).",
        "Ошибка конфигурации не обязательна: пользователь отказал в выдаче данных. Если повторяется без участия "
        "пользователя, проверьте, что ИС подключена к этой среде.",
    ),
    "ESIA-007005": (
        "Система-клиент не имеет права запрашивать получение маркера доступа таким методом / unauthorized_client; "
        "так же ЕСИА отвечает, когда для client_id не зарегистрирован сертификат / no certificate registered for "
        "the client_id.",
        "Загрузите сертификат ИС (<контейнер>.cer из пакета заявки) на технологический портал этой среды для "
        "мнемоники esia_client_mnemonic; если сертификат есть — ИС не подключена к этой среде или не получила "
        "права на программный интерфейс: отправьте заявку (Приложение Е, docs/runbooks/04-test-application.md) и "
        "дождитесь ответа; проверьте esia_client_environment.",
    ),
    "ESIA-007006": (
        "Область доступа (scope) указана неверно или неизвестна ЕСИА / invalid scope.",
        "Проверьте esia_client_scopes: только имена из каталога, через пробел, openid обязателен; "
        "параметризованные области — в форме name?oid=...",
    ),
    "ESIA-007011": (
        "Авторизационный код или маркер обновления недействителен, просрочен, отозван или не соответствует адресу "
        "ресурса, указанному в запросе на авторизацию, или был выдан другой системе-клиенту / the authorisation "
        "code or refresh token is invalid, expired, revoked, or issued for another redirect_uri or client.",
        "Обменивайте code сразу и один раз, с тем же redirect_uri, что в запросе v2/ac, и тем же client_id; "
        "маркер обновления — только свой и действующий (access_type=offline). Проверьте часы (chrony).",
    ),
    "ESIA-007013": (
        "Запрос не содержит указания на область доступа (scope) / the request has no scope.",
        "Передайте scope (esia_client_scopes, openid первым) в v2/ac и в v3/te; пустой scope не допускается.",
    ),
    "ESIA-007014": (
        "В запросе нет обязательного параметра / a required parameter is missing.",
        "Проверьте, что запрос содержит client_id, client_secret, redirect_uri, scope, response_type, state, "
        "timestamp, access_type и (v2) client_certificate_hash; обновите esia_client и конфигурацию портала.",
    ),
    "ESIA-007015": (
        "Неверное время запроса (timestamp) / the request's time is wrong.",
        "Синхронизируйте часы хоста (chrony, playbooks/base.yml), проверьте часовой пояс и формат "
        "timestamp 'yyyy.MM.dd HH:mm:ss Z' со смещением (+0300).",
    ),
    "ESIA-007019": (
        "Нет разрешения на запрошенную область доступа / the scope is not approved for this IS.",
        "Запросите недостающие scope заявкой (Приложение Е) или уберите их из esia_client_scopes; в тестовой и "
        "промышленной среде согласования отдельные.",
    ),
    "ESIA-007023": (
        "redirect_uri не зарегистрирован для ИС / redirect_uri is not registered.",
        "Зарегистрируйте адреса возврата из пакета заявки на технологическом портале (имя МИАЦ и, если нужно, "
        "резервное имя <регион>.2dr.ru) или исправьте esia_client_redirect_path; схема https и путь должны совпадать.",
    ),
    "ESIA-007053": (
        "client_secret сформирован некорректно, не соответствует строке-сертификату, информационной системе или "
        "используемый сертификат не активен / wrong client_secret, or the certificate is not active.",
        "Проверьте подпись: строка client_id+scope+scope_org+timestamp+state+redirect_uri, ГОСТ Р 34.10-2012 без "
        "переворота байтов для OpenSSL (с переворотом для csptest), base64url без '='; client_certificate_hash — "
        "Стрибог-256 DER сертификата (не SHA-1). Самопроверка роли esia_client должна проходить. Сертификат не "
        "активен: на технологическом портале этой среды он должен быть загружен и активирован для мнемоники, "
        "и срок его действия не истёк.",
    ),
    "ESIA-007055": (
        "Вход в систему осуществляется с неподтверждённой учётной записью / the user's account is not confirmed.",
        "Ошибка не в конфигурации ИС: пользователю нужно подтвердить учётную запись на Госуслугах (центр "
        "обслуживания, банк, УКЭП); портал должен показать это пользователю, а не повторять запрос.",
    ),
    "ESIA-008010": (
        "Не удалось произвести аутентификацию системы-клиента / the client system could not be authenticated.",
        "ЕСИА не узнала ИС: client_id равен мнемонике esia_client_mnemonic, сертификат загружен на технологический "
        "портал этой среды, client_certificate_hash — Стрибог-256 его DER, client_secret подписан этим ключом "
        "(самопроверка esia_client).",
    ),
}

OAUTH_ERRORS: dict[str, str] = {
    "invalid_request": "the request is malformed or lacks a parameter (see the ESIA code for which)",
    "unauthorized_client": "the IS may not use this flow in this environment (ESIA-007005)",
    "access_denied": "ESIA or the user denied access",
    "unsupported_response_type": "response_type must be 'code'",
    "invalid_scope": "a scope is unknown or not approved (ESIA-007006 / ESIA-007019)",
    "server_error": "ESIA failed internally; retry later",
    "temporarily_unavailable": "ESIA is overloaded or under maintenance; retry later",
    "invalid_client": "the client_id / certificate / client_secret are not accepted",
}

_CODE = re.compile(r"ESIA[-_ ]?(\d{6})")
_SECRET_PARAMS = {"client_secret", "code"}


def esia_codes(*texts: str) -> list[str]:
    """ESIA-NNNNNN codes found in the texts, normalised and in order of first appearance."""
    codes: list[str] = []
    for text in texts:
        for number in _CODE.findall(text or ""):
            code = f"ESIA-{number}"
            if code not in codes:
                codes.append(code)
    return codes


def explain(code: str) -> dict:
    meaning, fix = ESIA_ERRORS.get(
        code,
        (
            "Код не описан в этом инструменте / code not in this toolkit's table.",
            "Найдите код в таблице ошибок Методических рекомендаций ЕСИА (docs/runbooks/09-troubleshooting.md).",
        ),
    )
    return {"code": code, "known": code in ESIA_ERRORS, "meaning": meaning, "fix": fix}


def redact(url: str) -> str:
    """The URL with the values of secret-bearing query parameters removed."""
    parts = urlsplit(url)
    query = "&".join(
        f"{key}=<redacted>" if key in _SECRET_PARAMS else f"{key}={value}"
        for key, values in parse_qs(parts.query, keep_blank_values=True).items()
        for value in values
    )
    return urlunsplit(parts._replace(query=query))


def interpret(status: int, location: str, body: str) -> dict:
    """Translate one HTTP answer of the authorisation endpoint."""
    query = parse_qs(urlsplit(location).query) if location else {}
    oauth_error = (query.get("error") or [""])[0]
    description = " ".join(query.get("error_description") or [])
    codes = esia_codes(description, location, body)
    findings = [explain(code) for code in codes]
    if oauth_error and not codes:
        findings.append(
            {
                "code": oauth_error,
                "known": oauth_error in OAUTH_ERRORS,
                "meaning": OAUTH_ERRORS.get(oauth_error, "OAuth error not in this toolkit's table"),
                "fix": description or "see docs/runbooks/09-troubleshooting.md",
            }
        )
    accepted = not findings and status < 400
    return {
        "accepted": accepted,
        "status": status,
        "location": redact(location) if location else "",
        "codes": codes,
        "oauth_error": oauth_error,
        "error_description": description,
        "findings": findings,
    }


def summary(url: str, result: dict) -> str:
    if result["accepted"]:
        return f"ESIA accepted the signed request to {url} (HTTP {result['status']}): its login page is next."
    if not result["findings"]:
        return (
            f"ESIA answered HTTP {result['status']} at {url} without an error code; "
            "see docs/runbooks/09-troubleshooting.md."
        )
    lines = [f"ESIA rejected the request to {url} (HTTP {result['status']}):"]
    lines += [f"{f['code']}: {f['meaning']} Fix: {f['fix']}" for f in result["findings"]]
    return "\n".join(lines)


def probe(url: str, params: dict, timeout: float, verify: bool | str) -> dict:
    """One GET; the interpreted answer, or {'reachable': False, 'error': ...}."""
    try:
        response = requests.get(url, params=params, timeout=timeout, allow_redirects=False, verify=verify)
    except requests.exceptions.SSLError as exc:
        return {
            "reachable": False,
            "error": (
                f"TLS verification of {url} failed ({exc.__class__.__name__}): ESIA's certificate may come from the "
                "Russian Trusted Root CA, which Debian does not trust; set esia_client_probe_ca_bundle."
            ),
        }
    except requests.exceptions.Timeout:
        return {"reachable": False, "error": f"ESIA at {url} did not answer within {timeout:g} s."}
    except requests.exceptions.RequestException as exc:
        reason = str(exc.__context__ or exc).split(": ")[-1][:200] if exc else ""
        return {
            "reachable": False,
            "error": (
                f"ESIA at {url} is unreachable from the controller ({exc.__class__.__name__}: {reason}). "
                "The probe needs outbound HTTPS to ESIA: run it where ESIA is reachable, "
                "or set esia_client_probe: false."
            ),
        }
    result = interpret(response.status_code, response.headers.get("Location", ""), response.text[:200000])
    result["reachable"] = True
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "params": {"type": "dict", "required": True},
            "client_secret": {"type": "str", "required": True, "no_log": True},
            "timeout": {"type": "float", "default": 15},
            "validate_certs": {"type": "bool", "default": True},
            "ca_bundle": {"type": "path"},
        },
        supports_check_mode=True,
    )
    if requests is None:
        module.fail_json(msg="esia_probe needs the Python package requests on the controller (pip install requests)")
    p = module.params
    verify = p["ca_bundle"] or p["validate_certs"]
    params = {**p["params"], "client_secret": p["client_secret"]}
    result = probe(p["url"], params, p["timeout"], verify)
    base = {"changed": False, "accepted": False, "codes": [], "oauth_error": "", "findings": [], **result}
    if not result["reachable"]:
        module.fail_json(msg=result["error"], **base)
    message = summary(p["url"], result)
    if not result["accepted"]:
        module.fail_json(msg=message, **base)
    module.exit_json(msg=message, **base)


if __name__ == "__main__":
    main()
