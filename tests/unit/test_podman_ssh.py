"""tools/podman-ssh, the lab's ssh stand-in, parses its arguments as ssh does:
options (with ssh's own option letters) are skipped, the first other word is
the container, and the remaining words are joined by spaces into the one
command the remote shell runs (Ansible passes one word, Mitogen several).
A fake `podman` on PATH records what it is asked to run."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.harness import REPO

PODMAN_SSH = REPO / "tools" / "podman-ssh"


@pytest.fixture
def fake_podman(tmp_path):
    record = tmp_path / "argv"
    podman = tmp_path / "podman"
    podman.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n')
    podman.chmod(0o755)
    return tmp_path, record


def run(fake_podman, *args: str) -> tuple[int, list[str], str]:
    directory, record = fake_podman
    env = {**os.environ, "PATH": f"{directory}:{os.environ['PATH']}"}
    proc = subprocess.run([str(PODMAN_SSH), *args], env=env, capture_output=True, text=True, check=False)
    argv = record.read_text().splitlines() if record.exists() else []
    return proc.returncode, argv, proc.stderr


def test_ansible_style_call(fake_podman):
    # as Ansible's ssh connection calls it: options, host, one command word
    rc, argv, _ = run(
        fake_podman,
        "-C",
        "-o",
        "ControlMaster=auto",
        "-o",
        "ControlPersist=60s",
        "-o",
        "ConnectTimeout=10",
        "esia-lab-portal",
        "/bin/sh -c 'echo ok && sleep 0'",
    )
    assert rc == 0
    assert argv == ["exec", "-i", "esia-lab-portal", "/bin/sh", "-c", "/bin/sh -c 'echo ok && sleep 0'"]


def test_mitogen_style_call(fake_podman):
    # as Mitogen's ssh connection calls it: options with values, host, then the command in several words
    rc, argv, _ = run(
        fake_podman,
        "-o",
        "LogLevel ERROR",
        "-l",
        "root",
        "-p",
        "22",
        "-o",
        "BatchMode yes",
        "esia-lab-portal",
        "/usr/bin/python3",
        "-c",
        "'import sys'",
    )
    assert rc == 0
    assert argv == ["exec", "-i", "esia-lab-portal", "/bin/sh", "-c", "/usr/bin/python3 -c 'import sys'"]


def test_flags_grouped_and_tty(fake_podman):
    rc, argv, _ = run(fake_podman, "-tt", "-vq", "box", "true")
    assert rc == 0 and argv[2:] == ["box", "/bin/sh", "-c", "true"]


@pytest.mark.parametrize("args", [(), ("only-a-host",), ("-o",), ("-Z", "box", "true")])
def test_bad_calls_fail_as_ssh_does(fake_podman, args):
    rc, argv, _ = run(fake_podman, *args)
    assert rc == 255
    assert argv == [], "podman must not be called"
