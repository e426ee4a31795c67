"""Addresses, ports and "ip:port" endpoints: parsed here, once."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.esia_onboard.core import problem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DIGITS = re.compile(r"[0-9]{1,5}", re.ASCII)
_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?", re.ASCII)
# A host name for chrony or nginx: LDH labels, dots between (no spaces, quotes, ';').
_HOST = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
    re.ASCII,
)


def parse_ip(value: Any) -> IPAddress | None:
    """An IPv4 or IPv6 address written exactly (no spaces, no zone index, no prefix), else None."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f:.]+", value, re.ASCII):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def never_a_target(address: IPAddress) -> str | None:
    """Why an address can never be a host's or server's address (None when it can be)."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    return None


def port_valid(value: Any) -> bool:
    """A port: an int (not a bool) or a string of ASCII digits, in 1..65535."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            return False
        value = int(value)
    return isinstance(value, int) and 0 < value < 65536


def split_endpoint(value: str, default_port: int = 53) -> tuple[str, str]:
    """ "host", "host:port", "[ipv6]", "[ipv6]:port" or a bare IPv6 address -> (host, port text); no validation."""
    text = str(value).strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else (rest or str(default_port))
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, str(default_port)


def parse_endpoint(value: Any, default_port: int = 53) -> tuple[IPAddress, int] | None:
    """ "ip", "ip:port", "[ipv6]", "[ipv6]:port" or a bare IPv6 address -> (address, port); else None."""
    if not isinstance(value, str) or value != value.strip():
        return None
    if value.startswith("[") and not _BRACKETED.fullmatch(value):
        return None
    host, port = split_endpoint(value, default_port)
    address = parse_ip(host)
    if address is None or not port_valid(port):
        return None
    if value.startswith("["):
        wanted = 6  # "[ipv6]" or "[ipv6]:port"
    elif value.count(":") == 1:
        wanted = 4  # "ipv4:port"
    else:
        wanted = address.version  # a bare address
    return (address, int(port)) if address.version == wanted else None


def format_endpoint(address: Any, port: Any) -> str:
    """ "ip:port", with an IPv6 address in brackets."""
    text = str(address)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _address_rule(setting: str, value: Any, version: int | None, fix: str) -> list[str]:
    address = parse_ip(value)
    if address is None or (version and address.version != version):
        return [problem(setting, value, fix)]
    reason = never_a_target(address)
    if reason:
        return [problem(setting, value, f"{reason} is never a valid target; {fix}")]
    return []


def ipv4_target_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return _address_rule(
        "portal_domain_address", value, 4, "set the IPv4 address the portal name points at, e.g. 203.0.113.10"
    )


def ipv6_target_or_empty_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    if value == "":
        return []
    return _address_rule(
        "portal_domain_address6",
        value,
        6,
        'set the portal\'s IPv6 address (AAAA records), e.g. 2001:db8::10, or "" to leave AAAA alone',
    )


def ip_target_rule(value: Any, settings: Mapping[str, Any]) -> list[str]:
    return _address_rule(
        "portal_domain_dns_server",
        value,
        None,
        "set the IP address of the zone's primary master (a host name is not accepted by nsupdate here)",
    )


def port_rule_for(setting: str, value: Any) -> list[str]:
    if port_valid(value):
        return []
    return [problem(setting, value, "set a port number 1..65535 (digits only)")]


def port_rule(value: Any, settings: Mapping[str, Any], setting: str = "port") -> list[str]:
    return port_rule_for(setting, value)


def resolvers_rule(value: list, settings: Mapping[str, Any], setting: str = "portal_domain_resolvers") -> list[str]:
    found = []
    for index, item in enumerate(value):
        endpoint = parse_endpoint(item)
        if endpoint is None:
            found.append(
                problem(
                    f"{setting}[{index}]",
                    item,
                    'each item is "ip:port", "[ipv6]:port" or a bare IP for port 53, '
                    'e.g. "192.0.2.53:53" or "[2001:db8::53]:53"',
                )
            )
            continue
        reason = never_a_target(endpoint[0])
        if reason:
            found.append(
                problem(f"{setting}[{index}]", item, f"{reason} is never a resolver; set a resolver's address")
            )
    return found


def host_or_ip_valid(value: Any) -> bool:
    """A host name or an IP address, as chrony and nginx take them."""
    if not isinstance(value, str):
        return False
    address = parse_ip(value)
    if address is not None:
        return never_a_target(address) is None
    return _HOST.fullmatch(value) is not None and not value.replace(".", "").isdigit()


def ntp_sources_rule(value: list, settings: Mapping[str, Any], setting: str = "portal_base_ntp_servers") -> list[str]:
    return [
        problem(f"{setting}[{index}]", item, "set a host name or an IP address, e.g. ntp1.miac77.ru or 192.0.2.123")
        for index, item in enumerate(value)
        if not host_or_ip_valid(item)
    ]
