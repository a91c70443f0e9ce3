"""Optimistic concurrency through the real pipeline: overlapping scopes at once, predicted
conflicts told to the worker that lands later (and resolved with merge_tip before it hands
off), line-set files merged as a union, no empty landings, failures that wait for a retry.

The fake model over real HTTP, real git, real bubblewrap sandboxes; CHECK_COMMANDS=none
unless a check is the point.
"""

from __future__ import annotations

import json
from pathlib import Path

from longshot.events import (
    ConflictOutcome, ConflictPredicted, Event, FileHot, HandoffReceived, MergeFailed, MergeLanded, TaskCreated,
    TaskStatusChanged, TipMerged, WorkerWarned,
)
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps

MODULE = 'def f():\n    raise NotImplementedError("f")\n\n\ndef g():\n    raise NotImplementedError("g")\n'


def call(name: str, delay: float = 0.0, **arguments: object) -> Reply:
    return Reply(tool_calls=[ToolCallSpec(name, arguments)], delay=delay)


def handoff(summary: str = "done", status: str = "complete") -> Reply:
    return call("handoff", status=status, summary=summary)


def final_status(events: list[Event]) -> dict[str, str]:
    return {e.task_id: e.after for e in events if isinstance(e, TaskStatusChanged) and e.task_id}


def test_overlapping_scopes_run_at_once_and_both_land(tmp_path: Path, fake_llm, remote) -> None:
    """Two tasks naming the same module run at the same time (the default, SCOPE_OVERLAP=allow);
    each fills in a different function, and the three-way merge lands both edits."""
    target = remote({"mod.py": MODULE})
    tasks = [{"id": name, "description": f"implement {name}()", "scope": ["mod.py"]} for name in ("f", "g")]
    workers = {name: [call("edit", 0.4, path="mod.py", old_text=f'raise NotImplementedError("{name}")',
                           new_text=f"return '{name}'"), handoff()] for name in ("f", "g")}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="4") == 0

    assert fake.peak_in_flight("worker") == 2  # both workers were asking the model at once
    events = run_log(tmp_path)
    assert sorted(e.task_id for e in events if isinstance(e, MergeLanded)) == ["f", "g"]
    assert not [e for e in events if isinstance(e, MergeFailed)]
    text = git("show", "main:mod.py", cwd=target)
    assert "return 'f'" in text and "return 'g'" in text


def test_with_scope_overlap_hold_the_same_tasks_run_one_after_the_other(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"mod.py": MODULE})
    tasks = [{"id": name, "description": f"implement {name}()", "scope": ["mod.py"]} for name in ("f", "g")]
    workers = {name: [call("edit", 0.2, path="mod.py", old_text=f'raise NotImplementedError("{name}")',
                           new_text=f"return '{name}'"), handoff()] for name in ("f", "g")}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))
    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="4", SCOPE_OVERLAP="hold") == 0
    assert fake.peak_in_flight("worker") == 1


def conflicting_worker(mine: str, resolved: str, polls: int = 40):
    """A worker that rewrites conf.txt, then keeps working (harmless commands) until it is told
    of a predicted conflict; then it merges the tip, reads the markers, resolves them and hands off."""

    def play(turn: Turn) -> Reply:
        said = [str(m.get("content")) for m in turn.messages if m.get("role") in ("user", "tool")]
        warned = any("CONFLICT PREDICTED" in s for s in said)
        merged = any(s.startswith("Merged the target branch") for s in said)
        if turn.turn == 0:
            return call("write", path="conf.txt", content=mine)
        if merged:
            if "<<<<<<<" not in said[-1] and not any(s.startswith("wrote") and "conf.txt" in s for s in said[-2:]):
                if said[-1].startswith("Merged"):
                    return call("read", path="conf.txt")
                return call("write", path="conf.txt", content=resolved)
            if "<<<<<<<" in said[-1]:
                return call("write", path="conf.txt", content=resolved)
            return handoff("resolved the conflict with the target branch")
        if warned:
            return call("merge_tip")
        if turn.turn > polls:
            return handoff("never warned")
        return call("bash", 0.15, command=f"echo still working {turn.turn}")

    return play


