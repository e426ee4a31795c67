"""library/esia_probe.py: ESIA's answers translated into what to fix, and an unreachable ESIA.

The HTTP server here is a TEST DOUBLE of ESIA's authorisation endpoint on 127.0.0.1: it plays the
answers ESIA gives (a redirect back to redirect_uri with error/error_description, an HTML error page
with the code, a redirect to the login page); it is not ESIA and checks nothing of the signature."""

# ruff: noqa: RUF001, RUF003
# (ESIA's texts are Russian)
from __future__ import annotations

import contextlib
import http.server
import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, quote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("esia_probe", REPO / "library" / "esia_probe.py")
probe_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe_module)

REDIRECT = "https://zapis.miac77.ru/esia/callback"


class FakeEsia(http.server.BaseHTTPRequestHandler):
    """TEST DOUBLE of ESIA's /aas/oauth2/v2/ac. The path after /play/ picks the answer."""

    seen: ClassVar[list[dict]] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: str = "", location: str | None = None) -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        data = body.encode()
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        FakeEsia.seen.append(query)
        play = url.path.rsplit("/", 1)[-1]
        back = query.get("redirect_uri", REDIRECT) + "?state=" + query.get("state", "")
        if play == "login":
            self._send(302, location="/idp/login/?redirect=%2Faas%2Foauth2%2Fv2%2Fac")
        elif play == "login-page":
            self._send(200, "<html><title>Госуслуги</title><form id='login'></form></html>")
        elif play.startswith("redirect-"):
            code = play.removeprefix("redirect-")
            error = {"007006": "invalid_scope", "007005": "unauthorized_client"}.get(code, "invalid_request")
            description = quote(f"ESIA-{code}: Ошибка")
            self._send(302, location=f"{back}&error={error}&error_description={description}")
        elif play.startswith("page-"):
            code = play.removeprefix("page-")
            self._send(400, f"<html><body><div class='error'>Код ошибки: ESIA-{code}</div></body></html>")
        elif play == "oauth-only":
            self._send(302, location=f"{back}&error=temporarily_unavailable")
        elif play == "server-error":
            self._send(503, "<html>Service Unavailable</html>")
        elif play == "slow":
            time.sleep(3)
            # the probe under test has given up by now and closed the connection
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(200, "late")
        else:
            self._send(404, "no such play")


@contextlib.contextmanager
def fake_esia() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeEsia)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/play"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def esia() -> Iterator[str]:
    with fake_esia() as base:
        yield base


PARAMS = {
    "client_id": "MIAC77PORTAL",
    "client_secret": "c2VjcmV0LXNpZ25hdHVyZQ",
    "redirect_uri": REDIRECT,
    "scope": "openid fullname",
    "response_type": "code",
    "state": "4b4e2a3c-6e3f-4d7a-9a3e-0c1f5f6a7b8c",
    "timestamp": "2025.09.02 13:00:29 +0300",
    "access_type": "online",
}


def run_probe(url: str, timeout: float = 5) -> dict:
    return probe_module.probe(url, dict(PARAMS), timeout, True)


# Which words an operator must find in the advice for each code (the fix, in the toolkit's terms).
ADVICE = {
    "ESIA-007002": ["сертификат", "мнемоник"],
    "ESIA-007005": ["заявк"],
    "ESIA-007006": ["esia_client_scopes"],
    "ESIA-007014": ["client_certificate_hash"],
    "ESIA-007015": ["chrony", "timestamp"],
    "ESIA-007019": ["scope", "заявк"],
    "ESIA-007023": ["redirect_path", "технологическом портале"],
    "ESIA-007053": ["client_secret", "Стрибог", "не активен"],
    "ESIA-007003": ["параметр", "несколько раз", "esia_client_access_type"],
    "ESIA-007011": ["авторизационный код", "redirect_uri"],
    "ESIA-007013": ["scope", "esia_client_scopes"],
    "ESIA-007055": ["неподтверждённой", "учётную запись"],
    "ESIA-008010": ["аутентификацию системы-клиента", "esia_client_mnemonic"],
}

# ESIA's own wording, as ofstudio/go-api-epgu esia/aas/errors.go quotes it (ё written as е there).
OFFICIAL = {
    "ESIA-007003": "В запросе отсутствует обязательный параметр, запрос включает в себя неверное значение параметра",
    "ESIA-007011": "Авторизационный код или маркер обновления недействителен, просрочен, отозван",
    "ESIA-007013": "Запрос не содержит указания на область доступа (scope)",
    "ESIA-007053": "используемый сертификат не активен",
    "ESIA-007055": "Вход в систему осуществляется с неподтвержденной учетной записью",
    "ESIA-008010": "Не удалось произвести аутентификацию системы-клиента",
}


