"""Planning end to end: sprints, scratchpad memory, compaction, read-only exploration and
subplanners, with the fake model over real HTTP and real git."""

from __future__ import annotations

import json
from pathlib import Path

from longshot.events import HandoffReceived, PlannerAnswered, TaskCreated, TaskStatusChanged
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps


def user_messages(request) -> list[str]:
    return [m["content"] for m in request.body["messages"] if m["role"] == "user"]


def test_three_sprints_carry_concerns_into_followups_and_scratchpad(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"SPEC.md": "# spec\nthree layers\n"})

    def planner(turn: Turn) -> Reply:
        last = turn.messages[-1]["content"]
        if turn.turn == 0:
            return Reply(content=plan_json([{"id": "base", "description": "write base.txt", "scope": ["base.txt"]}],
                                           "sprint 1: base"))
        if turn.turn == 1:
            assert "concern: base.txt uses CRLF" in last
            return Reply(content=plan_json([{"id": "mid", "description": "write mid.txt on top of base",
                                             "scope": ["mid.txt"]}], "sprint 2; open concern: base.txt uses CRLF"))
        if turn.turn == 2:
            return Reply(content=plan_json([{"id": "top", "description": "write top.txt", "scope": ["top.txt"],
                                             "depends_on": ["mid"]}], "sprint 3; CRLF concern dismissed"))
        return Reply(content=plan_json([], "done"))

    workers = {"base": worker_steps([("base.txt", "b\n")], concerns=["base.txt uses CRLF"]),
               "mid": worker_steps([("mid.txt", "m\n")]), "top": worker_steps([("top.txt", "t\n")])}
    fake = fake_llm(RoleScript({"planner": planner, "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0
    assert fake.errors == []
    answers = [e for e in run_log(tmp_path) if isinstance(e, PlannerAnswered)]
    assert [a.tasks for a in answers] == [1, 1, 1, 0]
    assert "open concern: base.txt uses CRLF" in answers[1].scratchpad
    assert set(git("ls-tree", "--name-only", "main", cwd=target).split()) >= {"base.txt", "mid.txt", "top.txt"}
    first = [r for r in fake.requests if r.role == "planner"][0]
    assert "three layers" in user_messages(first)[0]  # SPEC.md is in the first message
    assert any(t["function"]["name"] == "git" for t in first.body["tools"])  # exploration tools offered


def test_compaction_keeps_the_last_scratchpad(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    scratch = "GOAL: ship a.txt and b.txt; CONCERN: keep the trailing newline"
    fake = fake_llm(RoleScript({
        "planner": planner_then_done(plan_json([{"id": "t1", "description": "write b.txt"}], scratch)),
        "worker": {"t1": worker_steps([("b.txt", "b\n")])},
    }))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", LLM_CONTEXT_WINDOW="1500") == 0
    second = [r for r in fake.requests if r.role == "planner"][1]
    texts = user_messages(second)
    assert any("compacted" in t and scratch in t for t in texts)
    assert not any("# Request" in t for t in texts)  # the first message was dropped


def test_planner_explores_with_read_only_tools_and_attacks_are_refused(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"src/app.py": "def main():\n    return 42\n", "README.md": "hello\n"})
    attacks = ["log; rm -rf .", "-c core.pager=sh log", "--output=/tmp/x log", "config --global user.name x",
               "log --output=/tmp/longshot-pwned -1", "grep -O main", "branch evil", "push origin main"]
    calls = [ToolCallSpec("read", {"path": "src/app.py"}), ToolCallSpec("grep", {"pattern": "return 4"}),
             ToolCallSpec("find", {"pattern": "*.py"}), ToolCallSpec("ls", {}),
             ToolCallSpec("git", {"args": "log --oneline -n 5"}),
             *[ToolCallSpec("git", {"args": a}) for a in attacks], ToolCallSpec("read", {"path": "../../etc/passwd"})]

    def planner(turn: Turn) -> Reply:
        if turn.turn == 0:
            return Reply(tool_calls=calls)
        if turn.turn == 1:
            return Reply(content=plan_json([]))
        return Reply(content=plan_json([]))

    fake = fake_llm(RoleScript({"planner": planner}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0
    msgs = [r for r in fake.requests if r.role == "planner"][1].body["messages"]
    results = [m["content"] for m in msgs if m["role"] == "tool"]
    assert "return 42" in results[0] and "src/app.py:2:" in results[1]
    assert results[2].strip() == "src/app.py" and "src/" in results[3] and "initial commit" in results[4]
    for attack, text in zip(attacks, results[5:5 + len(attacks)]):
        assert text.startswith("error:"), (attack, text)
    assert results[-1].startswith("error:") and "inside the repository" in results[-1]
    assert not Path("/tmp/x").exists() and not Path("/tmp/longshot-pwned").exists()
    hub = next((tmp_path / "work").glob("hub-*"))
    refs = [r for r in git("for-each-ref", "--format=%(refname)", cwd=hub).split() if not r.startswith("refs/longshot/")]
    assert refs == ["refs/heads/main", "refs/remotes/origin/main"]  # exploring created no ref


def subplanner_script(children: list[dict[str, object]]):
    def play(turn: Turn) -> Reply:
        if turn.task_id == "atomic":
            return Reply(content=plan_json([], "small enough"))
        if turn.turn == 0:
            return Reply(content=plan_json(children, "three parts"))
        return Reply(content=plan_json([], "parent done"))
    return play


def test_broad_task_is_split_into_subtasks_that_land_and_atomic_goes_to_a_worker(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    wide = [f"pkg/m{i}.py" for i in range(7)]
    tasks = [{"id": "wide", "description": "build the seven modules", "scope": wide},
             {"id": "atomic", "description": "write six docs", "scope": [f"docs/d{i}.md" for i in range(6)]}]
    children = [{"id": "a", "description": "m0-m2", "scope": wide[0:3]},
                {"id": "b", "description": "m3-m4", "scope": wide[3:5]},
                {"id": "c", "description": "m5-m6", "scope": wide[5:7], "depends_on": ["a"]},
                {"id": "evil", "description": "escape", "scope": ["other/x.py"]}]

    def worker(turn: Turn) -> Reply:
        scope = {"wide-sub-1": wide[0:3], "wide-sub-2": wide[3:5], "wide-sub-3": wide[5:7],
                 "atomic": [f"docs/d{i}.md" for i in range(6)]}[turn.task_id]
        writes = [(p, f"# {p}\n") for p in scope]
        return worker_steps(writes, delay=0.2)[min(turn.turn, len(writes))]

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)),
                                "subplanner": subplanner_script(children), "worker": worker}),)
    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2")

    assert code == 0
    assert fake.errors == []
    events = run_log(tmp_path)
    created = {e.task_id for e in events if isinstance(e, TaskCreated)}
    assert {"wide-sub-1", "wide-sub-2", "wide-sub-3"} <= created and not any("sub-4" in c for c in created)
    statuses = {(e.task_id, e.after) for e in events if isinstance(e, TaskStatusChanged)}
    assert ("wide", "decomposed") in statuses and ("wide", "completed") in statuses
    assert ("atomic", "landed") in statuses
    trailers = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=)", "main", cwd=target).split()
    assert sorted(trailers) == ["atomic", "wide-sub-1", "wide-sub-2", "wide-sub-3"]  # no phantom parent commit
    parent = next(e.handoff for e in events if isinstance(e, HandoffReceived) and e.task_id == "wide")
    assert parent.status == "complete" and sorted(parent.files_changed) == sorted(wide)
    # Subplanner conversations and workers all share MAX_WORKERS.
    intervals = sorted((r.started, r.ended) for r in fake.requests if r.role in ("worker", "subplanner"))
    peak = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    assert peak <= 2
    # The root planner heard about the parent, not about each subtask.
    followups = "\n".join(json.dumps(r.body["messages"][-1]) for r in fake.requests if r.role == "planner")
    assert "wide [complete]" in followups and "wide-sub-1 [" not in followups


