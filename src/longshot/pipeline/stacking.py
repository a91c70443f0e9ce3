"""Writing a stack of landing commits without a git process per commit.

The merge queue lands a batch by stacking its changes on the tip, one commit each, and
moving the target branch once (`longshot.pipeline.merge`). Built one by one, each change
costs a ``git merge-tree`` and a ``git commit-tree`` process, and ``merge-tree`` also walks
every commit stacked so far to find the merge base, so a stack of n changes costs O(n^2).
A `Stacker` keeps that cost flat:

- commits are written by one ``git hash-object -w -t commit --stdin-paths`` process for the
  whole stack (it answers each path with the object's id as it goes), with the same bytes
  ``git commit-tree`` would write: the identities ``git var`` gives, taken once per stack.
  Their ids are computed here as git computes them (SHA-1, or SHA-256 in such a repository),
  so the stack does not wait for each one: it waits before each merge (the commit merged
  onto must exist) and at the end, and every id git answers is checked against the one
  expected;
- each change is merged onto a *stand-in* for the commit below it: a commit with the same
  tree whose parents are what that commit descends from outside the stack (the tip, and the
  changes a merge commit brought in), never the stacked commits themselves. The stacked
  commits are new, so no change can descend from them: the stand-in and the real commit
  have the same common ancestors with every change, hence the same merge bases, and with
  the same trees ``merge-tree`` gives the same result, without walking the stack;
- trees already known (the tip's, every stacked commit's) are not asked of git again.

Stand-ins are never referenced by a ref: they are unreachable objects, left to git's
garbage collection. The commits go to git as files in a scratch directory (on /dev/shm where
there is one), each removed once git has read it; a killed process's directory is swept by
the next stack.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from longshot.errors import GitError
from longshot.git import Git
from longshot.procs import alive


PREFIX = "longshot-stack-"
"""Each stack's scratch directory is ``<PREFIX><pid>-<random>``; a killed process's are swept."""


def _sweep(where: Path) -> None:
    """Remove the scratch directories of processes that are gone (a glob of one folder per stack)."""
    for old in where.glob(f"{PREFIX}*-*"):
        pid = old.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


class Stacker:
    """Writes the commits of one stack on ``tip``; use as ``async with await Stacker.open(git, tip)``."""

    def __init__(self, git: Git, tip: str, tip_tree: str, author: str, committer: str) -> None:
        self.git = git
        self.tip = tip
        self._author = author
        self._committer = committer
        self._trees: dict[str, str] = {tip: tip_tree}
        self._below: dict[str, list[str]] = {}
        """Per commit written here: the first commit below it not written here, then the other
        parents of the commits between (merge commits' sources): what it descends from."""
        self._stand_ins: dict[str, str] = {}
        shm = Path("/dev/shm")  # in memory where there is one: a file per commit, read once by git
        where = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
        _sweep(where)
        self._dir = tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=where)
        self._pending: list[tuple[str, Path]] = []
        """Commits handed to git, not yet confirmed: (the id expected, its file)."""
        self._lines: list[bytes] = []
        self._names = itertools.count()
        self._proc: asyncio.subprocess.Process | None = None

    @classmethod
    async def open(cls, git: Git, tip: str, tree: str | None = None) -> Stacker:
        """A stacker for ``tip`` (whose ``tree`` the caller may know): reads the commit identities,
        and the tip's tree unless given (one or two processes)."""
        tree = tree or await git.run("rev-parse", f"{tip}^{{tree}}")
        idents = dict(line.split("=", 1) for line in (await git.run("var", "-l")).splitlines() if "=" in line)
        if "GIT_AUTHOR_IDENT" not in idents or "GIT_COMMITTER_IDENT" not in idents:
            raise GitError(["var", "-l"], 1, "git var -l gave no author or committer identity")
        return cls(git, tip, tree, idents["GIT_AUTHOR_IDENT"], idents["GIT_COMMITTER_IDENT"])

    async def __aenter__(self) -> Stacker:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        try:
            if kind is None:
                await self.written()
        finally:
            await self.close()

    def tree(self, commit: str) -> str | None:
        """The tree of ``commit`` when this stacker knows it (the tip, a commit it wrote)."""
        return self._trees.get(commit)

    async def stand_in(self, base: str) -> str:
        """A commit to merge onto in place of ``base`` (the tip or a commit of this stack): the
        same tree and the same common ancestors with any change, without the stack below it.
        Written (with every commit before it) by the time this returns."""
        if base not in self._below:  # not written here (the tip, a change taken as it is)
            return base
        if base not in self._stand_ins:
            self._stand_ins[base] = self._send(self._trees[base], self._below[base], "stand-in")
        await self.written()
        return self._stand_ins[base]

    def commit(self, tree: str, parents: list[str], message: str) -> str:
        """The commit ``git commit-tree tree -p parents... -m message`` would write, handed to
        git to write; its id is known at once (`written` waits until git wrote it)."""
        new = self._send(tree, parents, message)
        self._trees[new] = tree
        first = parents[:1]
        self._below[new] = [*self._below.get(first[0], first), *parents[1:]] if first else []
        return new

    def _send(self, tree: str, parents: list[str], message: str) -> str:
        head = "".join([f"tree {tree}\n", *(f"parent {p}\n" for p in parents),
                        f"author {self._author}\n", f"committer {self._committer}\n"])
        body = message if not message or message.endswith("\n") else message + "\n"
        data = f"{head}\n{body}".encode()
        digest = (hashlib.sha256 if len(tree) == 64 else hashlib.sha1)(b"commit %d\0" % len(data) + data).hexdigest()
        path = Path(self._dir.name) / str(next(self._names))
        path.write_bytes(data)
        self._pending.append((digest, path))
        self._lines.append(f"{path}\n".encode())
        return digest

    async def written(self) -> None:
        """Wait until git has written every commit handed to it, each under the id expected."""
        if not self._pending:
            return
        proc = await self._process()
        assert proc.stdin is not None and proc.stdout is not None
        argv = ["hash-object", "-w", "-t", "commit", "--stdin-paths"]
        try:
            proc.stdin.write(b"".join(self._lines))
            self._lines.clear()
            await proc.stdin.drain()
            while self._pending:
                expected, path = self._pending[0]
                line = (await proc.stdout.readline()).decode().strip()
                if line != expected:
                    raise GitError(argv, proc.returncode or 1,
                                   f"git hash-object wrote {line or 'nothing'} for the commit expected as {expected}")
                self._pending.pop(0)
                path.unlink()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise GitError(argv, 1, str(e)) from e

    async def _process(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            self._proc = await self.git.start("hash-object", "-w", "-t", "commit", "--no-filters", "--stdin-paths")
        return self._proc

    async def close(self) -> None:
        proc = self._proc
        self._proc = None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            await proc.wait()
        self._dir.cleanup()


class History:
    """Keeps the hub's commit-graph up to date with what lands, so that merge bases stay cheap.

    A change made on an older tip meets the target branch far below its tip: finding that
    merge base walks every commit landed since, and commits the merge queue wrote are loose
    objects, each one opened and inflated (with 600 of them, 19 ms per ``merge-tree`` against
    2.5 to 4.5 ms with a graph, measured by ``bench/merge_bench.py``). Every ``EVERY``
    landings the landed commits are added to the graph (``git commit-graph write --split``,
    incremental). The graph only speeds up walks: when writing it fails, nothing else does.
    """

    EVERY = 32

    def __init__(self, git: Git) -> None:
        self.git = git
        self.pending = 0
        """Landings since the graph was last written."""

    async def landed(self, tip: str, count: int) -> None:
        """``count`` landings moved the target branch to ``tip``."""
        self.pending += count
        if self.pending >= self.EVERY:
            self.pending = 0
            await self.git.run_full("commit-graph", "write", "--split", "--stdin-commits", "--no-progress",
                                    stdin=f"{tip}\n".encode())
