"""Copy-on-write checkouts: one read-only tree per base commit, a kernel overlay per sandbox.

- `BaseTrees` materialises the tree of a base commit once, under ``<work_dir>/bases/<commit>``
  (written in a temporary directory, given to the sandbox's identity, then renamed into
  place, so a half-written base is never used), shares it between every sandbox that starts
  from that commit, and removes it when the last one closes, unless it is the newest base.
  ``bases/`` is ``0700``: only the orchestrator reaches a base directly; a sandbox sees it
  only through its overlay.
- `mount` lays a sandbox's upper directory over a base (the kernel's overlayfs: Debian 12's
  bubblewrap 0.8 has no overlay options). The merged directory is the sandbox's
  ``checkout/``, so bubblewrap binds it as ``/workspace`` and the orchestrator's file tools
  and git see it like a checkout; every write lands in ``upper/``. Options: no redirects,
  no metadata-only copy-up, no index, so every changed file is whole in ``upper/`` and a
  renamed directory is copied.
- `scan_upper` reads what a task changed from ``upper/``: files and symlinks written,
  whiteouts (deleted paths, character devices 0/0) and opaque directories (replaced
  wholesale), and the nested repositories written there.

Mounts live in the orchestrator's mount namespace, so a `Reaper` (one small process per
provider, in its own session) detaches this process's overlays as soon as the orchestrator
is gone, even after SIGKILL: it waits for the end of a pipe only the orchestrator holds.
What the task wrote stays in ``upper/`` for the next run to salvage (it mounts it again).

`probe` says whether this host can do it (root, the kernel's overlayfs, a file system that
takes an upper directory); otherwise sandboxes are full checkouts, said once per run.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from longshot.errors import SandboxError
from longshot.git import Git
from longshot.procs import run_process
from longshot.sandboxes.bwrap import give_to_sandbox

OPTIONS = "redirect_dir=off,metacopy=off,index=off"
OPAQUE = "trusted.overlay.opaque"
MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount(lower: Path, upper: Path, work: Path, merged: Path) -> None:
    """Mount the overlay of ``upper`` on ``lower`` at ``merged`` (``work``: overlayfs's scratch dir)."""
    for p in (lower, upper, work):
        if any(c in str(p) for c in ",:\\"):
            raise SandboxError(f"overlay paths cannot hold ',', ':' or '\\': {p} (set LONGSHOT_WORK_DIR elsewhere)")
    data = f"lowerdir={lower},upperdir={upper},workdir={work},{OPTIONS}".encode()
    if _libc.mount(b"overlay", os.fsencode(merged), b"overlay", 0, data) != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"could not mount the overlay at {merged}: {os.strerror(err)}")


def unmount(merged: Path) -> None:
    """Detach the overlay at ``merged`` (nothing when none is mounted there)."""
    if os.path.ismount(merged):
        _libc.umount2(os.fsencode(merged), MNT_DETACH)


def probe(parent: Path) -> str | None:
    """None when overlays work under ``parent``; otherwise why not (said once per run)."""
    if os.geteuid() != 0:
        return "the orchestrator is not root (the kernel's overlayfs needs it outside a user namespace)"
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".overlay-probe-", dir=parent) as tmp:
        dirs = [Path(tmp, d) for d in ("lower", "upper", "work", "merged")]
        for d in dirs:
            d.mkdir()
        try:
            mount(*dirs)
        except SandboxError as e:
            return str(e)
        try:
            Path(dirs[3], "probe").write_text("x")
            Path(dirs[3], "probe").unlink()
        except OSError as e:
            return f"the overlay under {parent} does not take writes: {e}"
        finally:
            unmount(dirs[3])
    return None


REAPER = r"""
import ctypes, os, sys
pid, dirs = sys.argv[1], set()
for line in sys.stdin.buffer:
    dirs.add(os.fsdecode(line.rstrip(b"\n")))
libc = ctypes.CDLL(None, use_errno=True)
for line in open("/proc/self/mounts"):
    target = line.split()[1].replace("\\040", " ")
    parent, _, leaf = target.rpartition("/")
    home, _, name = parent.rpartition("/")
    if leaf == "checkout" and home in dirs and name.rsplit("-", 2)[-2:-1] == [pid]:
        libc.umount2(os.fsencode(target), 2)
"""
"""Reads tasks directories (a line each) until the orchestrator is gone (EOF on stdin), then
detaches the overlays of its sandboxes there (``<tasks>/<task>-<pid>-<n>/checkout``)."""


class Reaper:
    """The process that unmounts this orchestrator's overlays when it ends (see the module
    docstring): one per orchestrator process, told each tasks directory once."""

    _proc: subprocess.Popen[bytes] | None = None
    _pid = 0
    _told: set[str] = set()

    @classmethod
    def watch(cls, tasks: Path) -> None:
        if cls._proc is None or cls._pid != os.getpid() or cls._proc.poll() is not None:
            cls._proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", REAPER, str(os.getpid())],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
            cls._pid, cls._told = os.getpid(), set()
        path = os.path.realpath(tasks)
        if path not in cls._told and cls._proc.stdin is not None:
            cls._proc.stdin.write(os.fsencode(path) + b"\n")
            cls._proc.stdin.flush()
            cls._told.add(path)


