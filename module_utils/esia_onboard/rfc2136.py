"""RFC 2136 dynamic updates with TSIG (RFC 8945), all-or-nothing, for every caller.

One client for everything esia-onboard writes into a DNS zone: the portal's
A/AAAA sets (portal_domain) and the ACME dns-01 TXT records (portal_https).

- `Master` reads record sets straight from the zone's primary master (TCP,
  no recursion, optionally TSIG-signed queries) and sends updates to it.
- `build_update` turns a list of changes into ONE UPDATE message whose
  prerequisites are the exact record sets read before (RFC 2136 2.4.2
  "RRset exists (value dependent)" or 2.4.3 "RRset does not exist"), so the
  server applies all of it or none of it, and refuses it when anything
  changed between the read and the update.
- Every failure is a `DnsError` whose `reason` is a short code and whose
  message says what happened and what to do; the TSIG secret never appears.

A change is a dict ``{"name", "type", "ttl", "rdata": [...], "before": {"ttl", "rdata": [...]}}``:
`rdata` is the whole wanted set (empty = delete the set), `before` what the
master held when it was read (empty rdata = the set did not exist).
"""

from __future__ import annotations

import base64
import ipaddress
import time
from typing import Any

from ansible.module_utils.esia_onboard import net

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.resolver
    import dns.tsig
    import dns.update

    HAS_DNSPYTHON = True
except ImportError:  # the module using this reports missing_required_lib("dnspython")
    HAS_DNSPYTHON = False

TSIG_ALGORITHMS = ("hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")

# What each reason means for the operator, appended to the message.
HINTS = {
    "tsig": "Check the key name, its secret and its algorithm against the key in the server's configuration.",
    "refused": "The server's update policy (allow-update / update-policy) does not grant this key these names "
    "and types: grant them on the server.",
    "unreachable": "Check the server address and port, that the server runs, and that TCP and UDP to it "
    "are allowed from the controller.",
    "not_authoritative": "Point the update at the zone's primary master, which must be authoritative for the zone.",
    "race": "The records changed on the server between the read and the update, so nothing was applied: "
    "re-run to read them again.",
}

# dnspython's TSIG errors for a server's TSIG error code (RFC 8945 5.3.2).
_PEER_TSIG = {
    "PeerBadKey": "BADKEY: the server does not know this key name or algorithm",
    "PeerBadSignature": "BADSIG: the secret does not match the server's",
    "PeerBadTime": "BADTIME: the clocks of the controller and the server differ too much",
    "PeerBadTruncation": "BADTRUNC: the server rejected the truncated MAC",
}
# Update rcodes that mean "a prerequisite did not hold" (RFC 2136 2.4, 3.2).
_RACE_RCODES = ("YXDOMAIN", "YXRRSET", "NXDOMAIN", "NXRRSET")


class DnsError(Exception):
    """A failure with a reason code (config, tsig, refused, unreachable,
    not_authoritative, race, conflict, query_failed, apex, not_in_zone,
    update_failed) that callers turn into their own wording."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# ---------------------------------------------------------------- parsing


def parse_endpoint(server: str, default_port: int) -> tuple[str, int]:
    """Split "ip", "ip:port" or "[ipv6]:port" into a checked address and a port."""
    text = server.strip()
    if text.startswith("["):
        _host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise DnsError("config", f"server {server!r} is not an address: write [ipv6]:port")
    host, port_text = net.split_endpoint(text, default_port)
    port = _port(port_text, server)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise DnsError(
            "config", f"server {server!r} is not an IP address (write ip, ip:port or [ipv6]:port; no host names)"
        ) from None
    if not 0 < port < 65536:
        raise DnsError("config", f"port {port} of server {server!r} is out of range")
    return str(address), port


def _port(text: str, server: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise DnsError("config", f"port {text!r} of server {server!r} is not a number")
    return int(text)


def endpoint_text(address: str, port: int) -> str:
    return net.format_endpoint(address, port)


def absolute_name(text: str) -> str:
    """The name in ASCII (IDNA) form with its trailing dot, lower case."""
    try:
        return dns.name.from_text(str(text).strip().rstrip(".") + ".").to_text().lower()
    except (dns.exception.DNSException, UnicodeError) as err:
        raise DnsError("config", f"{text!r} is not a DNS name: {err}") from err


def canonical_rdata(rdtype: str, values: list[str], name: str) -> list[str]:
    """Values in the server's canonical text form, sorted and de-duplicated."""
    result = set()
    for value in values:
        try:
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), str(value).strip())
        except (dns.exception.DNSException, ValueError) as err:
            raise DnsError("config", f"{value!r} is not a valid {rdtype} value for {name}: {err}") from err
        result.add(rdata.to_text())
    return sorted(result)


