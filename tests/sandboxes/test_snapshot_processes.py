"""How many git processes a task's result costs: an overlay sandbox's snapshot and the
handoff built from it, counted with git's own trace (trace2), in a real repository."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from longshot.git import Git
from longshot.harnesses.base import HarnessResult
from longshot.pipeline.handoff import build_handoff
from longshot.sandboxes.base import Measuring, SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.sandboxes.overlay import probe
from longshot.testing.gittrace import GitTrace
from longshot.testing.repos import git, make_remote
from longshot.types import Task

with tempfile.TemporaryDirectory() as _probe_dir:
    WHY_NOT = probe(Path(_probe_dir)) if shutil.which("bwrap") else "bubblewrap is not installed"
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no overlays here: {WHY_NOT}")

FILES = {"README.md": "# demo\n", "pkg/core.py": "def f():\n    return 1\n", "old.txt": "a\nb\n",
         "logo.bin": "\0\1\2"}


def test_a_snapshot_and_its_handoff_take_five_git_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = GitTrace(tmp_path / "trace")
    monkeypatch.setenv("HOME", str(trace.home))  # before any Git is built: it reads the environment once
    remote = make_remote(tmp_path, FILES)
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    base = git("rev-parse", "refs/heads/main", cwd=hub)
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(overlay="on"))
    task = Task(id="t1", description="d", branch="worker/t1")
    result = HarnessResult(status="complete", summary="done")

    async def main() -> None:
        async with provider.open(SandboxSpec(task_id="t1", branch="worker/t1", base_commit=base, hub=hub)) as sb:
            await sb.write_file("pkg/core.py", b"def f():\n    return 2\n\n\ndef g():\n    return 3\n")
            await sb.write_file("new/notes.md", b"- one\n- two\n- three\n")
            await sb.write_file("logo.bin", b"\0\1\2\3")
            assert (await sb.exec("rm old.txt", 30)).exit_code == 0
            trace.mark()
            commit = await sb.snapshot("work of t1")
            assert commit is not None and isinstance(sb, Measuring)
            handoff = await build_handoff(Git(hub), task, result, base, commit, 0, sb.measured)
        # add, diff (the rules and the handoff's figures), write-tree, commit-tree, the hub's update-ref
        assert trace.counts() == {"add": 1, "diff": 1, "write-tree": 1, "commit-tree": 1, "update-ref": 1}
        assert git("rev-parse", "refs/heads/worker/t1", cwd=hub) == commit
        measured = await build_handoff(Git(hub), task, result, base, commit, 0)  # as a diff in the hub counts it
        assert handoff == measured
        assert handoff.files_changed == ["logo.bin", "new/notes.md", "old.txt", "pkg/core.py"]
        m = handoff.metrics
        assert (m.files_created, m.files_modified, m.lines_added, m.lines_removed) == (1, 2, 8, 3)  # logo.bin is binary: no lines

    asyncio.run(main())


def test_a_snapshot_with_a_large_file_counts_no_lines_and_the_handoff_diffs_instead(tmp_path: Path) -> None:
    """Counting lines reads and compares whole blobs, so a snapshot does it only when every file
    written is known to be small (a quarter of SNAPSHOT_MAX_FILE_MB); otherwise the handoff
    counts from its own diff, after the snapshot's rules have passed."""
    remote = make_remote(tmp_path, FILES)
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    base = git("rev-parse", "refs/heads/main", cwd=hub)
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(overlay="on", max_file_bytes=1000))
    task = Task(id="t1", description="d", branch="worker/t1")
    result = HarnessResult(status="complete", summary="done")

    async def main() -> None:
        async with provider.open(SandboxSpec(task_id="t1", branch="worker/t1", base_commit=base, hub=hub)) as sb:
            await sb.write_file("small.txt", b"one\ntwo\n")
            await sb.write_file("big.txt", b"line\n" * 60)  # 300 bytes: under the limit, over a quarter of it
            commit = await sb.snapshot("work of t1")
            assert commit is not None and isinstance(sb, Measuring) and sb.measured is None
            handoff = await build_handoff(Git(hub), task, result, base, commit, 0, sb.measured)
        assert handoff.files_changed == ["big.txt", "small.txt"]
        assert (handoff.metrics.files_created, handoff.metrics.lines_added) == (2, 62)

    asyncio.run(main())
