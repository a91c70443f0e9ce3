"""One finding of the preflight: what was checked, how it went, which setting it is about, the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """``setting`` names the variable to change (never its value: it may be a key)."""

    area: str
    """What was checked: ``endpoint default``, ``model gpt-4.1``, ``sandbox``, ``git``, ``target`` ..."""
    status: Status
    detail: str
    setting: str = ""
    fix: str = ""

    def line(self) -> str:
        """``SETTING: detail. Fix: fix`` (the form of every configuration error)."""
        head = f"{self.setting}: " if self.setting else f"{self.area}: "
        return head + self.detail + (f". Fix: {self.fix}" if self.fix else "")
