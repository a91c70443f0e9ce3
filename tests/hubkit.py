"""A hub on a real target repository, and commits made without a checkout (for the tests of
the stages that read and move refs: reset, resume, salvage, status)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from longshot.git import Git
from longshot.hub import Hub
from longshot.testing.repos import git

AUTHOR = ("Longshot", "longshot@localhost")


async def open_hub(tmp_path: Path, target: Path, name: str = "hub", **options: object) -> Hub:
    """A fresh hub of ``target`` in ``tmp_path/name``, opened (fetched) as a run opens it."""
    hub = Hub(tmp_path / name, str(target), "main", AUTHOR, **options)  # type: ignore[arg-type]
    await hub.open()
    return hub


async def commit(repo: Git, parent: str | None, message: str, files: dict[str, str | None] | None = None) -> str:
    """A commit of ``parent``'s tree with ``files`` written (None: deleted); no ref moves."""
    with tempfile.TemporaryDirectory(prefix="hubkit-") as tmp:
        index = repo.with_index(Path(tmp) / "index")
        if parent:
            await index.run("read-tree", parent)
        for path, text in (files or {}).items():
            if text is None:  # mode 0 removes the entry (--force-remove wants a work tree)
                await index.run("update-index", "--index-info", stdin=f"0 {'0' * 40}\t{path}\n".encode())
            else:
                blob = await repo.run("hash-object", "-w", "--stdin", stdin=text.encode())
                await index.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
        tree = await index.run("write-tree")
    return await repo.run("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)


async def land(hub: Hub, message: str, files: dict[str, str | None] | None = None) -> str:
    """A commit on the target branch, published as the merge queue publishes (compare-and-swap)."""
    old = await hub.tip()
    new = await commit(hub.git, old, message, files)
    await hub.push_tip(new, old)
    return new


def refs(repo: Path, *patterns: str) -> dict[str, str]:
    """Every ref of ``repo`` (or those under ``patterns``) -> its commit."""
    out = git("for-each-ref", "--format=%(refname) %(objectname)", *patterns, cwd=repo)
    return dict(line.split() for line in out.splitlines())
