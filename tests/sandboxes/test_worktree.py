"""Peeking at a running worker's checkout and bringing a tree into it (`Mergeable`), for real:
a local sandbox under bubblewrap, its git dir, and the hub."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from longshot.sandboxes.base import Mergeable, SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.testing.repos import git, make_remote

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

FILES = {"README.md": "# demo\n", "pkg/core.py": "def f():\n    return 1\n", "old.txt": "old\n"}


@pytest.fixture
def spec(tmp_path: Path) -> SandboxSpec:
    remote = make_remote(tmp_path, FILES)
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    base = git("rev-parse", "refs/heads/main", cwd=hub)
    return SandboxSpec(task_id="t1", branch="worker/t1-x", base_commit=base, hub=hub)


def sandbox_git(sb: LocalSandbox, *args: str) -> str:
    return git(f"--git-dir={sb.root / 'git'}", f"--work-tree={sb.checkout}", *args, cwd=sb.root)


async def test_a_peek_commits_the_checkout_into_the_hub_without_disturbing_it(tmp_path: Path, spec: SandboxSpec) -> None:
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions())
    async with provider.open(spec) as sb:
        assert isinstance(sb, Mergeable) and isinstance(sb, LocalSandbox)
        await sb.write_file("pkg/core.py", b"def f():\n    return 2\n")  # same size: racily clean unless rehashed
        await sb.write_file("new.txt", b"new\n")
        status = sandbox_git(sb, "status", "--porcelain")  # (status itself refreshes the index)
        index = (sb.root / "git" / "index").read_bytes()
        peek = await sb.peek([spec.base_commit], "a look")
        assert peek is not None
        # In the hub, as a commit on the base nobody refers to; the sandbox's index, branch and files unchanged.
        assert git("show", f"{peek.commit}:pkg/core.py", cwd=spec.hub) == "def f():\n    return 2"
        assert git("show", f"{peek.commit}:new.txt", cwd=spec.hub) == "new"
        assert git("rev-parse", f"{peek.commit}^", cwd=spec.hub) == spec.base_commit
        assert git("rev-parse", f"{peek.commit}^{{tree}}", cwd=spec.hub) == peek.tree
        assert (sb.root / "git" / "index").read_bytes() == index
        assert sandbox_git(sb, "status", "--porcelain") == status
        assert "pkg/core.py" in status and "?? new.txt" in status  # still changes of the checkout, not committed
        assert sandbox_git(sb, "rev-parse", "HEAD") == spec.base_commit
        assert git("for-each-ref", "--format=%(objectname)", cwd=spec.hub).count(peek.commit) == 0


async def test_a_peek_of_a_result_that_breaks_a_snapshot_rule_is_refused(tmp_path: Path, spec: SandboxSpec) -> None:
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions())
    async with provider.open(spec) as sb:
        os.symlink("/etc/passwd", sb.checkout / "leak")
        assert await sb.peek([spec.base_commit], "a look") is None


async def test_put_tree_makes_the_checkout_hold_the_tree(tmp_path: Path, spec: SandboxSpec) -> None:
    """Files changed, added and removed as the tree says; what the snapshot ignores is left alone."""
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions())
    async with provider.open(spec) as sb:
        await sb.write_file("mine.txt", b"my work\n")
        (sb.checkout / "__pycache__").mkdir()
        (sb.checkout / "__pycache__" / "x.pyc").write_bytes(b"cache")
        peek = await sb.peek([spec.base_commit], "a look")
        assert peek is not None
        scratch = tmp_path / "scratch"
        git("clone", "--quiet", str(spec.hub), str(scratch), cwd=tmp_path)
        git("checkout", "--quiet", peek.commit, cwd=scratch)
        (scratch / "pkg" / "core.py").write_text("<<<<<<< tip\nA\n=======\nB\n>>>>>>> yours\n")
        (scratch / "tip.txt").write_text("from the tip\n")
        git("rm", "--quiet", "old.txt", cwd=scratch)
        git("add", "--all", cwd=scratch)
        git("commit", "--quiet", "-m", "merged", cwd=scratch)
        git("push", "--quiet", str(spec.hub), "HEAD:refs/heads/scratch", cwd=scratch)
        tree = git("rev-parse", "HEAD^{tree}", cwd=scratch)

        await sb.put_tree(tree)

        assert (await sb.read_file("pkg/core.py")).startswith(b"<<<<<<< tip")
        assert await sb.read_file("tip.txt") == b"from the tip\n" and await sb.read_file("mine.txt") == b"my work\n"
        assert not (sb.checkout / "old.txt").exists()
        assert (sb.checkout / "__pycache__" / "x.pyc").read_bytes() == b"cache"
        again = await sb.peek([spec.base_commit], "a look")
        assert again is not None and again.tree == tree
