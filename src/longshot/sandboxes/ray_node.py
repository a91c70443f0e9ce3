"""The node side of the Ray provider: what runs on a Ray node, next to the task's commands.

`SandboxActor` is one task's actor: a node-local hub made from the base bundle and a
`LocalSandbox` on it (the local provider's bubblewrap profile, limits and snapshot
checks), in ``<tmp>/longshot-ray-<actor pid>-<random>``. `sweep_node` cleans up after
actors that died without closing (a killed actor, a crashed orchestrator): it kills what
their sandboxes still run and removes their directories. Bubblewrap's parent-death
signal does not reliably reach sandboxes of an actor Ray kills, so this sweep is what
guarantees nothing keeps running.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from dataclasses import replace
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any

from longshot.errors import SandboxError
from longshot.git import Git
from longshot.sandboxes.base import READ_LIMIT, ExecResult, Sandbox, SandboxSpec
from longshot.sandboxes.bundle import BASE_REF
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.sandboxes.orphans import start_time

NODE_PREFIX = "longshot-ray-"
"""Actor directories on a node: ``<tmp>/longshot-ray-<actor pid>-<random>``."""


def sweep_node(wait_for_pid: int | None = None) -> list[str]:
    """Kill what sandboxes of dead actors on this node still run and remove their directories.

    ``wait_for_pid``: an actor just killed; give its process a moment to be gone first.
    """
    deadline = time.monotonic() + 10
    while wait_for_pid is not None and start_time(wait_for_pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    found: list[str] = []
    for leftover in sorted(Path(tempfile.gettempdir()).glob(f"{NODE_PREFIX}*")):
        pid = leftover.name[len(NODE_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or start_time(int(pid)) is not None:
            continue
        killed = _kill_naming(f"{leftover}/")
        shutil.rmtree(leftover, ignore_errors=True)
        found.append(f"{os.uname().nodename}:{leftover}" + (f" and {killed} processes still running in it" if killed else ""))
    return found


def _kill_naming(path: str) -> int:
    """SIGKILL every process whose command line names ``path``, with all its descendants."""
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        if path.encode() in cmdline:
            roots.append(int(entry.name))
    victims: set[int] = set()
    while roots:
        pid = roots.pop()
        if pid not in victims:
            victims.add(pid)
            roots += children.get(pid, [])
    for pid in victims:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(victims)


class SandboxActor:
    """Runs on a Ray node: a node-local hub from the base bundle and a `LocalSandbox` on it."""

    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        sweep_node()
        self.root = Path(tempfile.mkdtemp(prefix=f"{NODE_PREFIX}{os.getpid()}-"))
        self.stack = AsyncExitStack()
        self.sandbox: Sandbox | None = None
        self.branch = self.base = ""

    async def start(self, bundle: bytes, task_id: str, branch: str, base: str, setup: str | None) -> dict[str, Any]:
        """Check out the base and run the set-up; return where this actor runs (node id, pid)."""
        import ray

        if self.options.isolation == "bubblewrap" and shutil.which("bwrap") is None:
            raise SandboxError(f"bubblewrap (bwrap) is not installed on the Ray node {os.uname().nodename}; "
                               "install it on every node (or set SANDBOX_ISOLATION=none at your own risk)")
        self.branch, self.base = branch, base
        (self.root / "in.bundle").write_bytes(bundle)
        hub = Git(self.root / "hub.git")
        await hub.run("init", "--quiet", "--bare")
        await hub.run("fetch", "--quiet", "--no-tags", str(self.root / "in.bundle"), f"{BASE_REF}:{BASE_REF}")
        (self.root / "in.bundle").unlink()
        # Checkouts on a node, not copy-on-write: an overlay there would outlive a killed
        # orchestrator (its unmount reaper belongs to the orchestrator's machine).
        provider = LocalSandboxProvider(self.root / "work", replace(self.options, overlay="off"))
        spec = SandboxSpec(task_id=task_id, branch=branch, base_commit=base, hub=self.root / "hub.git", setup=setup)
        self.sandbox = await self.stack.enter_async_context(provider.open(spec))
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def _open(self) -> Sandbox:
        if self.sandbox is None:
            raise SandboxError("the Ray sandbox was not started")
        return self.sandbox

    async def exec(self, command: str, timeout: float) -> ExecResult:
        return await self._open().exec(command, timeout)

    async def read_file(self, path: str, limit: int = READ_LIMIT) -> bytes:
        return await self._open().read_file(path, limit)

    async def write_file(self, path: str, data: bytes) -> None:
        await self._open().write_file(path, data)

    async def list_dir(self, path: str) -> list[str]:
        return await self._open().list_dir(path)

    async def snapshot(self, message: str) -> bytes | None:
        """A bundle of the task branch on top of the base, or None when nothing changed."""
        if await self._open().snapshot(message) is None:
            return None
        out = self.root / "out.bundle"
        await Git(self.root / "hub.git").run("bundle", "create", "--quiet", str(out), f"refs/heads/{self.branch}",
                                             f"^{self.base}")
        try:
            return await asyncio.to_thread(out.read_bytes)
        finally:
            out.unlink()

    async def close(self) -> None:
        try:
            await self.stack.aclose()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def probe(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "root": str(self.root), "environ": dict(os.environ),
                "node_id": ray.get_runtime_context().get_node_id(), "host": os.uname().nodename}