def in_zone(name: str, zone: str) -> bool:
    """Is the absolute `name` at or below the absolute `zone`?"""
    return dns.name.from_text(name).is_subdomain(dns.name.from_text(zone))


def make_key(name: str, secret: str, algorithm: str = "hmac-sha256") -> Any:
    """A dnspython TSIG key; a bad secret is reported without echoing it."""
    if algorithm not in TSIG_ALGORITHMS:
        raise DnsError("config", f"TSIG algorithm {algorithm!r} is not one of {', '.join(TSIG_ALGORITHMS)}")
    if not secret:
        raise DnsError("tsig", f"the TSIG key {name!r} has no secret")
    try:
        # Strict: base64.decodebytes (what dnspython uses) skips stray characters.
        if not base64.b64decode(secret.strip(), validate=True):
            raise ValueError("empty")
        return dns.tsig.Key(name, secret.strip(), algorithm)
    except Exception as err:  # binascii.Error, dns.name errors: never echo the secret
        raise DnsError(
            "tsig", f"the TSIG key {name!r} cannot be used: its secret is not valid base64 ({type(err).__name__})"
        ) from None


# ---------------------------------------------------------------- records as text


def zone_lines(rrsets: list[dict[str, Any]]) -> str:
    """Zone-file lines ("name ttl IN type value") of every set that has values."""
    lines = [
        f"{r['name']} {r['ttl']} IN {r['type']} {value}"
        for r in sorted(rrsets, key=lambda r: (r["name"], r["type"]))
        for value in r["rdata"]
    ]
    return "".join(line + "\n" for line in lines)


def nsupdate_script(zone: str, server: str, rrsets: list[dict[str, Any]], header: str = "") -> str:
    """An nsupdate(1) script that puts every given set back exactly as given
    (sets without values are deleted). `server` is "ip:port" or "[ipv6]:port"."""
    address, port = parse_endpoint(server, 53)
    comments = "".join(f"; {line}\n" if line else ";\n" for line in header.splitlines())
    body = [f"server {address} {port}", f"zone {zone}"]
    for rrset in sorted(rrsets, key=lambda r: (r["name"], r["type"])):
        body.append(f"update delete {rrset['name']} IN {rrset['type']}")
        body += [f"update add {rrset['name']} {rrset['ttl']} IN {rrset['type']} {v}" for v in rrset["rdata"]]
    body.append("send")
    return comments + "\n".join(body) + "\n"


# ---------------------------------------------------------------- planning


def plan(current: list[dict[str, Any]], wanted: list[dict[str, Any]], compare_ttl: bool = True) -> list[dict[str, Any]]:
    """The wanted sets whose current state differs, each with what is there now as `before`."""
    by_key = {(c["name"], c["type"]): c for c in current}
    changes = []
    for want in wanted:
        now = by_key.get((want["name"], want["type"]), {"ttl": None, "rdata": []})
        if now["rdata"] != want["rdata"] or (compare_ttl and want["rdata"] and now["ttl"] != want["ttl"]):
            changes.append({**want, "before": {"ttl": now["ttl"], "rdata": list(now["rdata"])}})
    return changes


def serial_newer(after: int, before: int) -> bool:
    """RFC 1982 serial number arithmetic: is `after` newer than `before`?"""
    distance = (after - before) % (1 << 32)
    return 0 < distance < (1 << 31)


