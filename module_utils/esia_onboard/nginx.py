"""Strict grammars for every string that ends up in an nginx configuration (and other URLs).

None of them lets a ``;``, ``{``, ``}``, whitespace, a quote or a ``$`` through,
so a setting can never become an nginx directive. portal_https uses these
functions (filters ``portal_nginx_*``) where it builds its configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem
from ansible.module_utils.esia_onboard.names import host_name
from ansible.module_utils.esia_onboard.net import never_a_target, parse_ip, port_valid

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = rf"{_LABEL}(?:\.{_LABEL})*"
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_HOST = rf"(?P<host>{_HOSTNAME}|\[(?P<v6>[0-9A-Fa-f:.]+)\])"
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_PATH_CHARS = r"[A-Za-z0-9._~%/+=:@!,-]"
UPSTREAM = re.compile(rf"(?P<scheme>https?)://{_HOST}{_PORT}(?P<path>/{_PATH_CHARS}*)?", re.ASCII)
HTTPS_URL = re.compile(rf"https://{_HOST}{_PORT}(?P<path>/{_PATH_CHARS}*)?(?:\?[A-Za-z0-9._~%/+=:@!,&-]*)?", re.ASCII)
BASE_URL = re.compile(rf"https?://{_HOST}{_PORT}/?", re.ASCII)
URL_PATH = re.compile(rf"/{_PATH_CHARS}*", re.ASCII)
RESOLVER = re.compile(rf"{_HOST}{_PORT}", re.ASCII)
CIPHERS = re.compile(r"[A-Za-z0-9_+!@=.-]+(?::[A-Za-z0-9_+!@=.-]+)*", re.ASCII)
CURVES = re.compile(r"[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)*", re.ASCII)
SERVER_NAME = re.compile(rf"(?:\*\.)?{_HOSTNAME}", re.ASCII)


def _host_ok(match: re.Match[str]) -> bool:
    """The host part of a match: an IPv6 in brackets, a valid IPv4, or a host name."""
    if match["v6"] is not None:
        address = parse_ip(match["v6"])
        return address is not None and address.version == 6 and never_a_target(address) is None
    host = match["host"]
    if re.fullmatch(_IPV4, host):
        address = parse_ip(host)
        return address is not None and never_a_target(address) is None
    return not host.replace(".", "").isdigit()


def _url_ok(pattern: re.Pattern[str], value: Any) -> bool:
    if not isinstance(value, str):
        return False
    match = pattern.fullmatch(value)
    if match is None or not _host_ok(match):
        return False
    return match["port"] is None or port_valid(match["port"])


def upstream_valid(value: Any) -> bool:
    return value == "" or _url_ok(UPSTREAM, value)


def upstream_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_upstream") -> list[str]:
    if upstream_valid(value):
        return []
    return [
        problem(
            setting,
            value,
            'set the application\'s URL as http(s)://host[:port][/path] (no spaces, quotes, ";", "{", "}"), '
            'e.g. http://127.0.0.1:8080, or "" for none yet',
        )
    ]


def server_name_valid(value: Any) -> bool:
    if not isinstance(value, str) or SERVER_NAME.fullmatch(value) is None:
        return False
    return host_name(value[2:] if value.startswith("*.") else value) is not None


def server_names_rule(value: list, settings: Mapping[str, Any], setting: str = "portal_https_extra_names") -> list[str]:
    return [
        problem(f"{setting}[{index}]", item, "set a host name such as www.zapis.miac77.ru (a leading *. is allowed)")
        for index, item in enumerate(value)
        if not server_name_valid(item)
    ]


def resolver_valid(value: Any) -> bool:
    return _url_ok(RESOLVER, value)


def resolvers_rule(value: list, settings: Mapping[str, Any], setting: str = "portal_https_resolvers") -> list[str]:
    return [
        problem(
            f"{setting}[{index}]",
            item,
            'set a resolver nginx can use: "ip", "ip:port", "[ipv6]" or "[ipv6]:port", '
            'e.g. "192.0.2.53" or "[2001:db8::53]:53"',
        )
        for index, item in enumerate(value)
        if not resolver_valid(item)
    ]


def url_path_valid(value: Any) -> bool:
    return isinstance(value, str) and URL_PATH.fullmatch(value) is not None and "//" not in value


def url_path_rule(value: Any, settings: Mapping[str, Any], setting: str = "esia_client_redirect_path") -> list[str]:
    if url_path_valid(value):
        return []
    return [
        problem(setting, value, "set a path that starts with '/', without spaces, quotes or '?', e.g. /esia/callback")
    ]


def https_url_valid(value: Any) -> bool:
    return _url_ok(HTTPS_URL, value)


def https_urls_rule(
    value: list, settings: Mapping[str, Any], setting: str = "esia_client_redirect_uris_extra"
) -> list[str]:
    return [
        problem(f"{setting}[{index}]", item, "set a full https URL, e.g. https://zapis.miac77.ru/esia/callback")
        for index, item in enumerate(value)
        if not https_url_valid(item)
    ]


def base_url_rule(value: Any, settings: Mapping[str, Any], setting: str = "esia_client_base_url") -> list[str]:
    if _url_ok(BASE_URL, value):
        return []
    return [problem(setting, value, "set a scheme and host only, e.g. https://esia-portal1.test.gosuslugi.ru")]


def ciphers_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_ssl_ciphers") -> list[str]:
    if isinstance(value, str) and CIPHERS.fullmatch(value):
        return []
    return [
        problem(
            setting,
            value,
            "set an OpenSSL cipher list separated by ':' (no spaces), e.g. ECDHE-ECDSA-AES128-GCM-SHA256",
        )
    ]


def curves_rule(value: Any, settings: Mapping[str, Any], setting: str = "portal_https_ssl_ecdh_curve") -> list[str]:
    if isinstance(value, str) and CURVES.fullmatch(value):
        return []
    return [problem(setting, value, "set groups separated by ':', e.g. X25519:prime256v1:secp384r1")]


def extra_config_problem(value: Any) -> str | None:
    """Why extra nginx directives cannot be placed inside a server block (None when they can)."""
    if not isinstance(value, str):
        return "set nginx directives as a string"
    depth, quote = 0, None
    for char in value:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return "a '}' closes the server block; keep the braces balanced"
    if quote:
        return "a quote is not closed"
    if depth:
        return "a '{' is not closed"
    stripped = value.strip()
    if stripped and stripped[-1] not in ";}":
        return "end every directive with ';'"
    return None


def extra_config_rule(
    value: Any, settings: Mapping[str, Any], setting: str = "portal_https_server_extra_config"
) -> list[str]:
    reason = extra_config_problem(value)
    return [problem(setting, value, reason)] if reason else []


def distinct_ports_cross(settings: Mapping[str, Any]) -> list[str]:
    http, https = settings.get("portal_https_http_port"), settings.get("portal_https_https_port")
    if http is not None and http == https:
        return [problem("portal_https_https_port", https, "must differ from portal_https_http_port")]
    return []
