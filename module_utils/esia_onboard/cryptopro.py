"""CryptoPro CSP and the cryptopro role: its rules, the parsers of CryptoPro's
command-line output, and the one way a PIN reaches a CryptoPro tool.

Used by library/cryptopro_csp.py and library/cryptopro_key.py (on the host),
by filter_plugins/cryptopro.py (on the controller) and by the rule registry
(settings.py). The output formats are documented, with their sources, in
tests/doubles/cryptopro/README.md.

PIN handling (issue 13, point 7): csptest (-password), cryptcp (-pin) and
certmgr (-pin) take the PIN on their command line, where every local user
can read it in /proc/<pid>/cmdline. Without that option (and without
-silent) the tools ask for it on the console. :func:`run_with_pin` runs the
tool on a pseudo-terminal of its own and types the PIN at that prompt, so
the PIN is in no argv and no environment.
"""

from __future__ import annotations

import datetime
import os
import re
import select
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.module_utils.esia_onboard.core import problem
from ansible.module_utils.esia_onboard.names import container_valid

# -------------------------------------------------------------- error codes

#: CryptoAPI codes CryptoPro prints as ``[ErrorCode: 0x...]`` and what to do.
ERRORS: dict[str, tuple[str, str]] = {
    "0x80090022": (
        "NTE_SILENT_CONTEXT",
        "the CSP needed to ask a person (the interactive bio_tui RNG, or a PIN prompt under -silent). "
        "Remove bio_tui (cpconfig -hardware rndm -del bio_tui), give the cpsd RNG the vendor's gamma "
        "(cryptopro_rng_gamma_file, made with genkpim) and run again",
    ),
    "0x8010006b": ("SCARD_W_WRONG_CHV", "the PIN is wrong: cryptopro_pin is not the container's PIN"),
    "0x80090016": ("NTE_BAD_KEYSET", "the key container does not exist for this user"),
    "0x8009000f": ("NTE_EXISTS", "the key container already exists"),
    "0x80090017": ("NTE_PROV_TYPE_NOT_DEF", "the provider type is not installed in this CSP"),
    "0x8009000b": ("NTE_BAD_KEY_STATE", "the key is not exportable (made without cryptopro_exportable)"),
    "0x8009101b": ("CRYPT_E_KEY_MISMATCH", "the certificate was issued for another key"),
}

_ERROR_CODE = re.compile(r"\[ErrorCode:\s*(?P<code>0x[0-9A-Fa-f]{8})\]")
_FQCN = re.compile(r"^\\\\\.\\(?P<reader>[^\\]+)\\(?P<name>.+)$")
_CERT_HEADER_LINE = re.compile(r"^\s*(?P<index>\d+)-{7}\s*$")
_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 ]*?)\s*:\s(?P<value>.*)$")
_PROVIDER_TYPE = re.compile(r"(?:ProvType|Provider Type):\s*(?P<type>\d+)")
_DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d.%m.%Y %H:%M:%S")
_LICENSE_SERIAL = re.compile(r"\b(?P<serial>[0-9A-Z]{5}(?:-?[0-9A-Z]{5}){4})\b")
_PROMPT = re.compile(rb"(?i)(password|pin|\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c)[^\n]*:\s*$")


def error_code(output: str) -> str | None:
    """The last ``[ErrorCode: 0x...]`` of a CryptoPro tool's output, lower case."""
    codes = _ERROR_CODE.findall(output)
    return codes[-1].lower() if codes else None


def explain(output: str) -> str:
    """A sentence naming CryptoPro's error code and the fix, or '' when none is known."""
    code = error_code(output)
    if code in ERRORS:
        name, fix = ERRORS[code]
        return f"{code} is {name}: {fix}."
    return ""


# -------------------------------------------------------------- parsers


def fqcn(name: str, reader: str = "HDIMAGE") -> str:
    r"""``esia_77`` -> ``\\.\HDIMAGE\esia_77``; ValueError for a name CryptoPro or a file system would mangle."""
    if not container_valid(name):
        raise ValueError(
            f"container name {name!r} must be 1-64 characters of letters, digits, '_', '-', '.'"
            " and must not start with '.' or '-'"
        )
    return f"\\\\.\\{reader}\\{name}"


def container_list(output: str) -> dict[str, Any]:
    """``csptest -keyset -enum_cont -fqcn -verifyc`` (decoded from cp1251): error code and containers
    ({fqcn, reader, name}); ValueError when it is not that command's output."""
    code = error_code(output)
    if code is None or "AcquireContext" not in output:
        raise ValueError("not the output of `csptest -keyset -enum_cont` (no AcquireContext / [ErrorCode] line)")
    containers = []
    for line in output.splitlines():
        match = _FQCN.match(line.strip())
        if match:
            containers.append({"fqcn": line.strip(), "reader": match["reader"], "name": match["name"]})
    return {"ok": code == "0x00000000", "error_code": code, "containers": containers}


