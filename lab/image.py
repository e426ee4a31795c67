"""The lab's Debian 12 image with systemd, built locally with debootstrap.

No registry is used: the root filesystem comes from the machine's own apt
mirror (read from its apt sources at run time, never written into the
repository) and is imported into podman as localhost/<name>:<tag>. The tag is
a hash of the recipe, so the image is rebuilt only when the recipe changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from lab import podman

RECIPE = Path(__file__).with_name("image-recipe.json")
NAME = "localhost/esia-onboard-debian12"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def recipe() -> dict:
    return json.loads(RECIPE.read_text())


def tag() -> str:
    return hashlib.sha256(RECIPE.read_bytes()).hexdigest()[:12]


def reference() -> str:
    return f"{NAME}:{tag()}"


def local_mirror() -> str:
    """The first Debian mirror this machine's apt uses (deb822 or one-line)."""
    for source in APT_SOURCES:
        if not source.exists():
            continue
        text = source.read_text()
        match = re.search(r"^URIs:\s*(\S+)", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.MULTILINE
        )
        if match and "security" not in match.group(1):
            return match.group(1)
    raise RuntimeError("no Debian mirror found in " + ", ".join(map(str, APT_SOURCES)))


def exists() -> bool:
    return podman.run("image", "exists", reference(), check=False).returncode == 0


def build(force: bool = False) -> str:
    """Build and import the image unless this recipe's tag already exists."""
    ref = reference()
    if exists() and not force:
        return ref
    spec = recipe()
    rootfs = Path(tempfile.mkdtemp(prefix="esia-lab-rootfs-"))
    try:
        subprocess.run(
            [
                "debootstrap",
                f"--variant={spec['variant']}",
                "--include=" + ",".join(spec["packages"]),
                spec["suite"],
                str(rootfs),
                local_mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for path, content in spec.get("files", {}).items():
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        podman.run("import", "--change", "CMD=/sbin/init", "-", ref, stdin=tar.stdout)
        tar.wait()
        if tar.returncode:
            raise RuntimeError(f"tar of the root filesystem failed ({tar.returncode})")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return ref
