"""Network probes of the status report, run on the controller: DNS and HTTPS.

Both only read: an A query, a TLS handshake with SNI, one `GET /`. Failures
are returned as text, never raised, so the report shows them as evidence.
"""

# Messages and labels are Russian (the operators' language): Cyrillic letters are meant.
# ruff: noqa: RUF001

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ansible.module_utils
import dns.exception
import dns.resolver
from cryptography import x509
from cryptography.x509.oid import NameOID

_MODULE_UTILS = str(Path(__file__).resolve().parents[1] / "module_utils")
if _MODULE_UTILS not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(_MODULE_UTILS)
from ansible.module_utils.esia_onboard import certs, net  # noqa: E402

TIMEOUT = 5.0


def split_resolver(resolver: str) -> tuple[str, int]:
    """("127.0.0.1", 15353) from "127.0.0.1:15353"; IPv6 as "[::1]:53"; port 53 when none is given."""
    host, port = net.split_endpoint(resolver, 53)
    return host, int(port)


def _resolver(resolver: str | None) -> dns.resolver.Resolver:
    if resolver is None:
        return dns.resolver.Resolver()
    host, port = split_resolver(resolver)
    configured = dns.resolver.Resolver(configure=False)
    configured.nameservers = [host]
    configured.port = port
    return configured


def resolve(name: str, resolvers: Sequence[str] = (), timeout: float = TIMEOUT) -> dict[str, Any]:
    """A records of `name` as {"name", "resolvers", "addresses", "error"}; "ip:port" resolvers, [] = system."""
    result: dict[str, Any] = {"name": name, "resolvers": list(resolvers), "addresses": [], "error": None}
    # Each resolver is asked in turn; the first answer counts.
    candidates: list[str | None] = list(resolvers) or [None]
    errors = []
    for candidate in candidates:
        try:
            answer = _resolver(candidate).resolve(name, "A", lifetime=timeout)
        except dns.resolver.NXDOMAIN:
            errors.append("имя не существует (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            errors.append("нет записи A")
        except dns.resolver.NoNameservers as error:
            errors.append(f"серверы не ответили: {error}")
        except dns.exception.Timeout:
            errors.append(f"нет ответа DNS за {timeout:g} с")
        except (dns.exception.DNSException, OSError, ValueError) as error:
            errors.append(f"ошибка DNS: {error}")
        else:
            result["addresses"] = sorted({rr.address for rr in answer})
            return result
    result["error"] = "; ".join(dict.fromkeys(errors))
    return result


def _name_text(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={common[0].value}" if common else name.rfc4514_string() or "—"


def describe_certificate(der: bytes) -> dict[str, Any]:
    """subject, issuer, not_after (ISO 8601 UTC) and DNS names of a TLS certificate."""
    cert = certs.load_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    return {
        "subject": _name_text(cert.subject),
        "issuer": _name_text(cert.issuer),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "dns_names": dns_names,
    }


def _context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    # The system's trust store plus the region's own CA (e.g. the Russian
    # Trusted Root CA, or the lab's CA): the fallback host may use either.
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _fetch(address: str, port: int, name: str, context: ssl.SSLContext, timeout: float) -> tuple[bytes, int | None]:
    with (
        socket.create_connection((address, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True) or b""
        request = f"GET / HTTP/1.1\r\nHost: {name}\r\nUser-Agent: esia-onboard-status\r\nConnection: close\r\n\r\n"
        tls.sendall(request.encode("ascii"))
        head = tls.recv(1024).split(b"\r\n", 1)[0].decode("latin-1")
    parts = head.split()
    status = int(parts[1]) if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit() else None
    return der, status


def probe_https(
    address: str, port: int, name: str, ca_file: str | None = None, timeout: float = TIMEOUT
) -> dict[str, Any]:
    """Connect to address:port with SNI `name`, verify the chain and the name,
    ask `GET /`. Returns {"address", "port", "name", "verified", "http_status",
    "certificate", "error"}; on a verification failure the certificate is read
    again without verification so the evidence says what was served."""
    result: dict[str, Any] = {
        "address": address,
        "port": int(port),
        "name": name,
        "verified": False,
        "http_status": None,
        "certificate": None,
        "error": None,
    }
    try:
        context = _context(ca_file, verify=True)
    except (OSError, ssl.SSLError) as error:
        result["error"] = f"файл CA {ca_file} не читается: {error}"
        return result
    try:
        der, status = _fetch(address, int(port), name, context, timeout)
    except ssl.SSLCertVerificationError as error:
        result["error"] = f"сертификат не принят: {error.verify_message or error.reason or error}"
    except (ssl.SSLError, OSError, ValueError) as error:
        result["error"] = f"нет TLS-соединения: {error}"
        return result
    else:
        result.update(verified=True, http_status=status, certificate=describe_certificate(der) if der else None)
        return result
    try:
        der, status = _fetch(address, int(port), name, _context(None, verify=False), timeout)
        result["http_status"] = status
        result["certificate"] = describe_certificate(der) if der else None
    except (ssl.SSLError, OSError, ValueError):
        pass
    return result


def collect(settings: dict[str, Any]) -> dict[str, Any]:
    """Every network observation of one host's report."""
    resolvers = list(settings.get("resolvers") or [])
    portal_name, fallback_name = settings.get("portal_name"), settings.get("fallback_name")
    address, port = settings.get("https_address") or settings.get("address"), int(settings.get("https_port", 443))
    ca_file = settings.get("https_ca_file") or None
    network: dict[str, Any] = {"https": {}}
    if portal_name:
        network["dns"] = resolve(portal_name, resolvers)
    for name in (portal_name, fallback_name):
        if name and address:
            network["https"][name] = probe_https(address, port, name, ca_file)
    if fallback_name:
        fallback = resolve(fallback_name, resolvers)
        if fallback["addresses"]:
            fallback["probe"] = probe_https(fallback["addresses"][0], port, fallback_name, ca_file)
        network["fallback"] = fallback
    return network
