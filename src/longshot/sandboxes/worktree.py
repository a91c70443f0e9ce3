"""Looking at a running worker's checkout without disturbing it, and bringing a tree into it.

The local provider's side of the optional capability `longshot.sandboxes.base.Mergeable`: the local provider has it; remote providers
(Ray, Modal) do not, so their workers get no early conflict warnings and no ``merge_tip``.

- `peek` commits the checkout as it is now, through a scratch index (``GIT_INDEX_FILE``, a
  copy of the sandbox's index so unchanged files are not hashed again): the sandbox's own
  index, branch and files are left alone, the same snapshot rules apply (a refused result
  peeks as None), and the commit's new objects are copied into the hub so the orchestrator
  can merge it there. Nothing refers to the commit; it is never pushed.
- `put_tree` makes the checkout hold a tree from the hub (the tip merged into the worker's
  work, conflict markers left in place): files are rewritten, added and removed through a
  scratch index holding what the checkout held; files the snapshot ignores are left alone.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from longshot.git import Git
from longshot.sandboxes.base import Peek
from longshot.errors import SnapshotRefused
from longshot.sandboxes.snapshot import check_staged, copy_objects


async def peek_commit(git: Git, git_dir: Path, hub: Path, parents: Sequence[str], message: str, *,
                      max_file_bytes: int, max_files: int) -> Peek | None:
    """`Mergeable.peek` for a sandbox whose repository is ``git`` (git dir ``git_dir``)."""
    with tempfile.TemporaryDirectory(prefix="longshot-peek-") as tmp:
        scratch = git.with_index(Path(tmp) / "index")
        if (git_dir / "index").exists():
            # copy2 keeps the index's time: a file changed in the same second as the index was
            # written (with its size unchanged) is then still "racily clean" and hashed again.
            await asyncio.to_thread(shutil.copy2, git_dir / "index", Path(tmp) / "index")
        await scratch.run("add", "--all", "--", ".")
        try:
            await check_staged(scratch, parents[0], max_file_bytes=max_file_bytes, max_files=max_files)
        except SnapshotRefused:
            return None
        tree = await scratch.run("write-tree")
    argv = ["commit-tree", tree, *(x for p in parents for x in ("-p", p)), "-m", message]
    commit = await git.run(*argv)
    await asyncio.to_thread(copy_objects, git_dir / "objects", hub / "objects")
    return Peek(tree, commit)


async def put_tree(git: Git, tree: str) -> None:
    """`Mergeable.put_tree`: the checkout of ``git`` (a repository with a work tree) goes from
    what it holds now to ``tree``."""
    with tempfile.TemporaryDirectory(prefix="longshot-put-") as tmp:
        scratch = git.with_index(Path(tmp) / "index")
        await scratch.run("add", "--all", "--", ".")  # what the checkout holds now
        await scratch.run("read-tree", "--reset", "-u", tree)