@dataclass
class BaseTrees:
    """The shared read-only trees of base commits under ``root`` (see the module docstring)."""

    root: Path
    users: dict[str, int] = field(default_factory=dict)
    newest: str | None = None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def acquire(self, hub: Path, commit: str) -> Path:
        """The directory of ``commit``'s base (``tree/``, ``index``), made on first use; pair with `release`."""
        self.newest = commit
        self.users[commit] = self.users.get(commit, 0) + 1
        async with self._locks.setdefault(commit, asyncio.Lock()):
            path = self.root / commit
            if not path.is_dir():
                await self._materialise(hub, commit, path)
        return path

    async def _materialise(self, hub: Path, commit: str, path: Path) -> None:
        """``path/tree`` (the files, the sandbox's) and ``path/index`` (their index), renamed into place whole.

        From another base tree in use when there is one (`_derive`: hard links, and only what
        differs written), else a checkout of every file.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        tmp = Path(tempfile.mkdtemp(prefix=f".{commit}-", dir=self.root))
        try:
            tree = tmp / "tree"
            if not await self._derive(hub, commit, tmp):
                shutil.rmtree(tree, ignore_errors=True)
                tree.mkdir()
                git = Git(tmp, git_dir=hub, work_tree=tree).with_index(tmp / "index")
                await git.run("read-tree", "--reset", "-u", commit)
                await asyncio.to_thread(give_to_sandbox, tree, recursive=True)
            try:
                os.rename(tmp, path)
            except OSError:
                if not path.is_dir():  # not another run's rename: a real failure
                    raise
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    async def _derive(self, hub: Path, commit: str, tmp: Path) -> bool:
        """``tmp/tree`` and ``tmp/index`` made from the tree of a base in use (a moving target's
        next tip is mostly its last): every file hard-linked (``cp -al``, one process, no file
        content copied), then ``read-tree -m -u`` from that base to ``commit``, which unlinks
        each file it changes before writing it, so the donor's files, which open sandboxes lie
        on, are never written. Only what changed is handed to the sandbox's identity. False
        when there is no donor or anything fails (the caller then checks out every file)."""
        donor = next((c for c, n in reversed(self.users.items()) if n > 0 and c != commit
                      and (self.root / c / "index").is_file()), None)
        if donor is None:
            return False
        self.users[donor] += 1  # kept while linked from
        try:
            code, _, _ = await run_process(["cp", "-al", "--", str(self.root / donor / "tree"), str(tmp / "tree")],
                                           cwd=tmp, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"})
            if code != 0:
                return False
            shutil.copyfile(self.root / donor / "index", tmp / "index")
            git = Git(tmp, git_dir=hub, work_tree=tmp / "tree").with_index(tmp / "index")
            # The index recorded the files before they were given to the sandbox's identity, and
            # a hard link changes a file's ctime: with ownership and ctime compared, every file
            # would look changed and read-tree would refuse to go on (size, mtime, mode still are)
            code, _, _ = await git.run_full("-c", "core.checkStat=minimal", "read-tree", "-m", "-u", donor, commit)
            if code != 0:
                return False
            changed = await git.run("diff-tree", "-r", "-z", "--name-only", "--no-renames", "--diff-filter=d",
                                    donor, commit)
            await asyncio.to_thread(_give_changed, tmp / "tree", [p for p in changed.split("\0") if p])
            return True
        finally:
            if (unused := self.release(donor)) is not None:
                await asyncio.to_thread(shutil.rmtree, unused, True)

    def release(self, commit: str) -> Path | None:
        """One sandbox less on ``commit``: its tree, to remove, when none is left and a newer base exists."""
        left = self.users.get(commit, 1) - 1
        self.users[commit] = left
        if left <= 0 and commit != self.newest:
            self.users.pop(commit, None)
            return self.root / commit
        return None


@dataclass
class UpperScan:
    """What a task changed, read from its upper directory (paths relative to the checkout)."""

    written: list[str] = field(default_factory=list)
    """Files and symlinks the task wrote (their content is in the merged view)."""
    gone: list[str] = field(default_factory=list)
    """Deleted paths and opaque directories: what the base held below them is hidden."""
    nested: list[str] = field(default_factory=list)
    """Directories holding a ``.git`` (refused by the snapshot)."""
    largest: int = 0
    """The size in bytes of the largest regular file written."""


def scan_upper(upper: Path, skip_nested: frozenset[str] = frozenset()) -> UpperScan:
    """Walk ``upper`` once (its size is what the task wrote, never the repository's)."""
    found = UpperScan()
    root = os.fspath(upper)
    stack = [(root, "", False)]
    while stack:
        here, rel, skipped = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            path = f"{rel}{entry.name}"
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.name == ".git":
                if rel and not skipped:
                    found.nested.append(rel.rstrip("/"))
                continue  # the root's own .git is never snapshotted, as with git add
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                found.gone.append(path)
            elif stat.S_ISDIR(st.st_mode):
                with suppress(OSError):
                    if os.getxattr(entry.path, OPAQUE, follow_symlinks=False) == b"y":
                        found.gone.append(path)
                stack.append((entry.path, path + "/", skipped or entry.name in skip_nested))
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                found.written.append(path)
                found.largest = max(found.largest, st.st_size)
            # A FIFO, socket or device is nothing git can hold: skipped, as `git add --all` skips it.
    return found


def _give_changed(tree: Path, paths: list[str]) -> None:
    """`give_to_sandbox` for the files a derived base tree wrote and the folders above them."""
    seen: set[str] = set()
    for rel in paths:
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            if sub not in seen:
                seen.add(sub)
                with suppress(FileNotFoundError):
                    give_to_sandbox(tree / sub)