def build_update(zone: str, changes: list[dict[str, Any]], key: Any = None) -> Any:
    """ONE UPDATE for every change, conditional on the exact sets read before.

    Refuses (reason `not_in_zone`/`apex`) any name outside the zone or at its
    apex: the apex holds the zone's own SOA/NS/A and is never written here.
    """
    zone = absolute_name(zone)
    update = dns.update.UpdateMessage(zone)
    for change in changes:
        name, rdtype = absolute_name(change["name"]), str(change["type"]).upper()
        if not in_zone(name, zone):
            raise DnsError("not_in_zone", f"{name} is not inside zone {zone}: it cannot be updated there")
        if name == zone:
            raise DnsError("apex", f"{name} is the apex of zone {zone}; its records are never written")
        before = change["before"]["rdata"]
        if before:
            update.present(name, rdtype, *before)
        else:
            update.absent(name, rdtype)
        update.delete(name, rdtype)
        if change["rdata"]:
            update.add(name, int(change["ttl"]), rdtype, *change["rdata"])
    if key is not None:
        update.use_tsig(key)
    return update


# ---------------------------------------------------------------- the server


class Master:
    """A zone's primary master: exact reads and conditional updates, over TCP."""

    def __init__(
        self,
        address: str,
        port: int = 53,
        timeout: float = 5.0,
        key: Any = None,
        attempts: int = 1,
        retry_delay: float = 0.0,
    ) -> None:
        self.address, self.port, self.timeout, self.key = address, int(port), float(timeout), key
        self.attempts, self.retry_delay = max(1, int(attempts)), float(retry_delay)
        self.where = endpoint_text(address, self.port)

    @classmethod
    def from_settings(
        cls,
        server: str,
        port: int = 53,
        key_name: str = "",
        key_secret: str = "",
        key_algorithm: str = "hmac-sha256",
        **options: Any,
    ) -> Master:
        address, port = parse_endpoint(server, port)
        key = make_key(key_name, key_secret, key_algorithm) if key_name else None
        return cls(address, port, key=key, **options)

    # -- transport

    def _key_name(self) -> str:
        return self.key.name.to_text(True) if self.key is not None else ""

    def _exchange(self, message: Any) -> Any:
        try:
            return dns.query.tcp(message, self.address, timeout=self.timeout, port=self.port)
        except dns.tsig.PeerError as err:
            detail = _PEER_TSIG.get(type(err).__name__, str(err))
            raise DnsError(
                "tsig", f"{self.where} rejected the TSIG key {self._key_name()!r}: {detail}. {HINTS['tsig']}"
            ) from None
        except (dns.message.BadTSIG, dns.message.UnknownTSIGKey, dns.tsig.BadSignature, dns.tsig.BadKey) as err:
            raise DnsError(
                "tsig",
                f"{self.where} did not sign its answer with the TSIG key {self._key_name()!r}: {err}. {HINTS['tsig']}",
            ) from None
        except (OSError, EOFError, dns.exception.Timeout) as err:
            raise DnsError(
                "unreachable", f"DNS server {self.where} is unreachable: {type(err).__name__}: {err}"
            ) from None

    def query(self, qname: str, rdtype: str) -> Any:
        """One non-recursive query, TSIG-signed when the master has a key; bounded retries."""
        for attempt in range(1, self.attempts + 1):
            query = dns.message.make_query(qname, rdtype)
            query.flags &= ~dns.flags.RD
            if self.key is not None:
                query.use_tsig(self.key)
            try:
                return self._exchange(query)
            except DnsError as err:
                if err.reason != "unreachable":
                    raise
                if attempt == self.attempts:
                    plural = "s" if attempt > 1 else ""
                    raise DnsError(
                        "unreachable", f"{err} (gave up after {self.attempts} attempt{plural}). {HINTS['unreachable']}"
                    ) from None
                time.sleep(self.retry_delay)
        raise AssertionError("not reached")

    # -- reads

    def soa_serial(self, zone: str) -> int:
        """The zone's serial; fails unless this server is authoritative for the zone."""
        zone = absolute_name(zone)
        answer = self.query(zone, "SOA")
        soa = answer.get_rrset(answer.answer, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA)
        authoritative = bool(answer.flags & dns.flags.AA)
        if answer.rcode() != dns.rcode.NOERROR or soa is None or not authoritative:
            raise DnsError(
                "not_authoritative",
                f"{self.where} does not answer authoritatively for zone {zone} (rcode "
                f"{dns.rcode.to_text(answer.rcode())}, {'an' if authoritative else 'no'} authoritative answer, "
                f"{'an' if soa is not None else 'no'} SOA record): it is not the zone's primary master",
            )
        return int(soa[0].serial)

    def rrset(self, name: str, rdtype: str) -> dict[str, Any]:
        """What the master holds for one set: ``{"name", "type", "ttl", "rdata"}`` (ttl None, rdata [] when absent)."""
        name, rdtype = absolute_name(name), str(rdtype).upper()
        answer = self.query(name, rdtype)
        if answer.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsError(
                "query_failed", f"{self.where} answered {dns.rcode.to_text(answer.rcode())} for {name} {rdtype}"
            )
        owner = dns.name.from_text(name)
        cname = answer.get_rrset(answer.answer, owner, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is not None and rdtype != "CNAME":
            raise DnsError(
                "conflict",
                f"{name} is a CNAME to {cname[0].target} on {self.where}; {rdtype} records cannot live next to it. "
                "Remove the CNAME in the zone (this toolkit never deletes records) or choose another name",
            )
        found = answer.get_rrset(answer.answer, owner, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        if found is None:
            return {"name": name, "type": rdtype, "ttl": None, "rdata": []}
        return {"name": name, "type": rdtype, "ttl": int(found.ttl), "rdata": sorted(r.to_text() for r in found)}

    # -- writes

    def send(self, update: Any) -> None:
        """Send one UPDATE (once: a lost answer is not retried blindly) and check the answer."""
        zone = update.zone[0].name.to_text(True) if update.zone else "?"
        try:
            response = self._exchange(update)
        except DnsError as err:
            if err.reason == "unreachable":
                raise DnsError(
                    "unreachable",
                    f"{err}; the update of zone {zone} may or may not have been applied: re-run (its prerequisites "
                    f"make a repeat safe). {HINTS['unreachable']}",
                ) from None
            raise
        rcode = dns.rcode.to_text(response.rcode())
        if rcode == "NOERROR":
            return
        if rcode in _RACE_RCODES:
            raise DnsError("race", f"{self.where} did not apply the update of zone {zone} ({rcode}). {HINTS['race']}")
        if rcode == "REFUSED":
            raise DnsError(
                "refused",
                f"{self.where} refused the update of zone {zone} (REFUSED) signed with the key "
                f"{self._key_name()!r}. {HINTS['refused']}",
            )
        if rcode == "NOTAUTH":
            # With TSIG, NOTAUTH carries BADSIG/BADKEY (raised above as PeerError
            # when the server also signs the error); unsigned NOTAUTH means
            # either the key was not accepted or the server is not the master.
            raise DnsError(
                "tsig" if self.key is not None else "not_authoritative",
                f"{self.where} answered NOTAUTH to the update of zone {zone}: it did not accept the TSIG key "
                f"{self._key_name()!r} or is not authoritative for the zone. {HINTS['tsig']} "
                f"{HINTS['not_authoritative']}",
            )
        if rcode == "NOTZONE":
            raise DnsError("not_in_zone", f"{self.where} answered NOTZONE: a name of the update is outside zone {zone}")
        raise DnsError("update_failed", f"{self.where} did not apply the update of zone {zone}: {rcode}")

    def apply(self, zone: str, changes: list[dict[str, Any]]) -> dict[str, int]:
        """Send every change as one conditional UPDATE; return the SOA serial before and after.

        The serial must move (RFC 1982): otherwise the server answered NOERROR
        without committing, which is reported as `update_failed`."""
        if not changes:
            serial = self.soa_serial(zone)
            return {"serial_before": serial, "serial_after": serial}
        update = build_update(zone, changes, self.key)
        before = self.soa_serial(zone)
        self.send(update)
        after = self.soa_serial(zone)
        if not serial_newer(after, before):
            raise DnsError(
                "update_failed",
                f"{self.where} accepted the update of zone {zone} but its SOA serial did not move ({before} before, "
                f"{after} after): the server did not commit it. Look at its log",
            )
        return {"serial_before": before, "serial_after": after}

    # -- convenience for single record sets (ACME dns-01)

    def add_values(self, zone: str, name: str, rdtype: str, ttl: int, values: list[str]) -> dict[str, Any] | None:
        """Add `values` to the set at `name` (keeping the others); return the change sent, None if nothing to do."""
        return self._merge(zone, name, rdtype, ttl, values, add=True)

    def remove_values(self, zone: str, name: str, rdtype: str, values: list[str]) -> dict[str, Any] | None:
        """Remove `values` from the set at `name` (keeping the others); None if none of them is there."""
        return self._merge(zone, name, rdtype, None, values, add=False)

    def _merge(
        self, zone: str, name: str, rdtype: str, ttl: int | None, values: list[str], *, add: bool
    ) -> dict[str, Any] | None:
        name, rdtype = absolute_name(name), str(rdtype).upper()
        given = set(canonical_rdata(rdtype, values, name))
        current = self.rrset(name, rdtype)
        now = set(current["rdata"])
        target = sorted(now | given) if add else sorted(now - given)
        if target == current["rdata"]:
            return None
        keep_ttl = ttl if ttl is not None else (current["ttl"] if current["ttl"] is not None else 300)
        change = {
            "name": name,
            "type": rdtype,
            "ttl": int(keep_ttl),
            "rdata": target,
            "before": {"ttl": current["ttl"], "rdata": current["rdata"]},
        }
        self.apply(zone, [change])
        return change


# --------------------------------------------------------------------------
# Resolution as clients see it (verification of published records, fallback).
# --------------------------------------------------------------------------

SYSTEM_RESOLVER = "system resolver"


class StubClient:
    """Resolution through a resolver (CNAME chains followed), as a browser's resolver sees the name."""

    def __init__(self, address: str | None, port: int, timeout: float) -> None:
        if address:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [address]
            self.resolver.port = port
            self.where = endpoint_text(address, port)
        else:
            self.resolver = dns.resolver.Resolver()
            self.where = SYSTEM_RESOLVER
        self.resolver.lifetime = timeout
        self.resolver.cache = None

    def soa_serial(self, zone: str) -> int:
        answer = self._resolve(zone, "SOA")
        if answer is None:
            raise DnsError("query_failed", f"{self.where} has no SOA record for {zone}")
        return int(answer[0].serial)

    def rrset(self, name: str, rdtype: str) -> dict[str, Any]:
        answer = self._resolve(name, rdtype)
        if answer is None:
            return {"name": name, "type": rdtype, "ttl": None, "rdata": []}
        return {"name": name, "type": rdtype, "ttl": int(answer.ttl), "rdata": sorted(r.to_text() for r in answer)}

    def _resolve(self, name: str, rdtype: str) -> Any:
        try:
            return self.resolver.resolve(name, rdtype, search=False).rrset
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.resolver.LifetimeTimeout as err:
            raise DnsError("unreachable", f"resolver {self.where} did not answer for {name} {rdtype}: {err}") from None
        except dns.resolver.NoNameservers as err:
            raise DnsError("query_failed", f"resolver {self.where} could not resolve {name} {rdtype}: {err}") from None
        except dns.exception.DNSException as err:
            raise DnsError("query_failed", f"resolver {self.where} failed on {name} {rdtype}: {err}") from None


def describe(change: dict[str, Any], server: str, compare_ttl: bool) -> str:
    """One sentence for a set that differs from the wanted one."""
    before = change["before"]
    have = " ".join(before["rdata"]) if before["rdata"] else "nothing"
    if compare_ttl and before["rdata"]:
        have += f" (TTL {before['ttl']})"
    want = " ".join(change["rdata"]) + (f" (TTL {change['ttl']})" if compare_ttl else "")
    return f"{change['name']} {change['type']}: {server} answers {have}, wanted {want}"


def differences(client: Any, wanted: list[dict[str, Any]], compare_ttl: bool = False) -> list[str]:
    """What ``client`` answers that differs from ``wanted`` (one sentence each)."""
    current = [client.rrset(w["name"], w["type"]) for w in wanted]
    return [describe(c, client.where, compare_ttl) for c in plan(current, wanted, compare_ttl)]
