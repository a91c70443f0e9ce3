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

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from longshot.git import Git

READ_LIMIT = 8 * 2**20
"""The most bytes one `Sandbox.read_file` returns unless the caller asks for fewer."""

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

    async def read_file(self, path: str, limit: int = READ_LIMIT) -> bytes:
        """At most ``limit`` bytes from the start of a regular file, never loading more; raise
        FileNotFoundError, IsADirectoryError, PathOutsideSandbox, or FileRefused for anything but
        a regular file (a FIFO, device or socket is never opened in a way that waits)."""
        ...

    async def write_file(self, path: str, data: bytes) -> None:
        """Create or overwrite a regular file, making parent directories (FileRefused otherwise)."""
        ...

    async def list_dir(self, path: str) -> list[str]:
        """Entries of a directory, directories marked with a trailing ``/``; non-UTF-8 bytes of a
        name come as surrogate escapes (``os.fsdecode``); a long listing ends with a count line."""
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
    adapted: list[str] = Field(default_factory=list)
    """Defaults changed to fit where the sandboxes run (said as warnings)."""


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


@dataclass(frozen=True)
class FileChange:
    """One path a change adds (``A``), modifies (``M``), deletes (``D``) or retypes (``T``), with its
    lines added and removed (None for a binary file)."""

    path: str
    status: str
    added: int | None = None
    removed: int | None = None


async def diff_changes(git: Git, base: str, commit: str) -> list[FileChange]:
    """What ``commit`` changes against ``base``, with the lines of each file, in one process."""
    return changes_of(await git.run("diff", "--raw", "--numstat", "--no-textconv", "--no-ext-diff", "--no-abbrev",
                                    "--no-renames", "-z", base, commit))


def changes_of(raw: str) -> list[FileChange]:
    """The files of a ``diff --raw -z`` (with ``--numstat``: and their lines), in git's order."""
    fields = raw.split("\0")
    status: dict[str, str] = {}
    lines: dict[str, tuple[int | None, int | None]] = {}
    i = 0
    while i < len(fields):
        field = fields[i]
        if field.startswith(":") and i + 1 < len(fields):  # ":<modes> <blobs> <status>", then the path
            status[fields[i + 1]] = field.split()[-1][:1]
            i += 2
            continue
        if field.count("\t") >= 2:  # "<added>\t<removed>\t<path>" (- for a binary file)
            added, removed, path = field.split("\t", 2)
            lines[path] = (int(added) if added.isdigit() else None, int(removed) if removed.isdigit() else None)
        i += 1
    return [FileChange(path, kind, *lines.get(path, (None, None))) for path, kind in status.items()]


@dataclass(frozen=True)
class Measured:
    """What the commit of a sandbox's last snapshot changes against ``base``, measured by the
    snapshot's own diff (so the handoff's figures need no diff of their own)."""

    base: str
    commit: str
    files: tuple[FileChange, ...]


@runtime_checkable
class Measuring(Protocol):
    """A sandbox that measures its last snapshot (`Measured`); optional, as `Mergeable`."""

    measured: Measured | None


@dataclass(frozen=True)
class Peek:
    """A running worker's checkout, committed without disturbing it (see `Mergeable`)."""

    tree: str
    commit: str


@runtime_checkable
class Mergeable(Protocol):
    """A sandbox whose checkout the orchestrator can peek at and bring a merged tree into.

    Optional: the local provider has it (`longshot.sandboxes.worktree`); remote sandboxes do
    not, so their workers get no early conflict warnings and no working ``merge_tip``.
    """

    async def peek(self, parents: Sequence[str], message: str) -> Peek | None:
        """A commit (in the hub) of the checkout as it is now, on ``parents``; None when the
        checkout cannot be snapshotted (it breaks a snapshot rule)."""
        ...

    async def put_tree(self, tree: str) -> None:
        """Make the checkout hold ``tree`` (a tree in the hub)."""
        ...