@pytest.mark.parametrize("code", sorted(OFFICIAL))
def test_the_meaning_quotes_esias_official_text(code):
    meaning = probe_module.explain(code)["meaning"].replace("ё", "е").lower()
    assert OFFICIAL[code].replace("ё", "е").lower() in meaning


def test_007005_names_a_missing_certificate_for_the_client_id():
    finding = probe_module.explain("ESIA-007005")
    assert "no certificate registered for the client_id" in finding["meaning"]
    assert "технологический портал" in finding["fix"]


def test_007053_names_an_inactive_certificate():
    assert "certificate is not active" in probe_module.explain("ESIA-007053")["meaning"]


@pytest.mark.parametrize("code", sorted(ADVICE))
def test_redirect_back_with_an_error_code_is_translated(esia, code):
    result = run_probe(f"{esia}/redirect-{code.removeprefix('ESIA-')}")
    assert result["reachable"] is True
    assert result["accepted"] is False
    assert result["codes"] == [code]
    (finding,) = result["findings"]
    assert finding["known"] is True
    for word in ADVICE[code]:
        assert word.lower() in (finding["meaning"] + finding["fix"]).lower(), (code, word)


@pytest.mark.parametrize("code", ["ESIA-007002", "ESIA-007015", "ESIA-007053"])
def test_error_page_with_a_code_is_translated(esia, code):
    result = run_probe(f"{esia}/page-{code.removeprefix('ESIA-')}")
    assert result["status"] == 400
    assert result["codes"] == [code]
    assert not result["accepted"]
    assert code in probe_module.summary("u", result)


def test_unknown_code_is_reported_as_unknown_not_dropped(esia):
    result = run_probe(f"{esia}/page-007999")
    assert result["codes"] == ["ESIA-007999"]
    assert result["findings"][0]["known"] is False
    assert "09-troubleshooting" in result["findings"][0]["fix"]


def test_redirect_to_the_login_page_means_accepted(esia):
    result = run_probe(f"{esia}/login")
    assert result["accepted"] is True
    assert result["status"] == 302
    assert result["findings"] == []
    assert "accepted" in probe_module.summary("u", result)


def test_login_page_served_directly_means_accepted(esia):
    assert run_probe(f"{esia}/login-page")["accepted"] is True


def test_oauth_error_without_an_esia_code_is_still_a_finding(esia):
    result = run_probe(f"{esia}/oauth-only")
    assert not result["accepted"]
    assert result["oauth_error"] == "temporarily_unavailable"
    assert "retry" in result["findings"][0]["meaning"]


def test_server_error_without_code_is_not_accepted(esia):
    result = run_probe(f"{esia}/server-error")
    assert result["accepted"] is False
    assert result["status"] == 503
    assert "503" in probe_module.summary("u", result)


def test_the_request_carries_every_parameter(esia):
    FakeEsia.seen.clear()
    run_probe(f"{esia}/login")
    assert FakeEsia.seen[-1] == PARAMS


def test_client_secret_never_comes_back_in_the_location(esia):
    result = run_probe(f"{esia}/redirect-007053")
    assert PARAMS["client_secret"] not in str(result)
    assert "client_secret" not in result["location"] or "<redacted>" in result["location"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_esia_is_a_clear_message_not_a_traceback():
    url = f"http://127.0.0.1:{_closed_port()}/aas/oauth2/v2/ac"
    result = run_probe(url)
    assert result["reachable"] is False
    assert "unreachable" in result["error"]
    assert url in result["error"]
    assert "esia_client_probe: false" in result["error"]
    assert "Traceback" not in result["error"]


def test_silent_esia_times_out_with_a_message(esia):
    result = run_probe(f"{esia}/slow", timeout=0.5)
    assert result["reachable"] is False
    assert "did not answer within 0.5 s" in result["error"]


def test_codes_are_found_in_any_spelling_and_kept_in_order():
    assert probe_module.esia_codes("ESIA-007015 then ESIA_007019", "esia 007015? no: ESIA 007002") == [
        "ESIA-007015",
        "ESIA-007019",
        "ESIA-007002",
    ]


def test_redact_hides_secret_values_only():
    url = probe_module.redact("https://x/cb?code=abc&state=s1&client_secret=zzz")
    assert "abc" not in url and "zzz" not in url
    assert "state=s1" in url
