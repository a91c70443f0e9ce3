"""One finding of the preflight (what was checked, how it went, which setting, the fix), and
what the preflight is given to check: plain options the build room makes from the settings
(`longshot.build.preflight_options`), so the checks never read `Config` themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
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


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint to check, with the names of the settings that give its address and key."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    url_setting: str = "LLM_BASE_URL"
    key_setting: str = "LLM_API_KEY"
    area: str = "endpoint"


@dataclass(frozen=True)
class PreflightOptions:
    """Everything the preflight checks, from the settings."""

    endpoints: list[EndpointSpec]
    models: dict[str, str]
    """Each distinct model of the roles -> the settings that give it (``WORKER_MODEL``, ``LLM_MODEL`` ...)."""
    context_window: int | None
    """LLM_CONTEXT_WINDOW, when set."""
    sandbox_provider: str
    sandbox_isolation: str
    cgroup_version: int | None
    """The cgroup version sandboxes get here, None when none can be made (found by the build room)."""
    disk_path: Path
    repo_url: str
    branch: str
    many_endpoints: bool = False
