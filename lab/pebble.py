"""A real ACME CA on 127.0.0.1 for the lab and the tests: Let's Encrypt's pebble
(Debian package `pebble`).

pebble serves its ACME directory over HTTPS with a certificate issued here
by the lab CA (module_utils/esia_onboard/lab_ca.py, the maker the portal_https
role's `ownca` source uses, made here when it is missing), resolves names through the lab's BIND9
(`-dnsserver`) and validates http-01 on the port the lab portal publishes
(`httpPort`). Everything lives in one state directory; the server is stopped
by its own pid.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from lab.process import pid_from_file, stop_pid
from module_utils.esia_onboard.lab_ca import ensure_lab_ca, lab_name, write_file

PEBBLE = "/usr/bin/pebble"
# Fast and deterministic: no random sleeps before validation, no nonce
# rejections, and never reuse an authorization (a failing challenge must fail).
ENVIRONMENT = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


@dataclass
class PebbleServer:
    state_dir: Path
    ca_dir: Path
    port: int
    management_port: int
    http_port: int
    tls_port: int
    dns_server: str
    eab_keys: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"

    @property
    def config(self) -> Path:
        return self.state_dir / "pebble-config.json"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "pebble.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "pebble.log"

    @property
    def directory_url(self) -> str:
        return f"https://{self.address}:{self.port}/dir"

    @property
    def ca_bundle(self) -> Path:
        """What verifies the directory's TLS certificate: the lab root CA."""
        return self.ca_dir / "root-ca.crt"

    def _tls_certificate(self) -> None:
        ensure_lab_ca(str(self.ca_dir))
        issuer = x509.load_pem_x509_certificate((self.ca_dir / "issuing-ca.crt").read_bytes())
        issuer_key = serialization.load_pem_private_key((self.ca_dir / "issuing-ca.key").read_bytes(), None)
        chain = (self.ca_dir / "issuing-ca.crt").read_bytes()
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        san = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(self.address))]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(lab_name("pebble (esia-onboard lab ACME CA)"))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(san, critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        write_file(
            str(self.state_dir / "tls.key"),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            0o600,
        )
        (self.state_dir / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + chain)

    def write(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        self._tls_certificate()
        settings = {
            "listenAddress": f"{self.address}:{self.port}",
            "managementListenAddress": f"{self.address}:{self.management_port}",
            "certificate": str(self.state_dir / "tls.crt"),
            "privateKey": str(self.state_dir / "tls.key"),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(self.eab_keys),
        }
        if self.eab_keys:
            settings["externalAccountMACKeys"] = self.eab_keys
        self.config.write_text(json.dumps({"pebble": settings}, indent=2) + "\n")
        os.chmod(self.config, 0o600)

    def pid(self) -> int | None:
        return pid_from_file(self.pid_file, str(self.config))

    def running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout: float = 20.0) -> None:
        if self.running():
            return
        self.write()
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [PEBBLE, "-config", str(self.config), "-dnsserver", self.dns_server],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **ENVIRONMENT},
                cwd=self.state_dir,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        log_text = self.log_file.read_text(errors="replace") if self.log_file.exists() else "(no log)"
        raise RuntimeError(f"pebble did not start on {self.directory_url}:\n{log_text[-2000:]}")

    def _answers(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        try:
            with (
                socket.create_connection((self.address, self.port), timeout=1) as raw,
                context.wrap_socket(raw, server_hostname=self.address) as tls,
            ):
                tls.sendall(f"GET /dir HTTP/1.1\r\nHost: {self.address}\r\nConnection: close\r\n\r\n".encode())
                return tls.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def roots(self) -> str:
        """The root of the chains pebble issues (PEM, from its management API)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with (
            socket.create_connection((self.address, self.management_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=self.address) as tls,
        ):
            tls.sendall(f"GET /roots/0 HTTP/1.1\r\nHost: {self.address}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
        return data.partition(b"\r\n\r\n")[2].decode()

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        stop_pid(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
