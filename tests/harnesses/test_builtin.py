"""The builtin worker loop end to end: handoffs, reminders, loops, malformed calls,
context limits and salvage, with the fake model over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from longshot.events import HandoffReceived, TaskStatusChanged, WorkerStep
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import last_tool_result, plan_json, planner_then_done, run_inprocess, run_log, worker_steps

ONE_TASK = plan_json([{"id": "t1", "description": "do the thing"}])


def handoffs(tmp_path: Path) -> dict[str, object]:
    return {e.task_id: e.handoff for e in run_log(tmp_path) if isinstance(e, HandoffReceived)}


def worker_messages(fake, task_id: str = "t1") -> list[dict]:
    return [r.body["messages"] for r in fake.requests if r.task_id == task_id]


def test_concerns_reach_the_planner(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    worker = worker_steps([("b.txt", "b\n")], concerns=["the spec contradicts itself on rounding"])
    fake = fake_llm(RoleScript({"planner": planner_then_done(ONE_TASK), "worker": {"t1": worker}}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0
    followup = [r for r in fake.requests if r.role == "planner"][1].body["messages"][-1]["content"]
    assert "concern: the spec contradicts itself on rounding" in followup
    assert "t1 [complete] landed" in followup


def test_no_handoff_gets_a_reminder_then_partial(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    worker = [Reply(tool_calls=[ToolCallSpec("write", {"path": "b.txt", "content": "b"})]),
              Reply.text("I think I am done."), Reply.text("Really done.")]
    fake = fake_llm(RoleScript({"planner": planner_then_done(ONE_TASK), "worker": {"t1": worker}}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 1  # partial work is unlanded
    reminder = worker_messages(fake)[2][-1]
    assert reminder["role"] == "user" and "call the handoff tool" in reminder["content"]
    h = handoffs(tmp_path)["t1"]
    assert h.status == "partial" and h.summary == "Really done." and h.commit  # work kept on the branch
    assert "b.txt" in git("ls-tree", "--name-only", h.commit, cwd=target.parent / "work" / next(
        p.name for p in (target.parent / "work").iterdir() if p.name.startswith("hub-")))


def test_t11_repeating_call_is_a_loop_but_polling_is_not(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    tasks = plan_json([{"id": "loop", "description": "x"}, {"id": "poll", "description": "y"}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(tasks), "worker": {
        "loop": Reply(tool_calls=[ToolCallSpec("bash", {"command": "cat a.txt"})]),
        "poll": Reply(tool_calls=[ToolCallSpec("bash", {"command": "date +%s%N"})]),
    }}))
    run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", TASK_MAX_STEPS="8")
    h = handoffs(tmp_path)
    assert h["loop"].status == "partial" and "loop detected" in h["loop"].concerns[0]
    assert h["loop"].metrics.tool_calls == 4
    assert h["poll"].status == "partial" and "step limit" in h["poll"].concerns[0]
    assert h["poll"].metrics.tool_calls == 8


def test_t14_malformed_calls_run_nothing_and_fail_after_five(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    shapes = [
        Reply(tool_calls=[ToolCallSpec("write", raw_arguments='{"path": "x.txt", "content": "x')]),
        Reply(tool_calls=[ToolCallSpec("delete_everything", {"path": "."})]),
        Reply(tool_calls=[ToolCallSpec("write", {"path": "y.txt"})]),
        Reply(tool_calls=[ToolCallSpec("bash", raw_arguments='{"command": "touch z.txt"')], finish_reason="length"),
        Reply(tool_calls=[ToolCallSpec("read", raw_arguments="[1, 2]")]),
    ]
    fake = fake_llm(RoleScript({"planner": planner_then_done(ONE_TASK), "worker": {"t1": shapes}}))
    run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none")
    texts = [last_tool_result(m) for m in worker_messages(fake)[1:5]]  # the first attempt
    assert "not valid JSON" in texts[0] and "line 1" in texts[0]
    assert "unknown tool 'delete_everything'" in texts[1]
    assert "content" in texts[2] and "Field required" in texts[2]
    assert "cut off at the output token limit" in texts[3]
    h = handoffs(tmp_path)["t1"]
    assert h.status == "failed" and "repeated malformed tool calls" in h.summary
    assert h.commit is None  # nothing ran, nothing written
    assert all(not s.ok for s in run_log(tmp_path) if isinstance(s, WorkerStep))
    retried = [e for e in run_log(tmp_path) if isinstance(e, TaskStatusChanged) and e.after == "pending"]
    assert [e.reason for e in retried] == ["attempt 2 of 2 after it failed"]  # once, then the planner decides
    assert len(worker_messages(fake)) == 10


def test_t15_big_file_is_capped_and_overflow_compacts_boundedly(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"big.txt": ("x" * 99 + "\n") * 50_000})  # 5 MB
    def overflow_once(turn: Turn) -> Reply:
        if turn.turn == 0:
            return Reply(tool_calls=[ToolCallSpec("read", {"path": "big.txt", "limit": 100000})])
        if turn.turn < 6:
            return Reply(tool_calls=[ToolCallSpec("bash", {"command": f"echo step {turn.turn}"})])
        summarised = any("[Earlier steps" in str(m.get("content")) for m in turn.messages)
        if not summarised:
            return Reply(context_overflow=True)
        return Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "ok"})])
    always = Reply(context_overflow=True)
    tasks = plan_json([{"id": "t1", "description": "x"}, {"id": "t2", "description": "y"}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(tasks), "worker": {"t1": overflow_once, "t2": always}}))
    run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none")
    read_result = last_tool_result(worker_messages(fake)[1])
    assert len(read_result) < 25_000 and "characters omitted" in read_result
    h = handoffs(tmp_path)
    assert h["t1"].status == "complete"
    after = [m for m in worker_messages(fake) if any("[Earlier steps" in str(x.get("content")) for x in m)]
    assert after and len(json.dumps(after[0])) < len(json.dumps(worker_messages(fake)[6]))
    assert h["t2"].status == "partial" and "context overflow" in h["t2"].concerns[0]
    assert fake.count(role="worker", task_id="t2") == 1  # nothing to compact in a fresh conversation


def test_salvage_then_continuation_lands(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    first = [Reply(tool_calls=[ToolCallSpec("write", {"path": "part1.txt", "content": "one\n"})]),
             Reply(tool_calls=[ToolCallSpec("bash", {"command": "true"})], delay=30)]
    second = [Reply(tool_calls=[ToolCallSpec("read", {"path": "part1.txt"})]),
              *worker_steps([("part2.txt", "two\n")])]
    cont = plan_json([{"id": "t2", "description": "finish t1", "continue_from": "t1"}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(ONE_TASK, cont), "worker": {"t1": first, "t2": second}}))

    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", WORKER_TIMEOUT="2")

    assert code == 0
    h = handoffs(tmp_path)
    assert h["t1"].status == "partial" and h["t1"].commit and "timed out" in h["t1"].summary
    assert "one" in last_tool_result(worker_messages(fake, "t2")[1])  # started from the salvaged work
    files = git("ls-tree", "--name-only", "main", cwd=target).split()
    assert {"part1.txt", "part2.txt"} <= set(files)
    body = git("log", "-1", "--format=%B", "main", cwd=target)
    assert "Longshot-Task: t2" in body and "Longshot-Continues: t1" in body
    moves = [(e.task_id, e.after) for e in run_log(tmp_path) if isinstance(e, TaskStatusChanged)]
    assert ("t1", "superseded") in moves
