"""execution-environment.yml builds a valid ansible-builder context.

No image is built (no registry here): `ansible-builder create` renders the
Containerfile and _build/ files, and every claim the definition makes that
can be checked on this Debian 12 machine is checked: the pins match
requirements.txt and carry no development tool (requirements-dev.txt), the
runtime pins declare their own dependencies, the system packages exist in Debian and bindep selects them
on a dpkg platform, the build's own sanity steps pass here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from bindep.depends import Depends
from packaging.requirements import Requirement

from tests.harness import BIN, REPO, environment

EE_FILE = REPO / "execution-environment.yml"
REQUIRED_SYSTEM_PACKAGES = {"libengine-gost-openssl", "bind9-dnsutils", "openssl"}
BUNDLED_COLLECTIONS = ("community.crypto", "community.general", "ansible.posix", "containers.podman")
# Tools for developing and testing the toolkit: never in the image, whatever
# requirements-dev.txt happens to list.
DEVELOPMENT_TOOLS = {
    "ansible-builder",
    "ansible-lint",
    "black",
    "hypothesis",
    "molecule",
    "molecule-plugins",
    "pytest",
    "pytest-testinfra",
    "pytest-xdist",
    "ruff",
    "yamllint",
}


def pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line of a requirements file."""
    result = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"not an exact pin: {line}"
        result[req.name.lower().replace("_", "-")] = spec.version
    return result


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ee") / "context"
    proc = subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            str(EE_FILE),
            "-c",
            str(out),
            "--output-filename",
            "Containerfile",
        ],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def containerfile(context: Path) -> str:
    return (context / "Containerfile").read_text()


def build_args(containerfile: str) -> dict[str, str]:
    return dict(re.findall(r'^ARG (\w+)="(.*)"$', containerfile, re.MULTILINE))


def test_definition_is_schema_v3_with_a_base_image_setting():
    definition = yaml.safe_load(EE_FILE.read_text())
    assert definition["version"] == 3
    assert definition["images"]["base_image"]["name"]


def test_base_image_is_a_build_argument(containerfile: str):
    args = build_args(containerfile)
    definition = yaml.safe_load(EE_FILE.read_text())
    assert args["EE_BASE_IMAGE"] == definition["images"]["base_image"]["name"]
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    # every later stage is built from that base, never from another image
    froms = re.findall(r"^FROM (\S+)", containerfile, re.MULTILINE)
    assert froms[0] == "$EE_BASE_IMAGE"
    assert set(froms[1:]) == {"base"}


def test_python_requirements_are_the_repository_pins(context: Path):
    assert pins((context / "_build" / "requirements.txt").read_text()) == pins((REPO / "requirements.txt").read_text())


def test_the_image_carries_no_development_tool(context: Path):
    image = pins((context / "_build" / "requirements.txt").read_text())
    development = pins((REPO / "requirements-dev.txt").read_text())
    assert set(development) >= DEVELOPMENT_TOOLS, "requirements-dev.txt should hold the development tools"
    assert not set(image) & DEVELOPMENT_TOOLS, f"development tools in the image: {set(image) & DEVELOPMENT_TOOLS}"
    leaked = set(image) & set(development)
    assert not leaked, f"requirements-dev.txt packages in the image: {leaked}"


def test_runtime_pins_declare_their_dependencies():
    """Every dependency of a runtime pin (on this platform) is pinned in
    requirements.txt itself, not inherited from requirements-dev.txt, and
    the venv holds exactly the pinned versions."""
    from importlib.metadata import distribution

    from packaging.markers import default_environment

    runtime = pins((REPO / "requirements.txt").read_text())
    marker_env = {**default_environment(), "extra": ""}
    missing = {}
    for name, version in runtime.items():
        dist = distribution(name)
        assert dist.version == version, f"{name}: the venv has {dist.version}, requirements.txt pins {version}"
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker and not req.marker.evaluate(marker_env):
                continue
            key = req.name.lower().replace("_", "-")
            if key not in runtime:
                missing.setdefault(key, []).append(name)
    assert not missing, f"needed by runtime packages but not pinned in requirements.txt: {missing}"


def test_ansible_core_pin_matches_requirements(containerfile: str):
    repo_pins = pins((REPO / "requirements.txt").read_text())
    refs = build_args(containerfile)["ANSIBLE_INSTALL_REFS"].split()
    ref_pins = {Requirement(r).name.lower(): next(iter(Requirement(r).specifier)).version for r in refs}
    assert ref_pins["ansible-core"] == repo_pins["ansible-core"]
    # AWX runs jobs through ansible-runner; it must be in the image, pinned
    assert re.fullmatch(r"\d+\.\d+\.\d+", ref_pins["ansible-runner"])


def test_pinned_ansible_bundles_the_collections_the_roles_use():
    """The image gets its collections from the pinned `ansible` package (no
    Galaxy); the venv has that same pin, so its collections are the image's."""
    from importlib.metadata import version

    repo_pins = pins((REPO / "requirements.txt").read_text())
    assert version("ansible") == repo_pins["ansible"]
    import ansible_collections

    root = Path(next(iter(ansible_collections.__path__)))
    for name in BUNDLED_COLLECTIONS:
        namespace, collection = name.split(".")
        assert (root / namespace / collection / "MANIFEST.json").is_file(), f"{name} is not bundled"


def test_system_packages_are_selected_on_debian_and_exist(context: Path):
    depends = Depends((context / "_build" / "bindep.txt").read_text())
    profiles = depends.platform_profiles()
    assert "platform:dpkg" in profiles, f"not a Debian machine? {profiles}"
    selected = {name for name, _, _ in depends.active_rules(profiles)}
    assert selected >= REQUIRED_SYSTEM_PACKAGES
    for package in sorted(selected):
        policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=True).stdout
        candidate = re.search(r"Candidate:\s*(\S+)", policy)
        assert candidate and candidate.group(1) != "(none)", f"{package} is not a Debian 12 package"


def test_package_manager_is_apt(containerfile: str):
    args = build_args(containerfile)
    assert args["PKGMGR"] == "/usr/bin/apt-get"
    assert args["PYCMD"] == "/usr/bin/python3"
    # apt needs its package lists before the interpreter is installed
    assert containerfile.index("RUN apt-get update") < containerfile.index("RUN $PKGMGR install $PYPKG")


def test_sanity_steps_of_the_build_pass_here(containerfile: str):
    """The image's own checks (collections importable, GOST engine present)
    are real commands: run them on this Debian 12 machine with the venv."""
    steps = re.findall(r"^RUN (.*)$", containerfile, re.MULTILINE)
    python_check = next(s for s in steps if s.startswith("$PYCMD -c"))
    engine_check = next(s for s in steps if s.startswith("openssl engine gost"))
    for step in (python_check, engine_check):
        proc = subprocess.run(
            ["bash", "-c", step],
            env=environment({"PYCMD": sys.executable}),
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{step}\n{proc.stderr}"


def test_a_broken_definition_is_refused(tmp_path: Path):
    """The create step really validates the schema: a misspelt option fails."""
    definition = yaml.safe_load(EE_FILE.read_text())
    definition["options"]["package_manager"] = definition["options"].pop("package_manager_path")
    broken = tmp_path / "execution-environment.yml"
    broken.write_text(yaml.safe_dump(definition))
    shutil.copy(REPO / "requirements.txt", tmp_path / "requirements.txt")
    proc = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", str(broken), "-c", str(tmp_path / "ctx")],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "package_manager" in proc.stdout + proc.stderr
