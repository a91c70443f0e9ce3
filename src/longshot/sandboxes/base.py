"""The contract of a sandbox provider and of the sandbox it opens for one task.

A provider opens a sandbox holding a checkout of the task's base commit on the task's
branch. Every tool call of a worker goes through the sandbox: commands via `exec`, files
via `read_file` / `write_file` / `list_dir`, with paths relative to the checkout root.
When the worker is done the orchestrator calls `snapshot`, which turns the checkout into
one commit on the task branch *in the hub* (the orchestrator's clone) and returns it.
Leaving the ``async with`` block destroys the sandbox and everything running in it, also
when the block is left by an error or a cancellation.

Providers: `local` (this machine, bubblewrap), `ray` (an actor on a node of a Ray
cluster, bubblewrap there) and `modal` (a Modal cloud container). Remote providers move
code in and out as git bundles (`longshot.sandboxes.bundle`): no credential ever leaves
the orchestrator.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

OnOutput = Callable[[int], None]
"""Called with the byte count of the output so far, each time a running command prints."""


class ExecResult(BaseModel):
    """What one command did. Output is capped; ``truncated`` says if anything was cut."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    truncated: bool = False
    limit: str | None = None
    """The resource limit that stopped the command (time, memory, processes, disk ...), named."""


class SandboxSpec(BaseModel):
    """What a provider needs to open a sandbox for a task."""

    task_id: str
    branch: str
    base_commit: str
    hub: Path
    """The orchestrator's clone, which holds ``base_commit`` and receives the snapshot."""
    setup: str | None = None
    """A trusted set-up command (built by Longshot, never read from a branch), run once in the
    checkout with the network on before the sandbox is used; a failure raises SandboxError."""


class Sandbox(Protocol):
    """One task's isolated checkout and the place its commands run."""

    async def exec(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        """Run a shell command in the checkout root; kill its whole tree at ``timeout``.

        ``on_output`` (optional) hears of output as it arrives, so a long command that keeps
        printing counts as progress; a provider that cannot stream may ignore it.
        """
        ...

    async def read_file(self, path: str) -> bytes:
        """Read a file; raise FileNotFoundError, IsADirectoryError or PathOutsideSandbox."""
        ...

    async def write_file(self, path: str, data: bytes) -> None:
        """Create or overwrite a file, making parent directories."""
        ...

    async def list_dir(self, path: str) -> list[str]:
        """Entries of a directory, directories marked with a trailing ``/``."""
        ...

    async def snapshot(self, message: str) -> str | None:
        """Commit the checkout to the task branch in the hub; None when nothing changed."""
        ...

    def socket_path(self, name: str) -> tuple[Path, str]:
        """Where the orchestrator may serve a Unix socket for the sandbox: (host path, path inside).

        Only a sandbox on this machine can have one; remote sandboxes raise SandboxError.
        """
        ...


class Profile(BaseModel):
    """What a provider guarantees on this host, said once per run."""

    description: str
    weakened: bool = False
    """True when a promised protection (isolation, a limit) is missing here."""


class Leftover(BaseModel):
    """A sandbox left behind by a run that died, and what became of its work."""

    name: str
    branch: str | None = None
    commit: str | None = None
    """The salvaged work, now the tip of ``branch`` in the hub (None: nothing to salvage)."""
    error: str = ""
    """Why its work could not be salvaged (it was kept on disk then, never deleted)."""


class SandboxProvider(Protocol):
    """Opens sandboxes. ``open`` is an async context manager; exit destroys the sandbox."""

    def open(self, spec: SandboxSpec) -> AbstractAsyncContextManager[Sandbox]: ...

    def describe(self) -> Profile:
        """The isolation and limits in force on this host."""
        ...

    async def recover(self, hub: Path, message: Callable[[str], str]) -> list[Leftover]:
        """Sandboxes of dead runs whose files are still at hand: commit each one's work to its
        branch in ``hub`` (the commit message is ``message(branch)``), under the same snapshot
        rules, then remove it. Called at the start of a run, before `sweep_orphans`."""
        ...

    async def sweep_orphans(self) -> list[str]:
        """Destroy what runs whose orchestrator died left behind; name each thing destroyed.

        Called once at the start of a run. Only leftovers of orchestrators known to be dead
        (same host, process gone) are touched, never those of a run still going.
        """
        ...


FORWARDER = r"""
import socket, sys, threading
def pipe(a, b):
    try:
        while (data := a.recv(65536)):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
def serve(c, path):
    u = socket.socket(socket.AF_UNIX); u.connect(path)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
def forward(srv, path):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, path), daemon=True).start()
def listen(port):
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(64)
    return srv
if __name__ == "__main__":
    forward(listen(int(sys.argv[2])), sys.argv[1])
"""
"""TCP loopback → Unix socket, inside a sandbox: ``python3 -c FORWARDER <socket> <port>`` (the model proxy
of external harnesses and the set-up's egress proxy both reach the host this way)."""
