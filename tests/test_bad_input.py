"""Bad configuration, unusable model answers, unsafe tasks and malformed tool calls."""

from __future__ import annotations

from pathlib import Path

from longshot.events import PlannerParseError, TaskRejected, WorkerStep
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env, run_inprocess, run_log, worker_steps


def test_invalid_config_exits_2_naming_the_variable(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    fake = fake_llm(RoleScript({}))
    for name, value in [("MERGE_STRATEGY", "squash"), ("LLM_ENDPOINTS", "[{not json"), ("MAX_WORKERS", "0")]:
        done = run_cli(["do it"], run_env(tmp_path, target, fake, **{name: value}), cwd=tmp_path)
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert name in done.stderr and "Fix:" in done.stderr
    assert fake.requests == []  # nothing was started


def test_missing_repo_url_exits_2(tmp_path: Path) -> None:
    done = run_cli(["do it"], {"LLM_BASE_URL": "http://127.0.0.1:9", "LLM_MODEL": "m"}, cwd=tmp_path)
    assert done.returncode == 2 and "GIT_REPO_URL" in done.stderr


def test_unparsable_planner_answer_is_returned_and_planner_recovers(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    good = plan_json([{"id": "t1", "description": "write b.txt"}])
    fake = fake_llm(RoleScript({
        "planner": planner_then_done("Sure! Here is my plan: first we write b.txt, then", good),
        "worker": {"t1": worker_steps([("b.txt", "b\n")])},
    }))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0

    planner_calls = [r for r in fake.requests if r.role == "planner"]
    feedback = planner_calls[1].body["messages"][-1]
    assert feedback["role"] == "user" and "could not be used" in feedback["content"]
    assert "not valid JSON" in feedback["content"]
    assert any(isinstance(e, PlannerParseError) for e in run_log(tmp_path))
    assert "b.txt" in git("ls-tree", "--name-only", "main", cwd=target)


def test_unsafe_tasks_are_rejected_and_never_dispatched(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    tasks = [
        {"id": "up", "description": "escape", "scope": ["../x"]},
        {"id": "abs", "description": "read passwd", "scope": ["/etc/passwd"]},
        {"id": "main", "description": "push to main", "branch": "main"},
        {"id": "ref", "description": "push to main", "branch": "refs/heads/main"},
        {"id": "ok", "description": "write ok.txt", "scope": ["ok.txt"]},
    ]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)),
                                "worker": {"ok": worker_steps([("ok.txt", "ok\n")])}}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0

    rejected = {e.task_id: e.reason for e in run_log(tmp_path) if isinstance(e, TaskRejected)}
    assert set(rejected) == {"up", "abs", "main", "ref"}
    assert "outside the repository" in rejected["up"] and "outside the repository" in rejected["abs"]
    assert "worker/" in rejected["main"]
    assert {r.task_id for r in fake.requests if r.role == "worker"} == {"ok"}
    refs = git("for-each-ref", "--format=%(refname)", cwd=target).splitlines()
    # Only the target, the one accepted task's branch and the run state: no ref for a rejected task.
    assert [r for r in refs if not r.startswith("refs/longshot/")] == ["refs/heads/main", "refs/heads/worker/ok-write-ok-txt"]
    assert refs[-1] == "refs/longshot/state/main"
    # The planner is told why on its next turn.
    followup = [r for r in fake.requests if r.role == "planner"][1].body["messages"][-1]["content"]
    assert "task up was rejected" in followup


def test_bad_tool_calls_get_errors_and_run_nothing(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    worker = [
        Reply(tool_calls=[ToolCallSpec("rm_rf", {"path": "."})]),
        Reply(tool_calls=[ToolCallSpec("write", raw_arguments='{"path": "evil.txt", "content": "x"')]),
        Reply(tool_calls=[ToolCallSpec("bash", {"cmd": "touch ran.txt"})]),
        Reply(tool_calls=[ToolCallSpec("write", {"path": "/tmp/abs.txt", "content": "x"})]),
        Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "nothing to do"})]),
    ]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([{"id": "t1", "description": "x"}])),
                                "worker": {"t1": worker}}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0

    results = [r.body["messages"][-1]["content"] for r in fake.requests if r.role == "worker"][1:]
    assert "unknown tool 'rm_rf'" in results[0]
    assert "not valid JSON" in results[1] and "nothing was run" in results[1]
    assert "command" in results[2] and "nothing was run" in results[2]
    assert "absolute paths are not allowed" in results[3]
    assert not Path("/tmp/abs.txt").exists()
    assert git("ls-tree", "--name-only", "main", cwd=target).splitlines() == ["a.txt"]
    steps = [e for e in run_log(tmp_path) if isinstance(e, WorkerStep)]
    assert [s.ok for s in steps] == [False, False, False, False, True]


def test_missing_bubblewrap_refuses_to_start(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    fake = fake_llm(RoleScript({}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to("/usr/bin/git")
    env = run_env(tmp_path, target, fake)
    done = run_cli(["do it"], {**env, "PATH": str(bin_dir)}, cwd=tmp_path)
    assert done.returncode == 2
    assert "SANDBOX_ISOLATION" in done.stderr and "apt-get install bubblewrap" in done.stderr
    assert fake.requests == []
