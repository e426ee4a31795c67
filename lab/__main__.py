"""python -m lab {up,down,status,image,bind-up,bind-down,portal-up,portal-down,free-port}

Starts and stops the built-in lab described by inventories/lab. Every step is
idempotent: `up` reuses an image, a running named and a running container.
Environment:
  LAB_STATE      state directory (default: .lab/ in the repository)
  LAB_BIND_PORT  BIND9's port instead of lab_bind_port (`make molecule` runs
                 its own named on a free port this way, beside the demo's)
A port something else already listens on is refused with a message naming
the holder: two nameds never share a port.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

from lab import image, podman
from lab.bind import BindServer, PortInUse, TsigKey, Zone, free_port
from lab.pebble import PebbleServer

REPO = Path(__file__).resolve().parent.parent
INVENTORY = REPO / "inventories" / "lab"
GROUP_VARS = INVENTORY / "group_vars" / "all"
VAULT_PASSWORD = REPO / "lab" / "vault-password"
CONTAINER = "esia-lab-portal"


def state_dir() -> Path:
    return Path(os.environ.get("LAB_STATE", REPO / ".lab"))


def lab_vars() -> dict:
    """The lab inventory's plain variables plus its decrypted vault."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    merged: dict = {}
    for path in sorted(GROUP_VARS.glob("*.yml")):
        raw = path.read_bytes()
        if raw.startswith(b"$ANSIBLE_VAULT"):
            secret = VaultSecret(VAULT_PASSWORD.read_bytes().strip())
            raw = VaultLib([("lab", secret)]).decrypt(raw)
        merged.update(yaml.safe_load(raw) or {})
    if os.environ.get("LAB_BIND_PORT"):
        merged["lab_bind_port"] = int(os.environ["LAB_BIND_PORT"])
    return merged


def bind_server(values: dict | None = None) -> BindServer:
    v = values or lab_vars()
    zone, name, fallback = v["portal_domain_zone"], v["portal_domain_name"], v["portal_domain_fallback"]
    fallback_zone = fallback.split(".", 1)[1]
    fallback_label = fallback.split(".", 1)[0]
    key = TsigKey(v["portal_domain_tsig_name"], v["vault_portal_domain_tsig_secret"], v["portal_domain_tsig_algorithm"])
    assert name.endswith("." + zone), f"{name} is not inside {zone}"
    return BindServer(
        state_dir=state_dir() / "bind",
        port=int(v["lab_bind_port"]),
        keys=[key],
        zones=[
            # The MIAC's own zone: the portal name is added by portal_domain.
            Zone(zone, update_key=key.name),
            # A read-only stand-in for 2dr.ru holding the old name.
            Zone(fallback_zone, records=(f"{fallback_label} 300 IN A {v['portal_domain_address']}",)),
        ],
    )


def pebble_server(values: dict | None = None) -> PebbleServer:
    """The lab's ACME CA: resolves through the lab's BIND, validates http-01 on
    the lab portal's published HTTP port, TLS from the lab CA."""
    v = values or lab_vars()
    return PebbleServer(
        state_dir=state_dir() / "pebble",
        ca_dir=state_dir() / "ca",
        port=int(v["lab_pebble_port"]),
        management_port=int(v["lab_pebble_management_port"]),
        http_port=int(v["lab_portal_http_port"]),
        tls_port=int(v["lab_pebble_tls_port"]),
        dns_server=f"127.0.0.1:{v['lab_bind_port']}",
    )


def portal_up(
    values: dict | None = None, name: str = CONTAINER, http_port: int | None = None, https_port: int | None = None
) -> None:
    """Start a portal host container (another name and ports give a second,
    independent host, as the tests and the fleet benchmark use)."""
    v = values or lab_vars()
    http_port = http_port or int(v["lab_portal_http_port"])
    https_port = https_port or int(v["lab_portal_https_port"])
    ref = image.build()
    inspect = podman.run("container", "inspect", "--format", "{{.State.Running}} {{.ImageName}}", name, check=False)
    if inspect.returncode == 0:
        running, image_name = inspect.stdout.split()
        if image_name == ref and running == "true":
            return
        podman.run("rm", "-f", "-t", "5", name)
    podman.run(
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        "portal",
        "--systemd=always",
        "-p",
        f"127.0.0.1:{http_port}:80",
        "-p",
        f"127.0.0.1:{https_port}:443",
        ref,
        "/sbin/init",
    )
    wait_for_systemd(name)


def wait_for_systemd(container: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = podman.run("exec", container, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"systemd in {container} did not come up (last state: {state or 'unknown'})")


def portal_down(name: str = CONTAINER) -> None:
    podman.run("rm", "-f", "-t", "5", name, check=False)


def status() -> int:
    server = bind_server()
    running = podman.run("container", "inspect", "--format", "{{.State.Running}}", CONTAINER, check=False)
    print(f"image    {image.reference()} {'present' if image.exists() else 'missing'}")
    print(f"bind     127.0.0.1:{server.port} {'running pid ' + str(server.pid()) if server.running() else 'stopped'}")
    print(f"portal   {CONTAINER} {'running' if running.stdout.strip() == 'true' else 'stopped'}")
    pebble = pebble_server()
    print(f"pebble   {pebble.directory_url} {'running pid ' + str(pebble.pid()) if pebble.running() else 'stopped'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "action",
        choices=["up", "down", "status", "image", "bind-up", "bind-down", "portal-up", "portal-down", "free-port"],
    )
    parser.add_argument("--reset", action="store_true", help="bind-up/up: rewrite the lab zones from scratch")
    parser.add_argument("--name", default=CONTAINER, help="portal-up/portal-down: container name")
    parser.add_argument("--http-port", type=int, help="portal-up: loopback port published to the host's 80")
    parser.add_argument("--https-port", type=int, help="portal-up: loopback port published to the host's 443")
    args = parser.parse_args(argv)
    if args.action == "image":
        print(image.build())
    elif args.action in ("up", "bind-up"):
        values = lab_vars()
        server = bind_server(values)
        if args.reset:
            server.stop()
        try:
            server.start(reset_zones=args.reset)
        except PortInUse as exc:
            print(f"python -m lab {args.action}: {exc}", file=sys.stderr)
            return 2
        if args.action == "up":
            portal_up(values)
            pebble_server(values).start()
        status()
    elif args.action == "portal-up":
        portal_up(name=args.name, http_port=args.http_port, https_port=args.https_port)
    elif args.action == "down":
        portal_down()
        pebble_server().stop()
        bind_server().stop()
    elif args.action == "bind-down":
        bind_server().stop()
    elif args.action == "portal-down":
        portal_down(args.name)
    elif args.action == "status":
        return status()
    elif args.action == "free-port":
        print(free_port())
    return 0


if __name__ == "__main__":
    sys.exit(main())
