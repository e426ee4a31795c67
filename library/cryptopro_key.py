#!/usr/bin/python
"""Ansible module: the GOST key, its request, its certificate and the DER export, for both backends."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cryptopro_key
short_description: GOST R 34.10-2012 key container, certificate request, certificate and DER export
description:
  - Backend C(cryptopro) (CryptoPro CSP) - creates the container C(\\.\HDIMAGE\<name>) of I(run_as) with
    C(csptest -keyset -newkeyset) (with C(-makecert) for I(certificate_source=selfsigned)), makes the request with
    C(cryptcp -creatrqst -nokeygen), installs the issued certificate into the container and the personal store with
    C(certmgr -inst) and exports it in DER with C(certmgr -export). Every command runs as I(run_as), because
    CryptoPro keeps containers per user.
  - The PIN reaches CryptoPro's tools only at their own password prompt, typed on a pseudo-terminal the module
    opens for each call; it is never in a command line or an environment (C(-password)/C(-pin) are not used,
    nor C(-silent), which forbids the prompt).
  - Backend C(openssl_gost) (Debian's OpenSSL GOST engine) - an AES-256 encrypted PKCS#8 key whose password is
    read from I(pin_file), the request, a self-signed or the issued certificate, and the DER export.
  - Never replaces an existing key. Reads state before every change, so a second run changes nothing.
  - Optionally exports the private key (PFX or encrypted PKCS#8 DER) to I(export_private_key), 0600.
  - Before the key, makes I(directories), writes I(files) (e.g. the GOST engine's OpenSSL configuration and
    C(esia-sign)), the PIN file I(pin_file) (0600, I(run_as)) and the issued certificate I(issued_certificate);
    after it, the signer's configuration I(signer_config) (with the certificate's thumbprint on the cryptopro
    backend). Each is read, compared and written only when it differs; the PIN file's diff never shows the PIN.
  - With I(self_check), signs a fresh probe message in each of I(self_check_modes) with I(signer) as I(run_as)
    and verifies every signature against the DER export with OpenSSL's GOST engine (a changed message must be
    rejected) - the one signing self-check of the cryptopro and esia_client roles (M(esia_client_host) reuses
    its result in the same run). With I(cpverify) (cryptopro backend) it also returns CryptoPro's own
    Streebog-256 of the DER (C(cpverify -mk -alg GR3411_2012_256)) for the role to compare with
    client_certificate_hash.
  - Supports check mode and diff mode.
version_added: "1.0.0"
author:
  - esia-onboard maintainers (@esia-onboard)
requirements:
  - CryptoPro CSP 5 (C(csptest), C(cryptcp), C(certmgr)) for the cryptopro backend
  - OpenSSL with the GOST engine (Debian's libengine-gost-openssl) for the openssl_gost backend
options:
  backend:
    description: Which GOST implementation holds the key.
    type: str
    required: true
    choices: [cryptopro, openssl_gost]
  container:
    description: Container name (without C(\\.\HDIMAGE\)).
    type: str
    required: true
  provider_type:
    description: 80 (256-bit key) or 81 (512-bit key).
    type: int
    default: 80
    choices: [80, 81]
  pin:
    description: PIN of the container / password of the key.
    type: str
    required: true
  run_as:
    description: Account that owns the key (the portal's service account).
    type: str
    required: true
  certificate_source:
    description: C(selfsigned) (the ESIA test environment) or C(issued) (a CA's certificate for the request).
    type: str
    default: issued
    choices: [selfsigned, issued]
  issued_file:
    description: Host path of the issued certificate (DER or PEM); empty while there is none.
    type: path
    default: ""
  request_file:
    description: Host path of the certificate request (PEM).
    type: path
    required: true
  der_file:
    description: Host path of the DER export of the certificate.
    type: path
    required: true
  subject:
    description: The subject - CryptoAPI syntax for cryptopro, OpenSSL C(-subj) syntax for openssl_gost.
    type: str
    required: true
  exportable:
    description: Make the CryptoPro key exportable (C(-exportable)).
    type: bool
    default: false
  export_private_key:
    description: Host path to export the private key to (PFX / encrypted PKCS#8 DER, 0600); empty = no export.
    type: path
    default: ""
  csptest:
    description: Path of csptest.
    type: path
    default: /opt/cprocsp/bin/amd64/csptest
  certmgr:
    description: Path of certmgr.
    type: path
    default: /opt/cprocsp/bin/amd64/certmgr
  cryptcp:
    description: Path of cryptcp.
    type: path
    default: /opt/cprocsp/bin/amd64/cryptcp
  key_file:
    description: openssl_gost - the encrypted private key.
    type: path
  pem_file:
    description: openssl_gost - the certificate in PEM.
    type: path
  pin_file:
    description: openssl_gost - the 0600 file holding the PIN (OpenSSL reads it with C(-passin file:)).
    type: path
  openssl_conf:
    description: openssl_gost - the OpenSSL configuration that loads the GOST engine.
    type: path
  algorithm:
    description: openssl_gost - C(gost2012_256) or C(gost2012_512).
    type: str
    default: gost2012_256
  digest:
    description: openssl_gost - C(md_gost12_256) or C(md_gost12_512).
    type: str
    default: md_gost12_256
  paramset:
    description: openssl_gost - GOST parameter set of a new key.
    type: str
    default: A
  days:
    description: Validity of a self-signed certificate (openssl_gost).
    type: int
    default: 365
  renew_days:
    description: Re-sign the self-signed certificate when it has fewer days left (openssl_gost).
    type: int
    default: 30
  directories:
    description: Directories to make first, each C({path, owner, group, mode}).
    type: list
    elements: dict
    default: []
  files:
    description:
      - Files to write before the key, each C({path, content, owner, group, mode}) and optionally C(validate), a
        command with C(%s) for the new file that must succeed before it replaces the old one.
    type: list
    elements: dict
    default: []
  issued_certificate:
    description: Base64 of the issued certificate (DER or PEM) from the controller, written to I(issued_file).
    type: str
    default: ""
  signer_config:
    description: The signer's configuration (JSON), written to I(signer_config_file) once there is a certificate.
    type: dict
    default: {}
  signer_config_file:
    description: Host path of the signer's configuration (0640, root and the group of I(run_as)).
    type: path
    default: ""
  self_check:
    description: Sign a probe with I(signer) as I(run_as) in each of I(self_check_modes) and verify it.
    type: bool
    default: false
  signer:
    description: The signer the self-check calls.
    type: path
    default: /usr/local/bin/esia-sign
  self_check_modes:
    description: The signature forms the self-check makes, C(v2) (raw GOST) and C(v1) (detached CMS).
    type: list
    elements: str
    default: [v2, v1]
  cpverify:
    description: cryptopro backend - path of cpverify; when set, RV(cpverify_hash) is CryptoPro's hash of the DER.
    type: path
    default: ""
  notes:
    description:
      - Texts shown as warnings - C(no_key) (check mode on a fresh host), C(no_certificate) (the request is
        ready, no certificate yet), C(exported) (the private key was exported).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Make the key container, the request and install the issued certificate
  cryptopro_key:
    backend: cryptopro
    container: esia_77
    pin: "{{ cryptopro_pin }}"
    run_as: esia-portal
    subject: "C=RU, O=MIAC, CN=MIAC"
    issued_file: /var/lib/esia-portal/esia/esia_77.issued.cer
    request_file: /var/lib/esia-portal/esia/esia_77.req
    der_file: /var/lib/esia-portal/esia/esia_77.cer
  no_log: true
"""

