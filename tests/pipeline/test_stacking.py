"""The merge queue's stack writer (`longshot.pipeline.stacking`), on real git repositories:
commits written as ``git commit-tree`` writes them (SHA-1 and SHA-256), stand-ins with the
same merge bases as the commits they stand for, a commit git wrote differently refused, and
the commit-graph kept up to date every so many landings."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from longshot.errors import GitError
from longshot.git import Git
from longshot.pipeline.stacking import PREFIX, History, Stacker
from longshot.testing.repos import git

AUTHOR = ("Stack Tester", "stack@localhost")
when = re.compile(r"> \d+ [+-]\d{4}$", re.M)
"""The time at the end of an author or committer line."""


async def repo(tmp_path: Path, object_format: str = "sha1") -> tuple[Git, str]:
    """A bare repository with one commit (a.txt) on main; its Git and the commit."""
    path = tmp_path / f"hub-{object_format}.git"
    git("init", "--quiet", "--bare", f"--object-format={object_format}", str(path), cwd=tmp_path)
    g = Git(path, author=AUTHOR)
    return g, await write(g, None, {"a.txt": "a\n"}, "first")


async def write(g: Git, parent: str | None, files: dict[str, str], message: str) -> str:
    """A commit of ``parent``'s tree with ``files`` written, by git itself."""
    index = g.with_index(g.cwd / f"index-{message}")
    if parent:
        await index.run("read-tree", parent)
    for path, text in files.items():
        blob = await g.run("hash-object", "-w", "--stdin", stdin=text.encode())
        await index.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
    tree = await index.run("write-tree")
    return await g.run("commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)


def tree_of(g: Git, commit: str) -> str:
    return git("rev-parse", f"{commit}^{{tree}}", cwd=g.cwd)


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
async def test_a_stack_writes_the_commits_commit_tree_would_write(tmp_path: Path, object_format: str) -> None:
    g, tip = await repo(tmp_path, object_format)
    side = await write(g, tip, {"b.txt": "b\n"}, "side")
    async with await Stacker.open(g, tip) as stack:
        assert stack.tree(tip) == tree_of(g, tip) and stack.tree(side) is None
        one = stack.commit(tree_of(g, side), [tip], "one line, no newline")
        two = stack.commit(tree_of(g, side), [one, side], "Merge side\n\nwith a body\n\nLongshot-Task: t2\n")
        three = stack.commit(tree_of(g, tip), [two], "")
        assert stack.tree(two) == tree_of(g, side)
    for sha in (one, two, three):
        assert git("cat-file", "-t", sha, cwd=g.cwd) == "commit"  # written, under the id computed
        assert len(sha) == (64 if object_format == "sha256" else 40)
    assert git("log", "--format=%P", "-1", two, cwd=g.cwd).split() == [one, side]
    assert git("log", "--format=%B", "-1", one, cwd=g.cwd) == "one line, no newline"
    assert git("log", "--format=%(trailers:key=Longshot-Task,valueonly)", "-1", two, cwd=g.cwd) == "t2"
    # the same bytes as commit-tree writes for the same tree, parents and message (but the clock)
    for sha, parents, message in ((one, [tip], "one line, no newline"), (three, [two], "")):
        by_git = await g.run("commit-tree", tree_of(g, sha), *(x for p in parents for x in ("-p", p)), "-m", message)
        assert when.sub("T", git("cat-file", "commit", sha, cwd=g.cwd)) == \
            when.sub("T", git("cat-file", "commit", by_git, cwd=g.cwd))
    git("fsck", "--no-dangling", "--strict", cwd=g.cwd)
    assert not list(Path("/dev/shm").glob(f"{PREFIX}{os.getpid()}-*"))  # its scratch is gone


async def test_a_stand_in_has_the_tree_and_the_merge_bases_of_the_commit_it_stands_for(tmp_path: Path) -> None:
    g, root = await repo(tmp_path)
    tip = await write(g, root, {"t.txt": "tip\n"}, "tip")
    change = await write(g, root, {"c.txt": "change\n"}, "a change made on an older tip")
    async with await Stacker.open(g, tip) as stack:
        assert await stack.stand_in(tip) == tip  # nothing stacked below: the tip itself
        first = stack.commit(tree_of(g, tip), [tip], "first of the stack")
        second = stack.commit(tree_of(g, tip), [first], "second")
        stand_in = await stack.stand_in(second)
        assert await stack.stand_in(second) == stand_in  # written once
    assert tree_of(g, stand_in) == tree_of(g, second)
    assert git("log", "--format=%P", "-1", stand_in, cwd=g.cwd).split() == [tip]  # not the stacked commits
    for other in (change, tip, root):
        assert git("merge-base", "--all", stand_in, other, cwd=g.cwd) == git("merge-base", "--all", second, other,
                                                                             cwd=g.cwd)


async def test_a_commit_git_writes_under_another_id_is_refused(tmp_path: Path) -> None:
    g, tip = await repo(tmp_path)
    stack = await Stacker.open(g, tip)
    try:
        stack.commit(tree_of(g, tip), [tip], "expected")
        scratch = next(Path(stack._dir.name).iterdir())  # noqa: SLF001 - the file git will read
        scratch.write_bytes(scratch.read_bytes().replace(b"expected", b"tampered"))
        with pytest.raises(GitError, match="expected as"):
            await stack.written()
    finally:
        await stack.close()


async def test_a_stack_on_a_tip_that_does_not_exist_does_not_start(tmp_path: Path) -> None:
    g, tip = await repo(tmp_path)
    with pytest.raises(GitError, match="no such|bad|unknown|Not a valid|ambiguous"):
        await Stacker.open(g, "0" * 40)  # a tip that does not exist: rev-parse fails first


async def test_the_commit_graph_is_written_every_so_many_landings(tmp_path: Path) -> None:
    g, tip = await repo(tmp_path)
    graphs = g.cwd / "objects" / "info" / "commit-graphs"
    history = History(g)
    await history.landed(tip, History.EVERY - 1)
    assert not graphs.exists() and history.pending == History.EVERY - 1
    await history.landed(tip, 1)
    assert history.pending == 0 and any(graphs.glob("graph-*.graph"))
    assert git("commit-graph", "verify", cwd=g.cwd) == ""
