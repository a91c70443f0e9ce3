"""A local, non-bare target with the branch checked out: the user's working tree and
uncommitted changes are never touched; the branch is fast-forwarded only when that is safe;
otherwise the run says how to get the result (issue 9, point 7)."""

from __future__ import annotations

from pathlib import Path

from longshot.events import ResultReady
from longshot.testing.fake_script import RoleScript
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps


def project(tmp_path: Path) -> Path:
    """A user's project: a normal clone-like repository with ``main`` checked out."""
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "app.txt").write_text("v1\n")
    git("add", "app.txt", cwd=repo)
    git("commit", "--quiet", "-m", "start", cwd=repo)
    return repo


def script() -> RoleScript:
    return RoleScript({"planner": planner_then_done(plan_json([{"id": "n", "description": "add new.txt",
                                                                "scope": ["new.txt"]}])),
                       "worker": {"n": worker_steps([("new.txt", "new\n")])}})


def test_a_dirty_checked_out_target_is_left_alone_and_the_result_is_offered(tmp_path: Path, fake_llm) -> None:
    repo = project(tmp_path)
    head = git("rev-parse", "HEAD", cwd=repo)
    (repo / "app.txt").write_text("v2, not committed\n")
    (repo / "notes.txt").write_text("untracked\n")

    code = run_inprocess(tmp_path, repo, fake_llm(script()), CHECK_COMMANDS="none")

    assert code == 0
    assert git("rev-parse", "HEAD", cwd=repo) == head and git("rev-parse", "main", cwd=repo) == head
    assert (repo / "app.txt").read_text() == "v2, not committed\n" and (repo / "notes.txt").exists()
    assert not (repo / "new.txt").exists()
    assert git("show", "refs/longshot/result/main:new.txt", cwd=repo) == "new"
    result = next(e for e in run_log(tmp_path) if isinstance(e, ResultReady))
    assert not result.moved and "uncommitted changes" in result.note
    assert result.command == f"git -C {repo} merge --ff-only refs/longshot/result/main"


def test_a_clean_checked_out_target_is_fast_forwarded(tmp_path: Path, fake_llm) -> None:
    repo = project(tmp_path)

    assert run_inprocess(tmp_path, repo, fake_llm(script()), CHECK_COMMANDS="none") == 0

    assert (repo / "new.txt").read_text() == "new\n"
    assert git("status", "--porcelain", cwd=repo) == ""
    assert "new.txt" in git("show", "--name-only", "--format=", "main", cwd=repo)
    result = next(e for e in run_log(tmp_path) if isinstance(e, ResultReady))
    assert result.moved and result.command == "" and "was fast-forwarded to the result" in result.note


def test_worker_branches_of_a_working_copy_live_under_refs_longshot_not_as_branches(tmp_path: Path, fake_llm) -> None:
    """Issue 18 item 10: nothing the user has to delete appears in ``git branch``."""
    repo = project(tmp_path)
    git("checkout", "--quiet", "-b", "elsewhere", cwd=repo)  # a working copy, target branch not checked out

    assert run_inprocess(tmp_path, repo, fake_llm(script()), CHECK_COMMANDS="none") == 0

    assert git("branch", "--format=%(refname:short)", cwd=repo).split() == ["elsewhere", "main"]
    kept = git("for-each-ref", "--format=%(refname)", "refs/longshot/branches/", cwd=repo).split()
    assert len(kept) == 1 and kept[0].startswith("refs/longshot/branches/worker/n-")
    assert "new.txt" in git("show", "--name-only", "--format=", "main", cwd=repo)
