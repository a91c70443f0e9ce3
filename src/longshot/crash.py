"""Named crash points, for testing recovery: the process kills itself with SIGKILL there.

``LONGSHOT_CRASH_AT=<name>[:<n>]`` arms the point ``name``; the n-th time (1 by default)
the run passes it, the process dies at once, exactly as a power cut or the OOM killer
would end it: no ``finally`` block, no flush, no goodbye. Tests restart the run with
``--resume`` and check that nothing was lost or done twice (reliability tests T1, T2, T4).
"""

from __future__ import annotations

import os
import signal

from longshot.errors import ConfigError

CRASH_POINTS: dict[str, str] = {
    "dispatch": "a task was marked running and its sandbox is open; the worker has not started",
    "worker.result": "a worker's result is committed to its branch (and pushed) but not recorded",
    "merge.checked": "the gate passed a candidate; the target branch has not moved yet",
    "merge.landed": "the target branch moved; the landing is not recorded yet",
    "state.before_write": "the run's state is about to be written to its ref",
    "state.after_write": "the run's state ref was just written (not pushed yet)",
    "fix.created": "the reconciler made fix tasks; they are not recorded yet",
}


class CrashPoints:
    """The armed crash point of this process, if any (parsed from LONGSHOT_CRASH_AT)."""

    def __init__(self, spec: str | None = None) -> None:
        self.name: str | None = None
        self.nth = 1
        self.passes = 0
        if spec:
            name, _, nth = spec.strip().partition(":")
            if name not in CRASH_POINTS:
                raise ConfigError(f"LONGSHOT_CRASH_AT: unknown crash point {name!r}. Fix: use one of "
                                  f"{', '.join(CRASH_POINTS)} (optionally with :<n>), or unset it")
            if nth and (not nth.isdigit() or int(nth) < 1):
                raise ConfigError(f"LONGSHOT_CRASH_AT: {nth!r} is not a pass number. Fix: write {name}:<n> with n >= 1")
            self.name, self.nth = name, int(nth or 1)

    def reached(self, name: str) -> None:
        """Die here if ``name`` is the armed point and this is its n-th pass."""
        assert name in CRASH_POINTS, name
        if name != self.name:
            return
        self.passes += 1
        if self.passes == self.nth:
            os.kill(os.getpid(), signal.SIGKILL)
