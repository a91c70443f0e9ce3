"""Writing a stack of landing commits without a git process per commit.

The merge queue lands a batch by stacking its changes on the tip, one commit each, and
moving the target branch once (`longshot.pipeline.merge`). Built one by one, each change
costs a ``git merge-tree`` and a ``git commit-tree`` process, and ``merge-tree`` also walks
every commit stacked so far to find the merge base, so a stack of n changes costs O(n^2).
A `Stacker` keeps that cost flat:

- commits are written by one ``git hash-object -w -t commit --stdin-paths`` process for the
  whole stack (it answers each path with the object's id as it goes), with the same bytes
  ``git commit-tree`` would write: the identities ``git var`` gives, taken once per stack;
- each change is merged onto a *stand-in* for the commit below it: a commit with the same
  tree whose parents are what that commit descends from outside the stack (the tip, and the
  changes a merge commit brought in), never the stacked commits themselves. The stacked commits are new, so no change can descend from them: the
  stand-in and the real commit have the same common ancestors with every change, hence the
  same merge bases, and with the same trees ``merge-tree`` gives the same result, without
  walking the stack;
- trees already known (the tip's, every stacked commit's) are not asked of git again.

Stand-ins are never referenced by a ref: they are unreachable objects, left to git's
garbage collection.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from types import TracebackType

from longshot.errors import GitError
from longshot.git import Git


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
        shm = Path("/dev/shm")  # in memory where there is one: written once per commit
        self._dir = tempfile.TemporaryDirectory(prefix="longshot-stack-",
                                                dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
        self._file = Path(self._dir.name) / "object"
        self._fd = os.open(self._file, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._proc: asyncio.subprocess.Process | None = None

    @classmethod
    async def open(cls, git: Git, tip: str) -> Stacker:
        """A stacker for ``tip``: reads its tree and the commit identities (two processes)."""
        tree = await git.run("rev-parse", f"{tip}^{{tree}}")
        idents = dict(line.split("=", 1) for line in (await git.run("var", "-l")).splitlines() if "=" in line)
        if "GIT_AUTHOR_IDENT" not in idents or "GIT_COMMITTER_IDENT" not in idents:
            raise GitError(["var", "-l"], 1, "git var -l gave no author or committer identity")
        return cls(git, tip, tree, idents["GIT_AUTHOR_IDENT"], idents["GIT_COMMITTER_IDENT"])

    async def __aenter__(self) -> Stacker:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        await self.close()

    def tree(self, commit: str) -> str | None:
        """The tree of ``commit`` when this stacker knows it (the tip, a commit it wrote)."""
        return self._trees.get(commit)

    async def stand_in(self, base: str) -> str:
        """A commit to merge onto in place of ``base`` (the tip or a commit of this stack): the
        same tree and the same common ancestors with any change, without the stack below it."""
        if base not in self._below:  # not written here (the tip, a change taken as it is)
            return base
        if base not in self._stand_ins:
            self._stand_ins[base] = await self._write(self._trees[base], self._below[base], "stand-in")
        return self._stand_ins[base]

    async def commit(self, tree: str, parents: list[str], message: str) -> str:
        """Write the commit ``git commit-tree tree -p parents... -m message`` would write."""
        new = await self._write(tree, parents, message)
        self._trees[new] = tree
        first = parents[:1]
        self._below[new] = [*self._below.get(first[0], first), *parents[1:]] if first else []
        return new

    async def _write(self, tree: str, parents: list[str], message: str) -> str:
        head = "".join([f"tree {tree}\n", *(f"parent {p}\n" for p in parents),
                        f"author {self._author}\n", f"committer {self._committer}\n"])
        body = message if not message or message.endswith("\n") else message + "\n"
        data = f"{head}\n{body}".encode()
        os.ftruncate(self._fd, len(data))
        os.pwrite(self._fd, data, 0)
        proc = await self._process()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{self._file}\n".encode())
            await proc.stdin.drain()
            line = (await proc.stdout.readline()).decode().strip()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise GitError(["hash-object", "-w", "-t", "commit", "--stdin-paths"], 1, str(e)) from e
        if not line:
            raise GitError(["hash-object", "-w", "-t", "commit", "--stdin-paths"], proc.returncode or 1,
                           f"git hash-object wrote no commit for tree {tree}")
        return line

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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._dir.cleanup()
