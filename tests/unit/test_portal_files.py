"""library/portal_files.py: a set of directories and files in one call, each
written only when it differs, validated before it replaces the old one, with
check mode (nothing written) and diff (a secret's content never shown)."""

from __future__ import annotations

import getpass
import grp
import os
import stat

from tests.unit.test_cryptopro_modules import load, run_module

MODULE = load("portal_files")
ME, MY_GROUP = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name


def spec(tmp_path, content="one\n", **extra):
    return {
        "directories": [{"path": str(tmp_path / "etc"), "owner": ME, "group": MY_GROUP, "mode": "0750"}],
        "files": [
            {"dest": str(tmp_path / "etc" / "a.conf"), "content": content, "owner": ME, "group": MY_GROUP, **extra},
            {"dest": str(tmp_path / "etc" / "pin"), "content": "sentinel-7\n", "owner": ME, "group": MY_GROUP,
             "mode": "0600", "secret": True},
        ],
        "_ansible_diff": True,
    }  # fmt: skip


def test_check_mode_writes_nothing_then_a_run_writes_then_changes_nothing(tmp_path, monkeypatch, capsys):
    checked = run_module(MODULE, spec(tmp_path), monkeypatch, capsys, check=True)
    assert checked["changed"] and not (tmp_path / "etc").exists()
    assert len(checked["changed_files"]) == 2
    done = run_module(MODULE, spec(tmp_path), monkeypatch, capsys)
    assert done["changed"]
    assert (tmp_path / "etc" / "a.conf").read_text() == "one\n"
    assert stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "etc" / "pin").stat().st_mode) == 0o600
    assert "sentinel-7" not in str(done.get("diff")), "a secret's content is never in the diff"
    again = run_module(MODULE, spec(tmp_path), monkeypatch, capsys)
    assert again["changed"] is False and again["changed_files"] == [] and "diff" not in again


def test_changed_content_and_mode_are_converged_with_a_diff(tmp_path, monkeypatch, capsys):
    run_module(MODULE, spec(tmp_path), monkeypatch, capsys)
    changed = run_module(MODULE, spec(tmp_path, content="two\n"), monkeypatch, capsys)
    assert changed["changed_files"] == [str(tmp_path / "etc" / "a.conf")]
    (diff,) = changed["diff"]
    assert diff["before"] == "one\n" and diff["after"] == "two\n"
    os.chmod(tmp_path / "etc" / "a.conf", 0o666)
    moded = run_module(MODULE, spec(tmp_path, content="two\n"), monkeypatch, capsys)
    assert moded["changed"] and stat.S_IMODE((tmp_path / "etc" / "a.conf").stat().st_mode) == 0o644


def test_a_file_failing_its_check_leaves_the_old_one(tmp_path, monkeypatch, capsys):
    run_module(MODULE, spec(tmp_path, content="good\n"), monkeypatch, capsys)
    failed = run_module(MODULE, spec(tmp_path, content="bad\n", validate="grep -q good %s"), monkeypatch, capsys)
    assert failed["failed"] and "failed its check" in failed["msg"]
    assert (tmp_path / "etc" / "a.conf").read_text() == "good\n"
    assert [p.name for p in (tmp_path / "etc").iterdir() if p.name.startswith(".esia-onboard-")] == []


def test_an_unknown_owner_is_named(tmp_path, monkeypatch, capsys):
    args = spec(tmp_path)
    args["files"][0]["owner"] = "no-such-account-here"
    failed = run_module(MODULE, args, monkeypatch, capsys)
    assert failed["failed"] and "no-such-account-here" in failed["msg"]
