"""``--reset`` shows what it would delete and asks; backs everything up; rewinds the target
branch only with ``--yes``, by compare-and-swap; and ``status`` reads a run from git (issue 9)."""

from __future__ import annotations

from pathlib import Path

from longshot.testing.fake_script import RoleScript
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env, worker_steps
from invariants import keep_reflog, moved_forward_only

TASKS = [{"id": "a", "description": "write a.txt", "scope": ["a.txt"]},
         {"id": "b", "description": "write b.txt", "scope": ["b.txt"]}]


def refs(repo: Path) -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo)
    return dict(line.split() for line in out.splitlines())


def test_reset_asks_backs_up_and_rewinds_the_target_only_with_yes(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    keep_reflog(target)
    start = git("rev-parse", "main", cwd=target)
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(TASKS)), "worker": {
        "a": worker_steps([("a.txt", "a\n")]), "b": worker_steps([("b.txt", "b\n")])}}))
    env = run_env(tmp_path, target, fake, CHECK_COMMANDS="none")
    assert run_cli(["build it"], env, cwd=tmp_path).returncode == 0
    before = refs(target)
    tip = before["refs/heads/main"]
    branches = {r: sha for r, sha in before.items() if r.startswith("refs/heads/worker/")}
    assert len(branches) == 2 and "refs/longshot/state/main" in before

    asked = run_cli(["--reset"], env, cwd=tmp_path)  # no terminal to ask on, no --yes: nothing happens

    assert asked.returncode == 2
    plan = asked.stdout
    assert "delete the recorded run state" in plan and "rewind main" in plan and "(only with --yes)" in plan
    assert all(r.removeprefix("refs/heads/") in plan for r in branches)
    assert "nothing was changed" in plan and refs(target) == before

    done = run_cli(["--reset", "--yes"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout[-2000:]
    after = refs(target)
    assert after["refs/heads/main"] == start  # rewound to where the run started
    assert not any(r.startswith(("refs/heads/worker/", "refs/longshot/state/")) for r in after)
    backup = {r.split("/", 4)[4]: sha for r, sha in after.items() if r.startswith("refs/longshot/backup/")}
    assert backup["heads/main"] == tip and backup["state/main"] == before["refs/longshot/state/main"]
    assert {f"heads/{r.removeprefix('refs/heads/')}": sha for r, sha in branches.items()}.items() <= backup.items()
    assert len(moved_forward_only(target)) == 1  # the rewind, and nothing else, went backwards

    again = run_cli(["--reset", "--yes", "build it"], env, cwd=tmp_path)  # start over, then run
    assert again.returncode == 0, again.stdout[-2000:]
    assert {"a.txt", "b.txt"} <= set(git("ls-tree", "--name-only", "main", cwd=target).split())


def task_lines(text: str) -> dict[str, str]:
    """The task table's line of tasks a and b (the feature table after it names them too)."""
    lines: dict[str, str] = {}
    for line in text.splitlines():
        if line.split()[:1] in (["a"], ["b"]):
            lines.setdefault(line.split()[0], line)
    return lines


def test_status_lists_every_task_with_its_outcome_from_git(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(TASKS)), "worker": {
        "a": worker_steps([("a.txt", "a\n")]), "b": worker_steps([], status="failed", summary="cannot")}}))
    env = run_env(tmp_path, target, fake, CHECK_COMMANDS="none")
    assert run_cli(["status"], env, cwd=tmp_path).returncode == 1  # nothing recorded yet
    assert run_cli(["build it"], {**env, "LONGSHOT_CRASH_AT": "merge.landed:1"}, cwd=tmp_path).returncode == -9

    only_git = {k: v for k, v in env.items() if k.startswith("GIT_")}  # status needs no model settings
    unfinished = run_cli(["status"], only_git, cwd=tmp_path)

    assert unfinished.returncode == 0 and "unfinished" in unfinished.stdout
    lines = task_lines(unfinished.stdout)
    assert "landed" in lines["a"]  # its trailer is on main, whatever the record said at the crash
    assert run_cli(["--resume"], env, cwd=tmp_path).returncode == 0  # b failed twice: an outcome, not unlanded

    finished = run_cli(["status"], env, cwd=tmp_path).stdout
    lines = task_lines(finished)
    assert "finished (exit 0)" in finished
    attempts = int(lines["b"].split()[2])
    assert "landed" in lines["a"] and "failed" in lines["b"] and attempts >= 2  # retried before it was given up
