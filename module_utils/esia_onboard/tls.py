"""TLS rules of portal_https, one place for the filters, the controller-side
module (library/portal_https_certificates.py) and the host-side module
(library/portal_https_tls.py): check a certificate before nginx sees it, decide
OCSP stapling and ACME renewal, read the role's local fact.

``cryptography`` is needed by the checks (controller); the host-side helpers
import it only when they make keys, requests or certificates.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json

from ansible.module_utils.esia_onboard import certs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

_PEM_CERT = certs.PEM_CERTIFICATE


class TlsError(ValueError):
    """Bad input to a TLS rule; the message names it (filters raise it as AnsibleFilterError)."""


def portal_https_ascii_name(name: str) -> str:
    """`Запись.МИАЦ.рф.` -> `xn--80aa0aebnilt.xn--80aiecl.xn--p1ai`; ASCII names are lower-cased."""
    if not isinstance(name, str) or not name.strip():
        raise TlsError(f"portal_https_ascii_name expects a DNS name (a non-empty string), got {name!r}")
    stripped = name.strip().rstrip(".")
    try:
        return stripped.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise TlsError(f"portal_https_ascii_name: {name!r} is not a valid DNS name: {exc}") from exc


def _load_pem_certificates(text: str | bytes, label: str) -> list[x509.Certificate]:
    try:
        return certs.load_pem_certificates(text, label)
    except certs.CertificateError as exc:
        raise _Problem(str(exc)) from exc


class _Problem(Exception):
    """One finding that ends the check early (nothing further can be read)."""


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def _is_ca(certificate: x509.Certificate) -> bool:
    return certs.is_ca(certificate)


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _self_signed(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer and _issued_by(certificate, certificate)


def _dns_names(certificate: x509.Certificate) -> list[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName)]


def _covers(pattern: str, name: str) -> bool:
    """RFC 6125: a wildcard stands for exactly one whole left-most label."""
    if pattern == name:
        return True
    if pattern.startswith("*.") and "." in name:
        return name.split(".", 1)[1] == pattern[2:]
    return False


def _ocsp_uri(certificate: x509.Certificate) -> str:
    try:
        aia = certificate.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    except x509.ExtensionNotFound:
        return ""
    for description in aia:
        if description.access_method == AuthorityInformationAccessOID.OCSP:
            return str(description.access_location.value)
    return ""


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_key_from(private_key: str | None, public_key: str | None, key_label: str) -> bytes | None:
    """SubjectPublicKeyInfo of the key, or None when no key was given. Never
    puts key material into a message."""
    if private_key:
        data = private_key.encode() if isinstance(private_key, str) else private_key
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError as exc:
            raise _Problem(
                f"{key_label}: the private key is encrypted; nginx needs it unencrypted"
                " (protect it with Ansible Vault instead of a passphrase)"
            ) from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise _Problem(f"{key_label}: not a readable PEM private key") from exc
        return _spki(key.public_key())
    if public_key:
        data = public_key.encode() if isinstance(public_key, str) else public_key
        try:
            return _spki(serialization.load_pem_public_key(data))
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise _Problem(f"{key_label}: not a readable PEM public key") from exc
    return None


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def portal_https_certificate_check(
    certificate: str,
    names: list[str],
    chain: str = "",
    private_key: str | None = None,
    public_key: str | None = None,
    warning_days: int = 30,
    certificate_label: str = "the certificate",
    chain_label: str = "the chain",
    key_label: str = "the private key",
    now: str | datetime.datetime | None = None,
) -> dict:
    """Check a server certificate for `names` before it is installed.

    `certificate` is PEM text whose first certificate is the server's (the
    leaf); intermediates may follow it and/or come in `chain`. The key, when
    given (`private_key` PEM, or `public_key` PEM from openssl_privatekey_info),
    must match the leaf. Returns a dict: `errors` and `warnings` (lists of
    messages naming the file and the reason), and when the leaf could be read
    `subject`, `issuer`, `not_before`, `not_after`, `days_left`, `dns_names`,
    `sha256_fingerprint`, `ocsp_uri`, `chain_length`, `leaf_pem`, `chain_pem`
    (normalised PEM, leaf first), `key_checked`."""
    if not isinstance(certificate, str | bytes):
        raise TlsError(f"portal_https_certificate_check expects PEM text, got {type(certificate).__name__}")
    if isinstance(names, str) or not isinstance(names, list) or not names:
        raise TlsError(f"portal_https_certificate_check: names must be a non-empty list, got {names!r}")
    if now is None:
        moment = datetime.datetime.now(datetime.UTC)
    elif isinstance(now, datetime.datetime):
        moment = _utc(now)
    else:
        moment = _utc(datetime.datetime.fromisoformat(str(now).replace("Z", "+00:00")))

    errors: list[str] = []
    warnings: list[str] = []
    result: dict = {"errors": errors, "warnings": warnings, "key_checked": False}
    try:
        in_file = _load_pem_certificates(certificate, certificate_label)
        if not in_file:
            raise _Problem(f"{certificate_label}: no PEM certificate (-----BEGIN CERTIFICATE-----) found")
        in_chain = _load_pem_certificates(chain or "", chain_label)
        spki = _public_key_from(private_key, public_key, key_label)
    except _Problem as problem:
        errors.append(str(problem))
        return result

    leaf = in_file[0]
    # Where each certificate came from, for messages: (label, position in that file).
    origin = [(certificate_label, n) for n in range(1, len(in_file) + 1)]
    origin += [(chain_label, n) for n in range(1, len(in_chain) + 1)]
    path = in_file + in_chain

    if _is_ca(leaf):
        errors.append(
            f"{certificate_label}: the first certificate ({_subject(leaf)}) is a CA certificate, not the"
            " server certificate; put the server certificate first"
        )

    if spki is not None:
        result["key_checked"] = True
        if spki != _spki(leaf.public_key()):
            errors.append(
                f"{key_label} does not match {certificate_label}: the certificate ({_subject(leaf)}) was issued"
                " for another key"
            )

    dns_names = _dns_names(leaf)
    wanted = [portal_https_ascii_name(name) for name in names]
    missing = [name for name in wanted if not any(_covers(pattern, name) for pattern in dns_names)]
    if missing:
        listed = ", ".join(dns_names) if dns_names else "no DNS names at all"
        errors.append(
            f"{certificate_label}: the subjectAltName does not cover {', '.join(missing)}"
            f" (it lists {listed}); browsers ignore the CN, every served name must be in the SAN"
        )

    for position, current in enumerate(path):
        label, number = origin[position]
        where = f"{label}: certificate #{number} ({_subject(current)})"
        not_before = _utc(current.not_valid_before_utc)
        not_after = _utc(current.not_valid_after_utc)
        if not_after <= moment:
            errors.append(f"{where} expired on {_iso(not_after)}")
        elif not_before > moment:
            errors.append(f"{where} is not valid before {_iso(not_before)}")
        elif (not_after - moment) < datetime.timedelta(days=int(warning_days)):
            days = (not_after - moment).days
            warnings.append(
                f"{where} expires on {_iso(not_after)}, in {days} day(s) (warning threshold {warning_days} days):"
                " renew it"
            )
        if position == 0:
            continue
        if _self_signed(current):
            errors.append(
                f"{where} is a self-signed root CA; leave the root out of the chain (clients have it in their"
                " trust store)"
            )
            continue
        previous = path[position - 1]
        if not _issued_by(previous, current):
            errors.append(
                f"{where} did not issue the certificate before it ({_subject(previous)}): the chain must go"
                " server certificate first, then each issuer in turn"
            )

    not_after = _utc(leaf.not_valid_after_utc)
    result.update(
        subject=_subject(leaf),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=_iso(leaf.not_valid_before_utc),
        not_after=_iso(not_after),
        days_left=(not_after - moment).days,
        dns_names=dns_names,
        sha256_fingerprint=leaf.fingerprint(hashes.SHA256()).hex().upper(),
        ocsp_uri=_ocsp_uri(leaf),
        chain_length=len(path) - 1,
        leaf_pem=_pem(leaf),
        chain_pem="".join(_pem(c) for c in path[1:]),
    )
    return result


def portal_https_ca_certificate(data: str, label: str = "the CA certificate") -> dict:
    """Read one CA certificate given as PEM text or as base64 of a PEM or DER
    file (what `slurp` returns). Returns `sha256_fingerprint` (upper-case hex),
    `subject`, `not_after`, `ca`, `self_signed` and `pem`. Raises, naming
    `label`, when the input is not one certificate."""
    if not isinstance(data, str | bytes) or not data:
        raise TlsError(f"{label}: expected PEM text or base64 of a certificate file, got {data!r:.40}")
    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" not in raw:
        try:
            raw = base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise TlsError(f"{label}: neither PEM nor base64 ({exc})") from exc
    try:
        if b"-----BEGIN" in raw:
            blocks = _PEM_CERT.findall(raw)
            if len(blocks) != 1:
                raise TlsError(f"{label}: expected exactly one PEM certificate, found {len(blocks)}")
            certificate = x509.load_pem_x509_certificate(blocks[0])
        else:
            certificate = x509.load_der_x509_certificate(raw)
    except ValueError as exc:
        raise TlsError(f"{label}: not an X.509 certificate ({exc})") from exc
    return {
        "sha256_fingerprint": certificate.fingerprint(hashes.SHA256()).hex().upper(),
        "subject": _subject(certificate),
        "not_after": _iso(certificate.not_valid_after_utc),
        "ca": _is_ca(certificate),
        "self_signed": _self_signed(certificate),
        "pem": _pem(certificate),
    }


def portal_https_recorded_source(fact_text: str, site_id: str) -> str:
    """The certificate source the role recorded for a site in its local fact ("" when none).

    `fact_text` is /etc/ansible/facts.d/portal_https.fact as read from the host
    ("" when it does not exist); a fact that does not parse records nothing."""
    if not fact_text:
        return ""
    try:
        fact = json.loads(fact_text)
    except ValueError:
        return ""
    site = fact.get("certificates", {}).get(site_id, {}) if isinstance(fact, dict) else {}
    source = site.get("source", "") if isinstance(site, dict) else ""
    return source if isinstance(source, str) else ""


def portal_https_acme_plan(
    installed: str,
    names: list[str],
    public_key: str = "",
    renew_days: int = 30,
    force: bool = False,
    now: str | datetime.datetime | None = None,
    installed_source: str | None = None,
) -> dict:
    """Decide whether to order a certificate from the ACME CA.

    `installed` is the full chain PEM installed on the host ("" when none).
    `installed_source` is the certificate source the role recorded for it
    (ansible_local.portal_https; "" when nothing was recorded, None when not
    known): a certificate that did not come from the ACME CA (a switch from
    provided, ownca or selfsigned) is replaced, however long it is valid.
    Returns `due` (bool), `reason` (one sentence), `days_left` (None without a
    readable certificate), and `leaf_pem` / `chain_pem` of the installed
    certificate when it stays."""
    if isinstance(renew_days, bool) or not isinstance(renew_days, int) or renew_days < 1:
        raise TlsError(f"portal_https_acme_plan: renew_days must be a positive integer, got {renew_days!r}")
    plan: dict = {"due": True, "days_left": None, "leaf_pem": "", "chain_pem": ""}
    if not installed or "-----BEGIN CERTIFICATE-----" not in str(installed):
        plan["reason"] = "no certificate is installed yet"
        return plan
    if installed_source is not None and installed_source != "acme":
        plan["reason"] = (
            f"the installed certificate came from {installed_source or 'an unrecorded source'}, not from the ACME CA"
        )
        return plan
    check = portal_https_certificate_check(
        installed,
        names=names,
        public_key=public_key or None,
        warning_days=renew_days,
        certificate_label="the installed certificate",
        now=now,
    )
    plan["days_left"] = check.get("days_left")
    if check["errors"]:
        plan["reason"] = "the installed certificate cannot stay: " + " | ".join(check["errors"])
    elif check["days_left"] < renew_days:
        plan["reason"] = (
            f"the installed certificate expires on {check['not_after']}, in {check['days_left']} day(s),"
            f" fewer than portal_https_acme_renew_days ({renew_days})"
        )
    elif force:
        plan["reason"] = "portal_https_acme_force_renew is true"
    else:
        plan.update(
            due=False,
            reason=f"the installed certificate is valid until {check['not_after']} ({check['days_left']} days left)",
            leaf_pem=check["leaf_pem"],
            chain_pem=check["chain_pem"],
        )
    return plan


def _trusted(bundle: str | bytes) -> list[x509.Certificate]:
    data = bundle.encode() if isinstance(bundle, str) else bundle
    found = []
    for block in _PEM_CERT.findall(data or b""):
        try:
            found.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue  # one unreadable entry in a system bundle must not hide the others
    return found


def portal_https_stapling(
    leaf_pem: str,
    chain_pem: str = "",
    ocsp_uri: str = "",
    trusted: str = "",
    enabled: bool = True,
    trusted_label: str = "the trust store",
) -> dict:
    """OCSP stapling for one checked certificate: `on` and `reason`.

    nginx verifies a stapled response with the issuer's certificate and the
    roots in `ssl_trusted_certificate` (`trusted`, PEM bundle); it is only
    turned on when the certificate has an OCSP responder URL, has its issuer in
    the chain, and the last certificate of the chain was issued by a root in
    `trusted`. Otherwise stapling stays off and `reason` says why."""
    if not enabled:
        return {"on": False, "reason": "portal_https_ocsp_stapling is false"}
    if not ocsp_uri:
        return {"on": False, "reason": "the certificate names no OCSP responder (no AIA OCSP URL)"}
    chain = _load_pem_certificates(chain_pem or "", "the chain")
    if not chain:
        return {"on": False, "reason": "the issuer certificate is not in the chain, so a response cannot be verified"}
    top = chain[-1]
    roots = [c for c in _trusted(trusted) if c.subject == top.issuer]
    if not any(_issued_by(top, root) for root in roots):
        hint = (
            " (a certificate from the Russian Trusted Root CA: set portal_https_russian_trusted_root_file)"
            if "Russian Trusted" in top.issuer.rfc4514_string()
            else ""
        )
        return {
            "on": False,
            "reason": f"the chain ends at {top.issuer.rfc4514_string()}, which is not a root in {trusted_label}{hint}",
        }
    return {"on": True, "reason": f"the chain verifies up to {top.issuer.rfc4514_string()}"}


def portal_https_key_type(key_type: str, source: str) -> str:
    """`auto` -> `rsa` for `provided` (НУЦ Минцифры's documented CSR is RSA),
    `ecdsa` for every other source; an explicit type is kept."""
    if key_type in ("ecdsa", "rsa"):
        return key_type
    if key_type != "auto":
        raise TlsError(f"portal_https_key_type: expected auto, ecdsa or rsa, got {key_type!r}")
    return "rsa" if source == "provided" else "ecdsa"


def portal_https_acme_challenge_for(names: list[str], challenge: str, zone: str = "") -> str:
    """The ACME challenge for one certificate: dns-01 only when every name is
    inside `zone` (the MIAC zone the portal_domain TSIG key may write),
    otherwise http-01 (the fallback under 2dr.ru is not the MIAC's zone)."""
    if challenge not in ("http-01", "dns-01"):
        raise TlsError(f"portal_https_acme_challenge_for: expected http-01 or dns-01, got {challenge!r}")
    if challenge == "http-01":
        return challenge
    apex = portal_https_ascii_name(zone) if zone and zone.strip() else ""
    inside = bool(apex) and all(portal_https_ascii_name(n).endswith("." + apex) for n in names)
    return "dns-01" if inside else "http-01"


def portal_https_stock_conffile(conffiles: str, path: str, md5: str) -> bool:
    """True when `path` has the md5sum dpkg recorded for it (`dpkg-query
    --showformat='${Conffiles}'` output: " /path md5" lines), i.e. it is the
    file the package shipped, unchanged. A file dpkg does not list, or marks
    obsolete, is never taken as stock."""
    if not isinstance(conffiles, str):
        raise TlsError(f"portal_https_stock_conffile expects dpkg-query text, got {conffiles!r:.60}")
    for line in conffiles.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == path:
            return len(fields) == 2 and bool(md5) and fields[1].lower() == md5.lower()
    return False


def portal_https_acme_plans(sites: list[dict], host: dict, renew_days: int = 30, force: bool = False, now=None) -> dict:
    """The ACME plan (portal_https_acme_plan) of every acme site, by id, from what
    library/portal_https_tls.py read on the host (the served chain, the host key's
    public half, the source the role's local fact recorded). A site whose key
    is ready but whose request is not there yet (check mode) gets no plan."""
    plans = {}
    host_sites = (host or {}).get("sites", {})
    fact = (host or {}).get("fact", "")
    for site in sites:
        if site.get("source") != "acme":
            continue
        state = host_sites.get(site["id"], {})
        if state.get("key_ready", True) and not state.get("csr_pem") and not site.get("key_given"):
            continue
        plans[site["id"]] = portal_https_acme_plan(
            state.get("served_pem", ""),
            names=list(site["names"]),
            public_key=state.get("public_key_pem", ""),
            renew_days=int(renew_days),
            force=bool(force),
            now=now,
            installed_source=portal_https_recorded_source(fact, site["id"]),
        )
    return plans


def portal_https_acme_due(sites: list[dict], plans: dict) -> list[dict]:
    """The sites whose certificate must be ordered now (their plan says due)."""
    return [site for site in sites if plans.get(site["id"], {}).get("due")]