def test_a_predicted_conflict_reaches_the_later_worker_which_resolves_it_before_handoff(
        tmp_path: Path, fake_llm, remote) -> None:
    """`first` changes line 2 of conf.txt and lands at once; `second` changed the same line
    and is still working: it is told (file, lines, what the target now holds) in its
    conversation, calls merge_tip, resolves the markers, and lands without a conflict fix."""
    target = remote({"conf.txt": "header\nvalue = 0\nfooter\n"})
    tasks = [{"id": "first", "description": "set value to 1", "scope": ["conf.txt"]},
             {"id": "second", "description": "set value to 2", "scope": ["conf.txt"]}]
    workers = {"first": [call("write", 0.3, path="conf.txt", content="header\nvalue = 1\nfooter\n"), handoff()],
               "second": conflicting_worker("header\nvalue = 2\nfooter\n", "header\nvalue = 1 + 2\nfooter\n")}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="4") == 0

    events = run_log(tmp_path)
    predicted = [e for e in events if isinstance(e, ConflictPredicted)]
    assert predicted and predicted[0].task_id == "second" and predicted[0].files == ["conf.txt"]
    assert predicted[0].against == "main" and predicted[0].lines["conf.txt"].startswith("1-") is False
    assert [e.task_id for e in events if isinstance(e, WorkerWarned) and e.delivered] == ["second"]
    merged = [e for e in events if isinstance(e, TipMerged)]
    assert [(e.task_id, e.conflicts) for e in merged] == [("second", ["conf.txt"])]
    assert [(e.task_id, e.avoided) for e in events if isinstance(e, ConflictOutcome)] == [("second", True)]
    # The warning reached the second worker's conversation: file, lines and the tip's side.
    asked = [r.body["messages"] for r in fake.requests if r.role == "worker" and r.task_id == "second"]
    warning = next(m["content"] for msgs in asked for m in msgs
                   if m["role"] == "user" and "CONFLICT PREDICTED" in str(m["content"]))
    assert "conf.txt" in warning and "lines " in warning and "value = 1" in warning and "merge_tip" in warning
    # The markers reached it through merge_tip, and it resolved them before handing off.
    assert any("<<<<<<<" in str(m["content"]) for msgs in asked for m in msgs if m["role"] == "tool")
    assert not [e for e in events if isinstance(e, (MergeFailed,))]
    assert not [e for e in events if isinstance(e, TaskCreated) and e.kind == "conflict-fix"]
    assert git("show", "main:conf.txt", cwd=target) == "header\nvalue = 1 + 2\nfooter"
    second = next(e.handoff for e in events if isinstance(e, HandoffReceived) and e.task_id == "second")
    assert second.files_changed == ["conf.txt"] and second.metrics.lines_added == 1  # only its own change


def test_line_set_files_land_as_a_union(tmp_path: Path, fake_llm, remote) -> None:
    """Every task appends one line to INDEX.txt (UNION_MERGE_FILES): no conflict, no conflict
    fix, no warning; every line is there."""
    target = remote({"INDEX.txt": "start\n"})
    names = ["a", "b", "c"]
    tasks = [{"id": n, "description": f"register {n}", "scope": ["INDEX.txt", f"{n}.py"]} for n in names]
    workers = {n: worker_steps([(f"{n}.py", f"NAME = '{n}'\n"), ("INDEX.txt", f"start\n{n}\n")], delay=0.3)
               for n in names}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="3",
                         UNION_MERGE_FILES="docs/*.md,INDEX.txt") == 0

    events = run_log(tmp_path)
    assert sorted(e.task_id for e in events if isinstance(e, MergeLanded)) == names
    assert not [e for e in events if isinstance(e, (MergeFailed, ConflictPredicted))]
    assert sorted(git("show", "main:INDEX.txt", cwd=target).splitlines()) == ["a", "b", "c", "start"]


def test_work_that_is_already_on_the_target_is_not_landed_again(tmp_path: Path, fake_llm, remote) -> None:
    """Two tasks make the same change: the second is recorded as superseded, not landed as a
    commit that changes nothing; the run ends green."""
    target = remote({"mod.py": MODULE})
    tasks = [{"id": n, "description": "implement f()", "scope": ["mod.py"]} for n in ("one", "two")]
    edit = call("edit", path="mod.py", old_text='raise NotImplementedError("f")', new_text="return 'f'")
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)),
                                "worker": {"one": [edit, handoff()], "two": [call("read", 0.6, path="mod.py"), edit,
                                                                             handoff()]}}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2") == 0

    events = run_log(tmp_path)
    assert [e.task_id for e in events if isinstance(e, MergeLanded)] == ["one"]
    assert final_status(events) == {"one": "landed", "two": "superseded"}
    log = git("log", "--format=%s", "main", cwd=target).splitlines()
    assert log == ["implement f()", "initial commit"]