def parse_containers(output: str) -> list[str]:
    """Fully qualified names listed by ``csptest -keyset -enum_cont -fqcn -verifyc``."""
    return [c["fqcn"] for c in container_list(output)["containers"]]


def _iso(value: str) -> str | None:
    text = " ".join(value.replace("UTC", "").split())
    for fmt in _DATE_FORMATS:
        try:
            moment = datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def _hex(value: str) -> str:
    text = value.strip()
    if text.lower().startswith("0x"):
        text = text[2:]
    return text.upper()


def certmgr_list(output: str) -> dict[str, Any]:
    """``certmgr -list [...]``: error code and one dict per certificate with subject, issuer, serial
    and sha1 (upper-case hex), not_before / not_after (ISO 8601 UTC), private_key_link, container,
    provider_type, extended_key_usage. ValueError when there is no [ErrorCode] line."""
    code = error_code(output)
    if code is None:
        raise ValueError("not the output of `certmgr` (no [ErrorCode] line)")
    certificates: list[dict] = []
    current: dict | None = None
    last_key = None
    for line in output.splitlines():
        header = _CERT_HEADER_LINE.match(line)
        if header:
            current = {"index": int(header["index"]), "fields": {}}
            certificates.append(current)
            last_key = None
            continue
        if current is None or line.startswith("====") or not line.strip():
            continue
        field = _FIELD.match(line)
        if field and not line.startswith(" "):
            last_key = field["key"].strip()
            current["fields"].setdefault(last_key, []).append(field["value"].strip())
        elif last_key is not None and line.startswith(" "):
            current["fields"][last_key].append(line.strip())
    parsed = []
    for cert in certificates:
        fields = cert["fields"]

        def first(*keys: str, fields: dict = fields) -> str:
            for key in keys:
                if key in fields:
                    return fields[key][0]
            return ""

        provider = _PROVIDER_TYPE.search(first("Provider Info"))
        link = first("PrivateKey Link", "PrivateKey").split()
        parsed.append(
            {
                "index": cert["index"],
                "subject": first("Subject"),
                "issuer": first("Issuer"),
                "serial": _hex(first("Serial")),
                "sha1": _hex(first("SHA1 Hash", "SHA1 Thumbprint")),
                "not_before": _iso(first("Not valid before", "ValidFrom")),
                "not_after": _iso(first("Not valid after", "ValidTo")),
                "private_key_link": bool(link) and link[0].lower() in ("yes", "present"),
                "container": first("Container") or None,
                "provider_type": int(provider["type"]) if provider else None,
                "extended_key_usage": fields.get("Extended Key Usage", []),
            }
        )
    return {"ok": code == "0x00000000", "error_code": code, "certificates": parsed}


def parse_certmgr_sha1(output: str) -> list[dict[str, Any]]:
    """``certmgr -list``: per certificate its SHA-1 (upper hex) and whether it links to a private key."""
    try:
        listed = certmgr_list(output)["certificates"]
    except ValueError:
        return []
    return [{"sha1": c["sha1"], "private_key_link": c["private_key_link"]} for c in listed]


def parse_license(output: str, today: datetime.date | None = None) -> dict[str, Any]:
    """``cpconfig -license -view``::

        License validity:
        5050N4003001BT72MA83QF3T0
        Expires: 94 day(s)
        License type: Demo.

    -> serial, serial_normalized (no dashes), type (``Demo``, ``Client``,
    ``Server``...), permanent, days_left (None when permanent) and expires
    (ISO date, None when permanent). ValueError when no serial is shown.
    """
    today = today or datetime.datetime.now(datetime.UTC).date()
    serial = _LICENSE_SERIAL.search(output)
    if serial is None:
        raise ValueError("no licence serial in the output of `cpconfig -license -view`")
    kind = re.search(r"^License type:\s*(?P<v>.+?)\.?\s*$", output, re.MULTILINE)
    expires = re.search(r"^Expires:\s*(?P<v>.+?)\s*$", output, re.MULTILINE)
    text = expires["v"] if expires else ""
    permanent = "permanent" in text.lower()
    days: int | None = None
    if re.search(r"expired", output, re.IGNORECASE):
        days = 0
    elif not permanent and text:
        months = re.search(r"(\d+)\s*month", text)
        day = re.search(r"(\d+)\s*day", text)
        date = re.search(r"(\d{2})[./](\d{2})[./](\d{4})", text)
        if date:
            days = (datetime.date(int(date[3]), int(date[2]), int(date[1])) - today).days
        elif months or day:
            days = (int(months[1]) * 30 if months else 0) + (int(day[1]) if day else 0)
    return {
        "serial": serial["serial"],
        "serial_normalized": serial["serial"].replace("-", ""),
        "valid": not re.search(r"expired", output, re.IGNORECASE) and "License validity" in output,
        "expires_text": text or None,
        "type": kind["v"].strip() if kind else None,
        "permanent": permanent,
        "days_left": days,
        "expires": None if days is None else (today + datetime.timedelta(days=days)).isoformat(),
    }