RETURN = r"""
ready:
  description: The key exists (false in check mode on a fresh host).
  type: bool
  returned: always
certificate:
  description: The DER export exists or was made.
  type: bool
  returned: always
actions:
  description: What was done (or would be done in check mode), e.g. C(create container), C(install certificate).
  type: list
  elements: str
  returned: always
der:
  description: Base64 of the DER export (empty while there is none).
  type: str
  returned: always
cpverify_hash:
  description: Upper-case hex of C(cpverify -mk -alg GR3411_2012_256) over the DER (empty unless I(cpverify)).
  type: str
  returned: always
self_check:
  description:
    - The self-check - C(ok), C(error), C(signer), C(run_as), C(certificate_sha1) and per mode C(modes.<mode>) with
      C(ok), C(error), C(message), C(signature_bytes), C(verified), C(tamper_rejected), C(digest) (no signature).
      Empty when it did not run.
  type: dict
  returned: always
"""

import base64  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.esia_onboard import certs, cryptopro, esia, files  # noqa: E402


def to_der(data: bytes) -> bytes:
    return certs.to_der(data)


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


class Key:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.actions: list[str] = []
        self.diffs: list[dict] = []
        self.files_changed = False
        self.account = pwd.getpwnam(self.p["run_as"])
        self.fqcn = cryptopro.fqcn(self.p["container"])

    # ---------------------------------------------------------- helpers

    def fail(self, msg: str) -> None:
        self.module.fail_json(
            msg=msg.replace(self.p["pin"], "********"), changed=bool(self.actions), actions=self.actions
        )

    def act(self, what: str) -> bool:
        """Record an action; True when it is to be done now (not check mode)."""
        self.actions.append(what)
        return not self.check

    def drop(self) -> None:
        os.initgroups(self.account.pw_name, self.account.pw_gid)
        os.setgid(self.account.pw_gid)
        os.setuid(self.account.pw_uid)

    def user_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TERM")}
        env.update(HOME=self.account.pw_dir, USER=self.account.pw_name, LOGNAME=self.account.pw_name)
        return env

    def csp(self, argv: list[str], pin: bool = False) -> tuple[int, str]:
        """A CryptoPro tool as the key's owner, on a terminal of its own (the PIN typed at its prompt)."""
        return cryptopro.run_with_pin(argv, self.p["pin"] if pin else None, preexec=self.drop, env=self.user_env())

    def own(self, path: str, mode: int) -> None:
        """The key's owner owns the file, with this mode."""
        if not os.path.exists(path):
            return
        info = os.stat(path)
        owner = (info.st_uid, info.st_gid) == (self.account.pw_uid, self.account.pw_gid)
        if (not owner or info.st_mode & 0o7777 != mode) and self.act(f"set owner and mode {mode:o} of {path}"):
            os.chown(path, self.account.pw_uid, self.account.pw_gid)
            os.chmod(path, mode)

    def place(self, data: bytes, path: str, mode: int) -> None:
        """Write a file atomically (new file, then the switch), owned by the key's owner."""
        directory = os.path.dirname(path)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".esia-onboard-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chown(temporary, self.account.pw_uid, self.account.pw_gid)
        os.chmod(temporary, mode)
        os.replace(temporary, path)

    # ---------------------------------------------------------- cryptopro

    def containers(self) -> list[str]:
        argv = [self.p["csptest"], "-keyset", "-enum_cont", "-fqcn", "-verifyc"]
        rc, text = self.csp(argv)
        try:
            return cryptopro.parse_containers(text)
        except ValueError:
            self.fail(f"csptest -keyset -enum_cont failed (exit {rc}): {text.strip()[-1500:]}")
        return []

    def certmgr_list(self, *where: str) -> list[dict]:
        rc, text = self.csp([self.p["certmgr"], "-list", *where])
        if cryptopro.error_code(text) is None:
            self.fail(f"certmgr -list {' '.join(where)} failed (exit {rc}): {text.strip()[-1500:]}")
        return cryptopro.parse_certmgr_sha1(text)

    def cryptopro(self) -> dict:
        p = self.p
        present = self.fqcn in self.containers()
        if not present:
            argv = [p["csptest"], "-keyset", "-newkeyset"]
            argv += ["-makecert"] if p["certificate_source"] == "selfsigned" else []
            argv += ["-container", self.fqcn, "-provtype", str(p["provider_type"]), "-keytype", "exchange"]
            argv += ["-exportable"] if p["exportable"] else []
            if self.act(f"create container {self.fqcn}"):
                rc, text = self.csp(argv, pin=True)
                if rc != 0:
                    self.fail(f"csptest -keyset -newkeyset failed (exit {rc}): {text.strip()[-1500:]} "
                              + cryptopro.explain(text))  # fmt: skip
                if self.fqcn not in self.containers():
                    self.fail(f"csptest reported success but {self.fqcn} is not listed: {text.strip()[-800:]}")
            else:
                return {"ready": False, "certificate": False}
        if p["certificate_source"] == "issued" and not os.path.exists(p["request_file"]):
            argv = [p["cryptcp"], "-creatrqst", "-dn", p["subject"], "-provtype", str(p["provider_type"]),
                    "-cont", self.fqcn, "-nokeygen", "-both", "-ku", p["request_file"]]  # fmt: skip
            if self.act("make the certificate request"):
                rc, text = self.csp(argv, pin=True)
                if rc != 0 or not os.path.exists(p["request_file"]):
                    self.fail(
                        f"cryptcp -creatrqst failed (exit {rc}): {text.strip()[-1500:]} {cryptopro.explain(text)}"
                    )
        self.own(p["request_file"], 0o644)
        wanted = self.wanted_certificate()
        if wanted is None:
            return {"ready": True, "certificate": False}
        store = self.certmgr_list("-store", "uMy")
        container = self.certmgr_list("-container", self.fqcn)
        in_store = any(c["sha1"] == wanted and c["private_key_link"] for c in store)
        in_container = any(c["sha1"] == wanted for c in container)
        if not (in_store and in_container) and self.act("install the certificate with its key"):
            argv = [p["certmgr"], "-inst", "-store", "uMy"]
            argv += ["-file", p["issued_file"]] if p["certificate_source"] == "issued" else []
            argv += ["-cont", self.fqcn]
            rc, text = self.csp(argv, pin=True)
            if rc != 0:
                hint = ""
                if "not identical" in text:
                    hint = (f" {p['issued_file']} was issued for another key: send the request "
                            f"({os.path.basename(p['request_file'])}) to the CA.")  # fmt: skip
                self.fail(f"certmgr -inst failed (exit {rc}): {text.strip()[-1500:]}{hint} {cryptopro.explain(text)}")
        der = read(p["der_file"])
        if (der is None or hashlib.sha1(der).hexdigest().upper() != wanted) and self.act(
            "export the certificate in DER"
        ):
            work = tempfile.mkdtemp(prefix="esia-onboard-export-")
            try:
                os.chown(work, self.account.pw_uid, self.account.pw_gid)
                target = os.path.join(work, "certificate.cer")
                argv = [p["certmgr"], "-export", "-cert", "-container", self.fqcn, "-dest", target]
                rc, text = self.csp(argv)
                data = read(target)
                if rc != 0 or not data:
                    self.fail(f"certmgr -export -cert failed (exit {rc}): {text.strip()[-1500:]}")
                self.place(to_der(data), p["der_file"], 0o644)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        else:
            self.own(p["der_file"], 0o644)
        self.export_cryptopro()
        return {"ready": True, "certificate": True}

    def wanted_certificate(self) -> str | None:
        """SHA-1 (upper hex) of the certificate the container should hold, or None while there is none."""
        if self.p["certificate_source"] == "issued":
            data = read(self.p["issued_file"]) if self.p["issued_file"] else None
            return hashlib.sha1(to_der(data)).hexdigest().upper() if data else None
        listed = self.certmgr_list("-container", self.fqcn)
        return listed[0]["sha1"] if listed and listed[0]["sha1"] else None

    def export_cryptopro(self) -> None:
        dest = self.p["export_private_key"]
        if not dest or os.path.exists(dest):
            return
        if not self.p["exportable"]:
            self.fail(
                f"cryptopro_export_private_key is true but the container {self.p['container']} was made without "
                "cryptopro_exportable: CryptoPro will not export it to PFX. Copy the container directory instead "
                "(runbook 03, «Резервная копия контейнера»)."
            )
        if self.act("export the private key (PFX)"):
            work = tempfile.mkdtemp(prefix="esia-onboard-pfx-")
            try:
                os.chown(work, self.account.pw_uid, self.account.pw_gid)
                target = os.path.join(work, "key.pfx")
                argv = [self.p["certmgr"], "-export", "-pfx", "-container", self.fqcn, "-dest", target]
                rc, text = self.csp(argv, pin=True)
                data = read(target)
                if rc != 0 or not data:
                    self.fail(
                        f"certmgr -export -pfx failed (exit {rc}): {text.strip()[-1500:]} {cryptopro.explain(text)}"
                    )
                self.place(data, dest, 0o600)
            finally:
                shutil.rmtree(work, ignore_errors=True)

    # ---------------------------------------------------------- openssl_gost

    def openssl(self, *args: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
        proc = subprocess.run(
            ["openssl", *args], input=stdin, capture_output=True, check=False,
            env={**os.environ, "OPENSSL_CONF": self.p["openssl_conf"]},
        )  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")

    def must(self, what: str, *args: str, stdin: bytes = b"") -> bytes:
        rc, out, err = self.openssl(*args, stdin=stdin)
        if rc != 0:
            self.fail(f"openssl {what} failed (exit {rc}): {err.strip()[-1500:]}")
        return out

    def openssl_gost(self) -> dict:
        p = self.p
        key, pin = p["key_file"], f"file:{p['pin_file']}"
        for name in ("key_file", "pem_file", "pin_file", "openssl_conf"):
            if not p[name]:
                self.fail(f"cryptopro_key: {name} is required with backend openssl_gost")
        if not os.path.exists(key):
            if not self.act("generate the private key"):
                return {"ready": False, "certificate": False}
            self.must("genpkey", "genpkey", "-algorithm", p["algorithm"], "-pkeyopt", f"paramset:{p['paramset']}",
                      "-aes-256-cbc", "-pass", pin, "-out", key)  # fmt: skip
        self.own(key, 0o600)
        rc, pub, err = self.openssl("pkey", "-in", key, "-passin", pin, "-pubout")
        if rc != 0:
            self.fail(
                f"{key} does not open with cryptopro_pin (openssl: {err.strip().splitlines()[0] if err else ''}). "
                "The PIN in the vault was probably changed after the key was made: put the old PIN back, or "
                "re-encrypt the key (runbook 03, «Смена PIN-кода»). The role never replaces an existing key."
            )
        names = ("-nameopt", "RFC2253,-esc_msb")
        wanted = sorted(self.must("req", "req", "-new", "-utf8", "-key", key, "-passin", pin, "-subj", p["subject"],
                                  "-noout", "-subject", "-pubkey", *names).decode().splitlines())  # fmt: skip
        csr = p["request_file"]
        rc, now, _ = self.openssl("req", "-in", csr, "-noout", "-subject", "-pubkey", *names)
        if (rc != 0 or sorted(now.decode().splitlines()) != wanted) and self.act("make the certificate request"):
            self.must("req", "req", "-new", "-utf8", "-key", key, "-passin", pin, f"-{p['digest']}", "-subj",
                      p["subject"], "-out", csr)  # fmt: skip
        self.own(csr, 0o644)
        pem = p["pem_file"]
        if p["certificate_source"] == "selfsigned":
            rc, now, _ = self.openssl("x509", "-in", pem, "-noout", "-subject", "-pubkey", *names,
                                      "-checkend", str(p["renew_days"] * 86400))  # fmt: skip
            current = sorted(line for line in now.decode().splitlines() if not line.startswith("Certificate will"))
            if (rc != 0 or current != wanted) and self.act("sign the self-signed certificate"):
                self.must("req -x509", "req", "-x509", "-utf8", "-in", csr, "-key", key, "-passin", pin,
                          f"-{p['digest']}", "-days", str(p["days"]),
                          "-addext", "basicConstraints=critical,CA:FALSE",
                          "-addext", "keyUsage=critical,digitalSignature,nonRepudiation", "-out", pem)  # fmt: skip
        else:
            data = read(p["issued_file"]) if p["issued_file"] else None
            if not data:
                return {"ready": True, "certificate": False}
            issued_der = to_der(data)
            issued_pub = self.must("x509", "x509", "-inform", "DER", "-noout", "-pubkey", stdin=issued_der)
            if issued_pub != pub:
                self.fail(
                    f"{p['issued_file']} does not hold the public key of {key}: it was issued for another "
                    f"request. Send {os.path.basename(csr)} to the CA."
                )
            rc, current, _ = self.openssl("x509", "-in", pem, "-outform", "DER")
            if (rc != 0 or current != issued_der) and self.act("install the issued certificate"):
                self.place(self.must("x509", "x509", "-inform", "DER", stdin=issued_der), pem, 0o644)
        if self.check and not os.path.exists(pem):
            return {"ready": True, "certificate": False}
        self.own(pem, 0o644)
        rc, der, _ = self.openssl("x509", "-in", pem, "-outform", "DER")
        if rc == 0 and read(p["der_file"]) != der and self.act("export the certificate in DER"):
            self.place(der, p["der_file"], 0o644)
        else:
            self.own(p["der_file"], 0o644)
        dest = p["export_private_key"]
        if dest and not os.path.exists(dest) and self.act("export the private key (PKCS#8 DER)"):
            # The export's password comes on stdin (-passout stdin), never on a command line.
            out = self.must("pkcs8", "pkcs8", "-topk8", "-in", key, "-passin", pin, "-outform", "DER", "-v2",
                            "aes-256-cbc", "-passout", "stdin", stdin=p["pin"].encode() + b"\n")  # fmt: skip
            self.place(out, dest, 0o600)
        return {"ready": True, "certificate": True}

    # ---------------------------------------------------------- around the key

    def ids(self, entry: dict) -> tuple[int, int]:
        try:
            return files.entry_ids(entry)
        except LookupError as exc:
            self.fail(f"cryptopro_key: {exc}")
        return 0, 0

    def write(self, path: str, data: bytes, uid: int, gid: int, mode: int, validate: str = "", secret=False):
        try:
            actions, diff = files.ensure_file(path, data, uid, gid, mode, self.check, validate, secret)
        except (OSError, ValueError) as exc:
            self.fail(f"cryptopro_key: {exc}")
        self.actions.extend(actions)
        if diff:
            self.diffs.append(diff)
        return bool(actions)

    def prepare(self) -> None:
        """The directories, files, PIN file and issued certificate the key work reads."""
        p = self.p
        try:
            self.actions.extend(files.ensure_directories(p["directories"], self.check))
        except (LookupError, ValueError, OSError) as exc:
            self.fail(f"cryptopro_key: {exc}")
        for entry in p["files"]:
            uid, gid = self.ids(entry)
            changed = self.write(entry["path"], str(entry.get("content", "")).encode("utf-8"), uid, gid,
                                 int(str(entry.get("mode", "0644")), 8), entry.get("validate") or "")  # fmt: skip
            self.files_changed = self.files_changed or changed
        if p["pin_file"]:
            self.write(p["pin_file"], p["pin"].encode("utf-8"), self.account.pw_uid, self.account.pw_gid, 0o600,
                       secret=True)  # fmt: skip
        if p["issued_certificate"] and p["issued_file"]:
            try:
                data = base64.b64decode(p["issued_certificate"], validate=True)
            except ValueError as exc:
                self.fail(f"cryptopro_key: issued_certificate is not base64: {exc}")
            self.write(p["issued_file"], data, self.account.pw_uid, self.account.pw_gid, 0o644)

    def finish(self, result: dict) -> dict:
        """The signer's configuration, the DER for the role, CryptoPro's hash and the self-check."""
        p = self.p
        result.update(der="", cpverify_hash="", self_check={})
        der = read(p["der_file"]) if result.get("certificate") else None
        if not der:
            return result
        result["der"] = base64.b64encode(der).decode("ascii")
        if p["signer_config_file"]:
            config = dict(p["signer_config"])
            if p["backend"] == "cryptopro":
                config["thumbprint"] = hashlib.sha1(der).hexdigest().upper()
            uid, gid = self.ids({"path": p["signer_config_file"], "owner": "root", "group": self.group_name()})
            text = json.dumps(config, indent=2, sort_keys=True) + "\n"
            changed = self.write(p["signer_config_file"], text.encode("utf-8"), uid, gid, 0o640)
            self.files_changed = self.files_changed or changed
        if p["cpverify"]:
            proc = subprocess.run([p["cpverify"], "-mk", "-alg", "GR3411_2012_256", p["der_file"]],
                                  capture_output=True, text=True, check=False)  # fmt: skip
            result["cpverify_hash"] = proc.stdout.strip().upper() if proc.returncode == 0 else ""
            if proc.returncode != 0:
                self.fail(f"cpverify -mk -alg GR3411_2012_256 {p['der_file']} failed (exit {proc.returncode}): "
                          f"{(proc.stderr + proc.stdout).strip()[-800:]}")  # fmt: skip
        # In check mode a signer that would change is not the one a run leaves: nothing to prove yet.
        if p["self_check"] and not (self.check and (self.files_changed or self.actions)):
            result["self_check"] = self.self_check(der)
        return result

    def group_name(self) -> str:
        import grp

        return grp.getgrgid(self.account.pw_gid).gr_name

    def self_check(self, der: bytes) -> dict:
        state, timestamp = str(__import__("uuid").uuid4()), esia.esia_timestamp()
        message = f"esia-onboard self-check {self.p['container']} {timestamp} {state}"
        checked = esia.signer_self_check(
            self.p["signer"], self.p["run_as"], der, {mode: message for mode in self.p["self_check_modes"]}
        )
        for entry in checked["modes"].values():
            entry.pop("client_secret", None)
        checked.update(state=state, timestamp=timestamp)
        if not checked["ok"]:
            self.fail(
                f"the signer self-check failed: {self.p['signer']} as {self.p['run_as']}, {checked['error']}. "
                "ESIA would refuse such a client_secret (ESIA-007053 when the signature does not match the "
                "certificate registered for the client_id)."
            )
        return checked

    def main(self) -> None:
        self.prepare()
        result = self.cryptopro() if self.p["backend"] == "cryptopro" else self.openssl_gost()
        result = self.finish(result)
        notes = self.p["notes"]
        if not result.get("ready") and notes.get("no_key"):
            self.module.warn(notes["no_key"])
        elif not result.get("certificate") and notes.get("no_certificate"):
            self.module.warn(notes["no_certificate"])
        if result.get("certificate") and self.p["export_private_key"] and notes.get("exported"):
            self.module.warn(notes["exported"])
        self.module.exit_json(
            changed=bool(self.actions),
            actions=self.actions,
            diff=[*self.diffs, {"before": "", "after": "".join(f"{a}\n" for a in self.actions)}],
            **result,
        )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "backend": {"type": "str", "required": True, "choices": ["cryptopro", "openssl_gost"]},
            "container": {"type": "str", "required": True},
            "provider_type": {"type": "int", "default": 80, "choices": [80, 81]},
            "pin": {"type": "str", "required": True, "no_log": True},
            "run_as": {"type": "str", "required": True},
            "certificate_source": {"type": "str", "default": "issued", "choices": ["selfsigned", "issued"]},
            "issued_file": {"type": "path", "default": ""},
            "request_file": {"type": "path", "required": True},
            "der_file": {"type": "path", "required": True},
            "subject": {"type": "str", "required": True},
            "exportable": {"type": "bool", "default": False},
            "export_private_key": {"type": "path", "default": ""},
            "csptest": {"type": "path", "default": "/opt/cprocsp/bin/amd64/csptest"},
            "certmgr": {"type": "path", "default": "/opt/cprocsp/bin/amd64/certmgr"},
            "cryptcp": {"type": "path", "default": "/opt/cprocsp/bin/amd64/cryptcp"},
            "key_file": {"type": "path"},
            "pem_file": {"type": "path"},
            "pin_file": {"type": "path", "no_log": False},
            "openssl_conf": {"type": "path"},
            "algorithm": {"type": "str", "default": "gost2012_256"},
            "digest": {"type": "str", "default": "md_gost12_256"},
            "paramset": {"type": "str", "default": "A"},
            "days": {"type": "int", "default": 365},
            "renew_days": {"type": "int", "default": 30},
            "directories": {"type": "list", "elements": "dict", "default": []},
            "files": {"type": "list", "elements": "dict", "default": []},
            "issued_certificate": {"type": "str", "default": ""},
            "signer_config": {"type": "dict", "default": {}},
            "signer_config_file": {"type": "path", "default": ""},
            "self_check": {"type": "bool", "default": False},
            "signer": {"type": "path", "default": "/usr/local/bin/esia-sign"},
            "self_check_modes": {"type": "list", "elements": "str", "default": ["v2", "v1"]},
            "cpverify": {"type": "path", "default": ""},
            "notes": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    if module.check_mode:
        try:
            pwd.getpwnam(module.params["run_as"])
        except KeyError:
            # A fresh host in check mode: portal_base has not made the account, so
            # nothing of the key exists yet either and everything would be made.
            action = f"make the key container, request and certificate as {module.params['run_as']}"
            if module.params["notes"].get("no_key"):
                module.warn(module.params["notes"]["no_key"])
            module.exit_json(
                der="",
                cpverify_hash="",
                self_check={},
                changed=True,
                actions=[action],
                diff={"before": "", "after": action + "\n"},
                ready=False,
                certificate=False,
            )
    try:
        Key(module).main()
    except KeyError as exc:
        module.fail_json(msg=f"cryptopro_key: the account {module.params['run_as']!r} does not exist ({exc})")
    except ValueError as exc:
        module.fail_json(msg=f"cryptopro_key: {exc}")


if __name__ == "__main__":
    main()