def test_a_failed_tasks_dependents_wait_for_its_replanned_successor_and_land(tmp_path: Path, fake_llm, remote) -> None:
    """`base` fails (twice: its automatic retry too); `user` depends on it and waits instead of
    failing at once. The planner re-plans the work as `base2` ("replaces": "base"); when it lands,
    `base` is superseded and `user` runs and lands."""
    target = remote({"README.md": "x\n"})
    plan = plan_json([{"id": "base", "description": "write base.py", "scope": ["base.py"]},
                      {"id": "user", "description": "write user.py", "scope": ["user.py"], "depends_on": ["base"]}])

    def planner(turn: Turn) -> Reply:
        if turn.turn == 0:
            return Reply(content=plan)
        last = str(turn.messages[-1].get("content"))
        if "base [failed]" in last and "base2" not in json.dumps(turn.messages[:-1]):
            return Reply(content=plan_json([{"id": "base2", "description": "write base.py, simpler",
                                             "scope": ["base.py"], "replaces": "base"}]))
        return Reply(content=plan_json([]))

    workers = {"base": [handoff("cannot", status="failed")],
               "base2": worker_steps([("base.py", "BASE = 1\n")]),
               "user": worker_steps([("user.py", "from base import BASE\n")])}
    fake = fake_llm(RoleScript({"planner": planner, "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2") == 0

    events = run_log(tmp_path)
    assert final_status(events) == {"base": "superseded", "base2": "landed", "user": "landed"}
    assert [e.task_id for e in events if isinstance(e, MergeLanded)] == ["base2", "user"]
    assert not [e for e in events if isinstance(e, TaskStatusChanged) and e.task_id == "user" and e.after == "failed"]


def test_dependents_of_failed_work_the_planner_gives_up_fail_at_the_end(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    plan = plan_json([{"id": "base", "description": "write base.py", "scope": ["base.py"]},
                      {"id": "user", "description": "write user.py", "scope": ["user.py"], "depends_on": ["base"]}])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan),
                                "worker": {"base": [handoff("cannot", status="failed")]}}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2") == 0

    status = final_status(run_log(tmp_path))
    assert status == {"base": "failed", "user": "failed"}
    followups = [str(r.body["messages"][-1]["content"]) for r in fake.requests if r.role == "planner"][1:]
    assert any("base [failed]" in f for f in followups)  # the planner saw it and said nothing more


def test_a_file_that_conflicts_at_landing_becomes_hot_and_the_planner_hears_of_it(
        tmp_path: Path, fake_llm, remote) -> None:
    """Both tasks rewrite the same line and hand off at once (no time for a warning): the
    second conflicts at landing; with HOT_FILE_CONFLICTS=1 the file becomes hot, an event says
    so and the planner's next prompt names it; the conflict fix lands."""
    target = remote({"conf.txt": "value = 0\n"})
    tasks = [{"id": n, "description": f"set value to {v}", "scope": ["conf.txt"]} for n, v in (("one", 1), ("two", 2))]
    workers = {"one": worker_steps([("conf.txt", "value = 1\n")]),
               "two": worker_steps([("conf.txt", "value = 2\n")], delay=0.2),
               "two-conflict-fix": worker_steps([("conf.txt", "value = 1 + 2\n")])}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="2", HOT_FILE_CONFLICTS="1",
                         CONFLICT_CHECK_INTERVAL="0") == 0

    events = run_log(tmp_path)
    assert [(e.path, e.conflicts) for e in events if isinstance(e, FileHot)] == [("conf.txt", 1)]
    followups = [str(r.body["messages"][-1]["content"]) for r in fake.requests if r.role == "planner"][1:]
    assert any("HOT FILE conf.txt" in f for f in followups)
    assert git("show", "main:conf.txt", cwd=target) == "value = 1 + 2"
