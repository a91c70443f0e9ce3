"""The handoff's figures are measured from git, never taken from the model."""

from __future__ import annotations

from pathlib import Path

from longshot.git import Git
from longshot.harnesses.base import HarnessResult
from longshot.pipeline.handoff import build_handoff
from longshot.testing.repos import git, make_remote
from longshot.types import Task


async def test_figures_count_created_modified_and_deleted_files_and_lines_but_not_generated_ones(
        tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.py": "1\n2\n3\n", "b.py": "x\n", "gone.py": "bye\n", "img.bin": "\0\1"})
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    base = git("rev-parse", "HEAD", cwd=work)
    (work / "a.py").write_text("1\nTWO\n3\n4\n")  # modified: +2 -1
    (work / "gone.py").unlink()  # deleted: -1
    (work / "new dir").mkdir()
    (work / "new dir" / "c.py").write_text("c\nc\n")  # created (a path with a space): +2
    (work / "node_modules").mkdir()
    (work / "node_modules" / "dep.js").write_text("x\n" * 50)  # created, generated: lines not counted
    (work / "img.bin").write_bytes(b"\0\2\3")  # modified, binary: no line figures
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "-m", "change", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work)
    task = Task(id="t1", description="change things", branch="worker/t1")
    result = HarnessResult(status="complete", summary="done", tokens_used=7, tool_calls=3)

    handoff = await build_handoff(Git(work), task, result, base, commit, duration_ms=1234)

    m = handoff.metrics
    assert sorted(handoff.files_changed) == ["a.py", "gone.py", "img.bin", "new dir/c.py", "node_modules/dep.js"]
    assert (m.files_created, m.files_modified) == (2, 2)
    assert (m.lines_added, m.lines_removed) == (4, 2)
    assert (m.tokens_used, m.tool_calls, m.duration_ms) == (7, 3, 1234)
    assert handoff.commit == commit and handoff.status == "complete"


async def test_no_commit_means_no_files_and_zero_figures(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.py": "1\n"})
    task = Task(id="t1", description="nothing", branch="worker/t1")
    handoff = await build_handoff(Git(remote), task, HarnessResult(status="partial", summary="no"), "HEAD", None, 5)
    assert handoff.files_changed == [] and handoff.metrics.files_created == handoff.metrics.lines_added == 0