def test_a_planner_that_said_nothing_more_still_hears_of_later_handoffs(tmp_path: Path, fake_llm, remote) -> None:
    """``"tasks": []`` means nothing more to plan *now*: a failure reported afterwards is shown to
    the planner, which can still react to it."""
    target = remote({"a.txt": "a\n"})
    quick = [{"id": f"q{i}", "description": f"write q{i}.txt", "scope": [f"q{i}.txt"]} for i in range(3)]
    first = quick + [{"id": "slow", "description": "write s.txt", "scope": ["s.txt"]}]
    redo = [{"id": "slow-again", "description": "write s.txt another way", "scope": ["s.txt"]}]

    def planner(turn: Turn) -> Reply:
        if turn.turn == 0:
            return Reply(content=plan_json(first))
        if "slow" in turn.messages[-1]["content"] and "failed" in turn.messages[-1]["content"] and turn.turn == 2:
            return Reply(content=plan_json(redo))
        return Reply(content=plan_json([], "nothing more now"))

    workers = {t["id"]: worker_steps([(f"{t['id']}.txt", "q\n")]) for t in quick}
    workers["slow"] = worker_steps([], status="failed", summary="the approach does not work", delay=1.0)
    workers["slow-again"] = worker_steps([("s.txt", "s\n")])
    fake = fake_llm(RoleScript({"planner": planner, "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none") == 0

    answers = [e.tasks for e in run_log(tmp_path) if isinstance(e, PlannerAnswered)]
    assert answers[:3] == [4, 0, 1]  # it said "nothing more" while slow ran, then heard slow failed
    assert "s.txt" in git("ls-tree", "--name-only", "main", cwd=target)