def license_verdict(licence: Mapping[str, Any], environment: str, min_days: int) -> tuple[str, str]:
    """('ok'|'warn'|'fail', message): a Demo licence or one expiring within
    ``min_days`` fails in ``prod`` and warns in ``test``."""
    reasons = []
    if str(licence.get("type") or "").lower() in ("demo", "trial"):
        reasons.append(
            f"the installed CryptoPro CSP licence is a {licence.get('type')} licence "
            f"(expires {licence.get('expires') or 'soon'})"
        )
    days = licence.get("days_left")
    if days is not None and days < min_days:
        reasons.append(f"the licence expires in {days} day(s), fewer than cryptopro_license_min_days ({min_days})")
    if not reasons:
        return "ok", ""
    fix = (
        "buy a CryptoPro CSP server licence (a workstation licence is not a server solution) and set "
        "cryptopro_license_serial from the vault (runbook 03, «Лицензия»)"
    )
    message = "; ".join(reasons) + f": {fix}."
    return ("fail" if environment == "prod" else "warn"), message


def rng_names(output: str) -> list[str]:
    """The RNG names ``cpconfig -hardware rndm -view`` lists, lower case."""
    names = []
    for line in output.splitlines():
        match = re.match(r"^\s*(?:Name:\s*)?(?P<n>[A-Za-z_][A-Za-z0-9_]*)\b", line)
        if match and match["n"].lower() not in ("name", "level", "type"):
            names.append(match["n"].lower())
    return names


def version_key(version: str) -> list[Any]:
    """A sort key that orders Debian versions the way dpkg does for the forms
    CryptoPro uses (``5.0.13000-7``, ``5.0.12500-6``): epoch, then numeric and
    alphabetic runs of upstream and revision compared in turn."""
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")

    def split(part: str) -> list[Any]:
        return [(0, int(run)) if run.isdigit() else (1, run) for run in re.findall(r"\d+|[^\d]+", part)]

    return [int(epoch or 0), split(upstream), split(revision)]


def version_change(installed: str | None, wanted: str) -> str:
    """'install', 'same', 'upgrade' or 'downgrade'."""
    if not installed:
        return "install"
    if installed == wanted:
        return "same"
    return "upgrade" if version_key(wanted) > version_key(installed) else "downgrade"


# -------------------------------------------------------------- the PIN


