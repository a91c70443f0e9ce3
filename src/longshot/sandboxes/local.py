"""The local sandbox provider: opens a `LocalSandbox` (`longshot.sandboxes.checkout`) per task,
or its copy-on-write kind (`longshot.sandboxes.cow`) where the host allows, and salvages and
sweeps what dead runs left on this machine.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from longshot.sandboxes.base import Leftover, Profile, Sandbox, SandboxSpec
from longshot.sandboxes.bwrap import toolchain_paths
from longshot.sandboxes.checkout import ENV_ALLOW as ENV_ALLOW, RUN_PREFIX, LocalOptions as LocalOptions
from longshot.sandboxes.checkout import LocalSandbox as LocalSandbox
from longshot.sandboxes.cow import Overlays
from longshot.sandboxes.gitdir import EXCLUDES as EXCLUDES, shared_git_dir as shared_git_dir
from longshot.sandboxes.leftovers import recover_leftovers
from longshot.sandboxes.limits import Cgroup, describe, sweep_stale
from longshot.sandboxes.orphans import owner_dead


class LocalSandboxProvider:
    """Opens `LocalSandbox` es under ``work_dir``."""

    def __init__(self, work_dir: Path, options: LocalOptions | None = None) -> None:
        self.work_dir = work_dir
        self.options = options or LocalOptions()
        self.ro_paths = toolchain_paths(os.environ.get("PATH", ""), self.options.ro_paths)
        self.cache_dir = work_dir / "cache"
        self._counter = 0
        self.stale_cgroups = sweep_stale()
        self.overlays = Overlays(self.options, work_dir)

    def describe(self) -> Profile:
        """What isolation and limits are in force on this host."""
        probe = Cgroup.create(f"longshot-probe-{os.getpid()}", self.options.limits)
        try:
            text = describe(probe)
        finally:
            if probe is not None:
                probe.remove()
        isolation = ("bubblewrap: no network, read-only system, private checkout, HOME and /tmp"
                     if self.options.isolation == "bubblewrap" else "NO isolation (SANDBOX_ISOLATION=none)")
        network = "; network ON (SANDBOX_NETWORK=on)" if self.options.network else ""
        network += f"; {self.overlays.describe()}"
        weakened = probe is None or self.options.isolation == "none" or self.options.network
        return Profile(description=f"{isolation}{network}; {text}", weakened=weakened)

    async def recover(self, hub: Path, message: Callable[[str], str]) -> list[Leftover]:
        return await recover_leftovers(self.options.tasks_dir or self.work_dir / "tasks", hub, message,
                                       lambda root, spec: self.overlays.sandbox(root, spec, self, None))

    async def sweep_orphans(self) -> list[str]:
        """Cgroups (removed at start-up) and task directories that dead Longshot processes left here.

        No process can outlive its orchestrator (``--die-with-parent``, PID namespaces), so
        only files are left: a directory is ``<task>-<pid>-<n>`` and is removed when that pid
        is gone. `recover` has salvaged their work first; this removes what it could not read.
        """
        found = [f"empty cgroup {c}" for c in self.stale_cgroups]
        self.stale_cgroups = []
        tasks = self.options.tasks_dir or self.work_dir / "tasks"
        runs = Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*")
        for entry in [*(sorted(tasks.iterdir()) if tasks.is_dir() else []), *sorted(runs)]:
            if owner_dead(entry):
                await asyncio.to_thread(self.overlays.remove, entry)
                found.append(f"task directory {entry}")
        found += await asyncio.to_thread(self.overlays.sweep, owner_dead)
        return found

    @asynccontextmanager
    async def open(self, spec: SandboxSpec) -> AsyncIterator[Sandbox]:
        self._counter += 1
        name = f"{spec.task_id}-{os.getpid()}-{self._counter}"
        root = (self.options.tasks_dir or self.work_dir / "tasks") / name
        if root.exists():
            self.overlays.remove(root)
        sandbox = self.overlays.sandbox(root, spec, self, Cgroup.create(f"longshot-{name}", self.options.limits))
        try:
            await sandbox.create()
            yield sandbox
        finally:
            sandbox.close()
            # Off the event loop: a checkout holds the whole repository, and a hundred of them
            # end together when tasks are alike. Cancelled, the removal still finishes.
            await asyncio.shield(self.overlays.dispose(sandbox))
