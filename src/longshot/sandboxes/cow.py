"""A local sandbox whose checkout is an overlay on a shared base tree (`longshot.sandboxes.overlay`).

Layout (beside the usual ``git/``, ``home/``, ``tmp/``, ``shm/``)::

    checkout/   on disk: the upper layer, everything the task wrote (and only that); the
                overlay is mounted on it, so the merged view is seen there (/workspace
                inside, the file tools, git). The orchestrator reaches the upper layer under
                the mount through a descriptor opened before mounting (`upper`). When the
                overlay goes (the sandbox closes, or a reaper after a crash), what the task
                wrote is what ``checkout/`` holds: a dead run's work is found where it was.
    lower       the base commit the overlay lies on (so a dead run's sandbox can be salvaged)
    git/index   the base's index (a hard link to the one made with the base tree)

and, beside the tasks directory (``<tasks>.layers/<name>/work``, same file system),
overlayfs's scratch directory.

Opening costs the same for any repository size: no checkout, no ownership change per file.
The disk guard measures the upper layer (what the task wrote), not the merged checkout. A
snapshot is built from the upper layer (`OverlaySandbox._index`): a scratch index holding the base (a copy of its index),
updated for the changed paths only (one ``git add --all`` of the paths written or gone), with
the same rules as a checkout's snapshot (`longshot.sandboxes.snapshot`: nested repositories,
gitlinks, escaping symlinks, sizes, counts) and the same ignore rules for new files.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from contextlib import suppress
from collections.abc import Callable, Sequence
from pathlib import Path

from longshot.errors import SnapshotRefused
from longshot.git import Git
from longshot.sandboxes.base import Measured, Peek, SandboxSpec
from longshot.sandboxes.bwrap import give_to_sandbox
from longshot.sandboxes.limits import Cgroup, DiskGuard, disk_over
from longshot.sandboxes.orphans import write_owner
from longshot.sandboxes.overlay import BaseTrees, Reaper, mount, probe, scan_upper, unmount
from longshot.sandboxes.snapshot import SKIP_DIRS, check_staged, copy_objects, sizes_small

from longshot.errors import SandboxError
from longshot.sandboxes.gitdir import shared_git_dir
from longshot.sandboxes.checkout import LocalOptions, LocalSandbox, ProviderView



class Overlays:
    """Whether a local provider's sandboxes are copy-on-write here, and their shared base trees."""

    def __init__(self, options: LocalOptions, work_dir: Path) -> None:
        self.mode = options.overlay
        if self.mode not in ("auto", "on", "off"):
            raise SandboxError(f"SANDBOX_OVERLAY must be auto, on or off, not {self.mode!r}")
        self.tasks = options.tasks_dir or work_dir / "tasks"
        self.layers = self.tasks.with_name(self.tasks.name + ".layers")
        self.bases = BaseTrees(work_dir / "bases")
        self._isolated = options.isolation != "none"
        self._why: str | None = None
        self._probed = False

    def why_not(self) -> str | None:
        """None when sandboxes are overlays; otherwise the reason they are full checkouts."""
        if not self._probed:
            self._probed = True
            if self.mode == "off":
                self._why = "SANDBOX_OVERLAY=off"
            elif not self._isolated:
                self._why = "SANDBOX_ISOLATION=none (commands could write the shared base tree)"
            elif (why := probe(self.tasks)) is not None and self.mode == "on":
                raise SandboxError(f"SANDBOX_OVERLAY=on, but copy-on-write sandboxes are unavailable here: "
                                   f"{why} (set SANDBOX_OVERLAY=auto or off)")
            else:
                self._why = why
        return self._why

    def describe(self) -> str:
        why = self.why_not()
        if why is None:
            return "copy-on-write checkouts (kernel overlayfs on one shared tree per base commit)"
        return f"a full checkout per sandbox (copy-on-write unavailable: {why})"

    def sandbox(self, root: Path, spec: SandboxSpec, provider: ProviderView,
                cgroup: Cgroup | None) -> LocalSandbox:
        """The sandbox for ``root``: an overlay when possible (or when ``root`` already is one)."""
        if (root / "lower").is_file() or (not root.exists() and self.why_not() is None):
            return OverlaySandbox(root, spec, provider, cgroup, self)
        return LocalSandbox(root, spec, provider, cgroup)

    def remove(self, root: Path) -> None:
        """Remove a sandbox directory, detaching its overlay first (never deleting through it)."""
        unmount(root / "checkout")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(self.layers / root.name, ignore_errors=True)

    def sweep(self, dead: Callable[[Path], bool]) -> list[str]:
        """Remove the layers of sandboxes whose run is ``dead`` and the base trees no open sandbox uses
        (called at a run's start, after the dead runs' work was salvaged)."""
        found = []
        for entry in sorted(self.layers.iterdir()) if self.layers.is_dir() else []:
            root = self.tasks / entry.name
            if dead(root):
                self.remove(root)
                found.append(f"overlay layers {entry}")
        for base in sorted(self.bases.root.iterdir()) if self.bases.root.is_dir() else []:
            if not self.bases.users.get(base.name):  # a dead run's base, or half of one
                shutil.rmtree(base, ignore_errors=True)
                found.append(f"unused base tree {base}")
        return found

    async def dispose(self, sandbox: LocalSandbox) -> None:
        """Remove a closed sandbox's directory and give back its base tree."""
        await asyncio.to_thread(self.remove, sandbox.root)
        base = sandbox.unused_base if isinstance(sandbox, OverlaySandbox) else None
        if base is not None and not self.bases.users.get(base.name):  # nobody took it up again meanwhile
            await asyncio.to_thread(shutil.rmtree, base, True)