def run_with_pin(
    argv: Sequence[str],
    pin: str | None,
    timeout: float = 120.0,
    preexec: Any = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """Run a CryptoPro tool on a pseudo-terminal of its own and type ``pin``
    at its password prompt. Returns (exit status, output). The PIN is never
    in argv or environment; it is written to the terminal only after the
    tool printed a prompt (a line ending in "password...:", "pin...:" or
    "пароль...:"), because a tool that turns echo off may discard input
    typed earlier. ``pin=None``: no prompt is expected (a prompt fails the call)."""
    import pty

    pid, master = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout, stderr and /dev/tty
        try:
            if preexec is not None:
                preexec()
            os.execvpe(argv[0], list(argv), dict(env if env is not None else os.environ))
        finally:
            os._exit(127)
    output = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, 9)
                output += b"\n[esia-onboard: no answer within %d s]" % timeout
                break
            ready, _, _ = select.select([master], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            tail = output.rsplit(b"\n", 1)[-1]
            if _PROMPT.search(tail):
                if pin is None or answered >= 2:
                    os.kill(pid, 9)
                    output += (
                        b"\n[esia-onboard: the tool asked for a PIN, but none was expected]"
                        if pin is None
                        else b"\n[esia-onboard: the tool asked for a PIN again; it is wrong]"
                    )
                    break
                os.write(master, pin.encode("utf-8") + b"\n")
                answered += 1
                output += b"\n"
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    text = output.decode("utf-8", "replace")
    if "\ufffd" in text:
        text = output.decode("cp1251", "replace")  # csptest prints cp1251
    if pin:
        text = text.replace(pin, "********")
    return rc, text.replace("\r\n", "\n")


# -------------------------------------------------------------- rules


def rules(settings: Mapping[str, Any], check_files: bool = True) -> list[str]:
    """Problems of the cryptopro settings across each other (role defaults applied).
    The gamma is required on the cryptopro backend everywhere (validate.yml refuses an
    inventory without it before any host is touched). ``check_files``: also look at the
    controller's files (vendor archive, gamma), as the role's entry check does; validate.yml's
    registry judges the settings only, so an inventory whose files arrive later still passes."""
    found: list[str] = []
    backend = settings.get("cryptopro_backend", "cryptopro")
    ptype = settings.get("cryptopro_provider_type", 80)
    if str(ptype) == "81" and settings.get("cryptopro_allow_512bit_signer") is not True:
        found.append(
            problem(
                "cryptopro_provider_type",
                ptype,
                "81 (a 512-bit key) is refused for the ESIA signer: every reference client signs with "
                "GOST R 34.10-2012 256-bit keys and nothing shows ESIA accepts a 512-bit client_secret. "
                "Use 80, or set cryptopro_allow_512bit_signer: true to take the risk",
            )
        )
    # Only where the cryptopro role's settings are in play (role defaults applied name the backend).
    if settings.get("cryptopro_backend") == "cryptopro":
        gamma = settings.get("cryptopro_rng_gamma_file", "")
        if not gamma:
            found.append(
                problem(
                    "cryptopro_rng_gamma_file",
                    gamma,
                    "the cryptopro backend needs the gamma (kis_1) of CryptoPro's cpsd RNG for headless key "
                    "generation: make it with the vendor's genkpim on a machine with CryptoPro "
                    "(genkpim <count> <8-hex-id> <dir>) or take the one supplied with the distribution, "
                    "put it on the controller and set cryptopro_rng_gamma_file to its path (runbook 03, «Гамма ДСЧ»)",
                )
            )
        elif check_files and (not os.path.isfile(gamma) or os.path.getsize(gamma) == 0):
            found.append(
                problem(
                    "cryptopro_rng_gamma_file",
                    gamma,
                    "no such non-empty file on the controller: give the path of the kis_1 made with genkpim",
                )
            )
    if backend == "cryptopro" and check_files:
        found += distribution_problems(settings)
    source = settings.get("cryptopro_certificate_source")
    if source not in (None, "selfsigned", "issued"):
        found.append(problem("cryptopro_certificate_source", source, "use selfsigned (test) or issued"))
    if source == "selfsigned" and settings.get("esia_client_environment") == "prod":
        found.append(
            problem(
                "cryptopro_certificate_source",
                source,
                "a self-signed certificate is for the ESIA test environment only; prod needs `issued` "
                "(a certificate of an accredited CA)",
            )
        )
    days = settings.get("cryptopro_license_min_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        found.append(problem("cryptopro_license_min_days", days, "give a whole number of days, 0 or more"))
    for name in ("cryptopro_allow_512bit_signer", "cryptopro_allow_upgrade"):
        if name in settings and not isinstance(settings[name], bool):
            found.append(problem(name, settings[name], "write true or false (a YAML boolean, not a string)"))
    return found


def distribution_problems(settings: Mapping[str, Any]) -> list[str]:
    """The vendor archive on the controller: set, a file, and matching its pinned SHA-256."""
    import hashlib

    archive = settings.get("cryptopro_distribution", "")
    pinned = str(settings.get("cryptopro_distribution_sha256", "") or "").lower()
    if not archive:
        return [
            problem(
                "cryptopro_distribution",
                archive,
                "cryptopro_distribution is empty. The cryptopro backend installs CryptoPro CSP from the vendor "
                "archive (linux-amd64_deb.tgz, downloaded from cryptopro.ru with the MIAC's account): put it on "
                "the controller, set cryptopro_distribution to its path and cryptopro_distribution_sha256 to its "
                "SHA-256. Without CryptoPro use cryptopro_backend: openssl_gost",
            )
        ]
    if not os.path.exists(archive):
        return [problem("cryptopro_distribution", archive, "it does not exist on the controller: give the path")]
    if not os.path.isfile(archive):
        return [problem("cryptopro_distribution", archive, "it is not a file: give the path of the .tgz")]
    if pinned:
        digest = hashlib.sha256()
        with open(archive, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != pinned:
            return [
                problem(
                    "cryptopro_distribution_sha256",
                    pinned,
                    f"cryptopro_distribution_sha256 does not match {archive} (the file has {digest.hexdigest()}): "
                    "download the archive again or correct the pin",
                )
            ]
    return []


def warnings(settings: Mapping[str, Any]) -> list[str]:
    """Advice that does not fail a run."""
    if str(settings.get("cryptopro_provider_type", 80)) == "81" and settings.get("cryptopro_allow_512bit_signer"):
        return [
            "cryptopro_provider_type 81 with cryptopro_allow_512bit_signer: true: the signer uses a 512-bit key; "
            "no public ESIA client does, and ESIA may answer ESIA-007053. Test on the ESIA test environment first."
        ]
    return []
