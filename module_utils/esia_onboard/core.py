"""The shape every rule shares: a problem names the setting, the value and the fix."""

from __future__ import annotations

from typing import Any

# What playbooks pass for a variable that is not set at all.
UNSET = "__esia_onboard_unset__"


def show(value: Any) -> str:
    """How a value appears in a message (repr, so a trailing newline or a space is visible)."""
    return "nothing (not set)" if value is None or value == UNSET else repr(value)


def problem(setting: str, value: Any, fix: str) -> str:
    """One problem: ``<setting>: got <value>; <fix>``."""
    return f"{setting}: got {show(value)}; {fix}"


class SettingError(ValueError):
    """A rule's verdict as an exception, for code that stops at the first problem."""

    def __init__(self, setting: str, value: Any, fix: str) -> None:
        self.setting, self.value, self.fix = setting, value, fix
        super().__init__(problem(setting, value, fix))