class UpperGuard(DiskGuard):
    """The disk guard of an overlay sandbox: after every command it counts exactly what the
    task wrote (``upper/``, HOME, /tmp), a walk as large as the task's writes and never the
    repository's; no guess from the file system's counters, which other writers move."""

    def counters(self) -> tuple[int, int] | None:
        return None

    def after(self, before: tuple[int, int] | None) -> str | None:
        return disk_over(self.dirs, self.limits)


class OverlaySandbox(LocalSandbox):
    """`LocalSandbox` with a copy-on-write checkout (see the module docstring)."""

    def __init__(self, root: Path, spec: SandboxSpec, provider: ProviderView, cgroup: Cgroup | None,
                 overlays: Overlays) -> None:
        super().__init__(root, spec, provider, cgroup)
        self.work = overlays.layers / root.name / "work"
        self.lower_file = root / "lower"
        self.bases = overlays.bases
        self._overlays = overlays
        self._upper_fd: int | None = None
        self._disk = UpperGuard(self.writable, provider.options.limits)
        self._lower: str | None = self.lower_file.read_text().strip() if self.lower_file.is_file() else None
        self._tree: str | None = None
        self._mounted = False
        self.unused_base: Path | None = None
        """The base tree to remove once this sandbox is gone (set by `close`)."""

    @property
    def upper(self) -> Path:
        """The upper layer: ``checkout/`` itself, reached under the mount through a descriptor."""
        return Path(f"/proc/self/fd/{self._upper_fd}") if self._upper_fd is not None else self.checkout

    async def create(self) -> None:
        for d in (*self.writable, self.work):
            d.mkdir(parents=True, exist_ok=True)
        write_owner(self.root)
        shared_git_dir(self.root / "git", self.spec.hub)
        branch = self.root / "git" / "refs" / "heads" / self.spec.branch
        branch.parent.mkdir(parents=True, exist_ok=True)
        branch.write_text(self.spec.base_commit + "\n")
        (self.root / "git" / "HEAD").write_text(f"ref: refs/heads/{self.spec.branch}\n")
        self.lower_file.write_text(self.spec.base_commit + "\n")
        self._lower = self.spec.base_commit
        give_to_sandbox(*self.writable)
        await self._mount()
        if self._opts.setup_command:
            await self._setup(self._opts.setup_command)
        if self.spec.setup:
            await self._setup(self.spec.setup)

    async def _mount(self) -> None:
        if self._mounted or self._lower is None:
            return
        unmount(self.checkout)  # a dead run's overlay, if its reaper has not detached it yet
        base = await self.bases.acquire(self.spec.hub, self._lower)
        Reaper.watch(self._overlays.tasks)
        index = self.root / "git" / "index"
        if not index.exists():
            with suppress(OSError):
                os.link(base / "index", index)
        fd = os.open(self.checkout, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            mount(base / "tree", self.checkout, self.work, self.checkout)
        except BaseException:
            os.close(fd)
            self.bases.release(self._lower)
            raise
        self._upper_fd, self._mounted = fd, True
        self.writable = [self.upper, self.home, self.tmp, self.shm]
        self._disk = UpperGuard(self.writable, self._opts.limits)

    def close(self) -> None:
        super().close()
        unmount(self.checkout)
        if self._upper_fd is not None:
            os.close(self._upper_fd)
            self._upper_fd = None
            self.writable = [self.checkout, self.home, self.tmp, self.shm]
        if self._mounted and self._lower is not None:
            self._mounted = False
            self.unused_base = self.bases.release(self._lower)

    # -- result ----------------------------------------------------------------------

    async def _index(self, index: Path) -> tuple[Git, int]:
        """A scratch index holding the checkout as it is now, built from ``upper/``, and the size
        of the largest file written."""
        assert self._lower is not None
        await self._mount()
        scan = await asyncio.to_thread(scan_upper, self.upper, frozenset(SKIP_DIRS))
        if scan.nested:
            raise SnapshotRefused("submodules and nested repositories are not allowed", sorted(scan.nested))
        git = self._git.with_index(index)
        made = self.bases.root / self._lower / "index"  # the base's index: no read-tree process
        try:
            await asyncio.to_thread(shutil.copyfile, made, index)
        except OSError:
            await git.run("read-tree", self._lower)
        paths = sorted({p for p in (*scan.written, *scan.gone) if p and ".git" not in p.split("/")})
        if paths:  # one process: ignore rules as check-ignore applies them, deletions below a gone path too
            code, _, err = await git.run_full("--literal-pathspecs", "add", "--all", "--pathspec-from-file=-",
                                              "--pathspec-file-nul", stdin=_z(paths))
            if code not in (0, 1):  # 1: some paths written are ignored (.gitignore), and were left out
                raise SandboxError(f"git add failed in {self.root}: {err.strip()}")
        return git, scan.largest

    async def snapshot(self, message: str) -> str | None:
        assert self._lower is not None
        with tempfile.TemporaryDirectory(prefix="longshot-snap-") as tmp:
            git, largest = await self._index(Path(tmp) / "index")
            changed = await check_staged(git, self._lower, max_file_bytes=self._opts.max_file_bytes,
                                         max_files=self._opts.max_changed_files, largest_file=largest,
                                         count_lines=True)
            if not changed and self._head == self._lower:
                return None
            tree = await git.run("write-tree")
        if self._head != self._lower:
            self._tree = self._tree or await self._git.run("rev-parse", f"{self._head}^{{tree}}")
            if tree == self._tree:
                return None
        sha = await self._git.run("commit-tree", tree, "-p", self._head, "-m", message)
        self._head, self._tree = sha, tree
        (self.root / "git" / "refs" / "heads" / self.spec.branch).write_text(sha + "\n")
        await asyncio.to_thread(copy_objects, self.root / "git" / "objects", self.spec.hub / "objects")
        await Git(self.spec.hub).run("update-ref", f"refs/heads/{self.spec.branch}", sha)
        small = sizes_small(largest, self._opts.max_file_bytes)  # then its diff counted the lines (check_staged)
        self.measured = Measured(self._lower, sha, tuple(changed)) if small else None
        return sha

    async def peek(self, parents: Sequence[str], message: str) -> Peek | None:
        """The checkout as it is now, as a commit in the hub (`longshot.sandboxes.worktree.peek_commit`)."""
        with tempfile.TemporaryDirectory(prefix="longshot-peek-") as tmp:
            try:
                git, largest = await self._index(Path(tmp) / "index")
                await check_staged(git, parents[0], max_file_bytes=self._opts.max_file_bytes,
                                   max_files=self._opts.max_changed_files, largest_file=largest)
            except SnapshotRefused:
                return None
            tree = await git.run("write-tree")
        commit = await self._git.run("commit-tree", tree, *(x for p in parents for x in ("-p", p)), "-m", message)
        await asyncio.to_thread(copy_objects, self.root / "git" / "objects", self.spec.hub / "objects")
        return Peek(tree, commit)

    async def put_tree(self, tree: str) -> None:
        """The checkout goes from what it holds now to ``tree`` (written through the overlay)."""
        with tempfile.TemporaryDirectory(prefix="longshot-put-") as tmp:
            git, _ = await self._index(Path(tmp) / "index")
            await git.run("read-tree", "--reset", "-u", tree)


def _z(paths: Sequence[str]) -> bytes:
    return b"".join(os.fsencode(p) + b"\0" for p in paths)

