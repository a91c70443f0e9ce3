"""The monitor: metrics every HEALTH_CHECK_INTERVAL, and stuck workers ended and salvaged
while a long command that keeps printing is left alone (issue 9)."""

from __future__ import annotations

from pathlib import Path

from longshot.events import HandoffReceived, Metrics, RunFinished, WorkerOutput, WorkerStuck
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log

TASKS = [{"id": "silent", "description": "hangs in a command that prints nothing", "scope": ["a.txt"]},
         {"id": "chatty", "description": "runs a long command that keeps printing", "scope": ["b.txt"]}]
CHATTY = "for i in $(seq 12); do echo tick $i; sleep 0.5; done"


def worker(turn: Turn) -> Reply:
    if turn.task_id == "silent":
        steps = [Reply(tool_calls=[ToolCallSpec("write", {"path": "a.txt", "content": "started\n"})]),
                 Reply(tool_calls=[ToolCallSpec("bash", {"command": "sleep 60", "timeout": 120})])]
    else:
        steps = [Reply(tool_calls=[ToolCallSpec("write", {"path": "b.txt", "content": "done\n"})]),
                 Reply(tool_calls=[ToolCallSpec("bash", {"command": CHATTY, "timeout": 120})]),
                 Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "done"})])]
    return steps[min(turn.turn, len(steps) - 1)]


def test_a_silent_worker_is_ended_and_salvaged_a_chatty_one_is_not(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(TASKS)), "worker": worker}))

    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", WORKER_STUCK_AFTER="2.5",
                         HEALTH_CHECK_INTERVAL="0.3", MAX_WORKERS="4")

    events = run_log(tmp_path)
    stuck = [e for e in events if isinstance(e, WorkerStuck)]
    assert [e.task_id for e in stuck] == ["silent"] and stuck[0].silent_s >= 2.5
    handoffs = {e.task_id: e.handoff for e in events if isinstance(e, HandoffReceived)}
    assert handoffs["silent"].status == "partial" and "stuck: no progress" in handoffs["silent"].summary
    assert handoffs["chatty"].status == "complete"  # 6 s of command, never silent for 2.5 s
    assert any(isinstance(e, WorkerOutput) and e.task_id == "chatty" for e in events)
    branch = git("for-each-ref", "--format=%(refname:short)", "refs/heads/worker/silent-*", cwd=target)
    assert git("show", f"{branch}:a.txt", cwd=target) == "started"  # its work was salvaged and published
    assert "b.txt" in git("ls-tree", "--name-only", "main", cwd=target)
    assert code == 1 and isinstance(events[-1], RunFinished) and events[-1].unlanded == ["silent"]


def test_metrics_come_every_interval_with_the_run_s_figures(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    tasks = [{"id": f"m{i}", "description": f"write m{i}", "scope": [f"m{i}.txt"]} for i in range(3)]

    def slow_worker(turn: Turn) -> Reply:
        task = turn.task_id or ""
        steps = [Reply(tool_calls=[ToolCallSpec("write", {"path": f"{task}.txt", "content": "m\n"})], delay=0.4),
                 Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "done"})], delay=0.4)]
        return steps[min(turn.turn, 1)]

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": slow_worker}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", HEALTH_CHECK_INTERVAL="0.2",
                         MAX_WORKERS="2") == 0

    metrics = [e for e in run_log(tmp_path) if isinstance(e, Metrics)]
    assert len(metrics) >= 3
    assert all(m.workers_total == 2 and 0 <= m.workers_active <= 2 for m in metrics)
    assert max(m.workers_active for m in metrics) == 2
    landed = [m.landed for m in metrics]
    assert landed == sorted(landed) and landed[-1] <= 3 and landed[0] < 3
    assert all(m.pending + m.done + m.failed + m.workers_active <= 3 for m in metrics)
    assert metrics[-1].tokens > 0 and metrics[-1].merge_success_rate == 1.0
