"""The preflight: everything a run needs, checked in seconds before any planning.

`preflight` checks the model endpoints (`endpoints.py`), the sandbox, disk, git and the
target (`machine.py`) at once and returns every finding. A run stops with exit 2 on any
``fail`` (`Findings.error` names each setting, the URL and the fix, never a key); ``warn``
findings are shown on every screen. ``longshot doctor`` prints the same findings as a table.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from longshot.errors import ConfigError
from longshot.preflight.check import Finding, EndpointSpec, PreflightOptions, Status
from longshot.preflight.endpoints import check_endpoints
from longshot.preflight.machine import check_disk, check_git, check_sandbox

__all__ = ["Finding", "EndpointSpec", "Findings", "PreflightOptions", "Status", "preflight"]


@dataclass
class Findings:
    checks: list[Finding] = field(default_factory=list)
    tokens: int = 0
    """What the probe requests used."""

    @property
    def failures(self) -> list[Finding]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Finding]:
        return [c for c in self.checks if c.status == "warn"]

    def error(self) -> ConfigError | None:
        """The failures as one configuration error (one line each), or None."""
        if not self.failures:
            return None
        return ConfigError("\n".join(["the preflight failed (longshot doctor shows every check):",
                                      *(c.line() for c in self.failures)]))


async def preflight(options: PreflightOptions, *, content: bool = True) -> Findings:
    """Every check at once; ``content``: also SPEC.md and FEATURES.json of a local target."""
    endpoints, sandbox, git = await asyncio.gather(check_endpoints(options), check_sandbox(options),
                                                   check_git(options, content=content))
    checks, tokens = endpoints
    return Findings(checks=[*checks, *sandbox, check_disk(options), *git], tokens=tokens)
