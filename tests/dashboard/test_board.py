"""The dashboard's reducer over the recorded event log of `longshot demo` (data/demo.ndjson).

Points in the run are chosen by event, not by position, so a re-recorded log (see
``record_demo_log.py``) keeps the tests meaningful. Expected counts are read from the log
independently where they can be, and named from the demo's plan where they cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from longshot.dashboard.sources import parse_lines
from longshot.dashboard.board import Board
from longshot.types import Handoff
from longshot.events import (
    Event, HandoffReceived, LLMUsage, MergeFailed, MergeLanded, Metrics, PlannerAnswered, PlannerRequested, RunFinished, RunStarted,
    TaskCreated, TaskStatusChanged, WorkerOutput, WorkerStep, WorkerStuck, read_events,
)

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"
EVENTS = list(read_events(LOG))
SPRINT_1 = {"slug", "counts", "case", "wrap", "truncate", "stats"}


def until(pred: Callable[[Event], bool], nth: int = 1) -> tuple[Board, list[Event]]:
    """The state after the ``nth`` event matching ``pred`` (inclusive), and the events so far."""
    state, seen, hits = Board(), [], 0
    for event in EVENTS:
        state.apply(event)
        seen.append(event)
        hits += pred(event)
        if hits == nth:
            return state, seen
    raise AssertionError("the recorded log has no such point")


def test_the_first_sprint_is_planned_and_nothing_runs_yet() -> None:
    state, _ = until(lambda e: isinstance(e, TaskCreated), nth=6)

    f = state.figures()
    assert set(state.tasks) == SPRINT_1
    assert (f.total, f.pending, f.workers_active, f.workers_total, f.landed) == (6, 6, 0, 4, 0)
    assert state.planner_since is None and state.planner_iteration == 1 and f.source == "events"


def test_the_planning_indicator_is_lit_exactly_while_the_planner_thinks() -> None:
    state, lit = Board(), 0
    for event in EVENTS:
        state.apply(event)
        if isinstance(event, PlannerRequested):
            assert state.planner_since == event.ts
            lit += 1
        elif isinstance(event, (PlannerAnswered, RunFinished)):
            assert state.planner_since is None
    assert lit == sum(isinstance(e, PlannerRequested) for e in EVENTS) >= 2


def test_workers_are_counted_from_status_changes_and_never_exceed_the_pool() -> None:
    state, running = Board(), set()
    for event in EVENTS:
        state.apply(event)
        if isinstance(event, TaskStatusChanged):
            running.discard(event.task_id)
            if event.after == "running":
                running.add(event.task_id)
        assert state.workers_active == len(running) <= 4
    assert max(n for _, n in state.active_series) == 4  # four workers were busy at once


def test_the_conflict_is_counted_and_becomes_a_conflict_fix_task() -> None:
    state, seen = until(lambda e: isinstance(e, TaskCreated) and e.kind == "conflict-fix")

    failed = next(e for e in seen if isinstance(e, MergeFailed))
    assert failed.task_id in {"truncate", "stats"} and failed.conflicts == ["wordkit/_words.py"]
    assert (state.conflicts, state.merge_failed) == (1, 1)
    assert state.merge_landed == sum(isinstance(e, MergeLanded) for e in seen)
    assert state.tasks[failed.task_id].status == "failed"
    fix = state.tasks[f"{failed.task_id}-conflict-fix"]
    assert (fix.kind, fix.status) == ("conflict-fix", "pending")
    assert state.figures().failed == 1
    alerts = [i for i in state.feed if i.level != "info"]
    assert {i.task_id for i in alerts} == {failed.task_id, fix.id}  # the merge failure and the fix, once each


def test_the_end_of_the_run() -> None:
    state, seen = until(lambda e: isinstance(e, RunFinished))
    finished = seen[-1]

    f = state.figures()
    landed = {e.task_id for e in seen if isinstance(e, MergeLanded)}
    assert f.landed == len(landed) == 9 and f.total == 10 and f.failed == 0 and f.pending == 0
    assert f.done == 10  # nine landed and the task its conflict fix carried on (superseded)
    assert dict(+state.statuses) == {"landed": 9, "superseded": 1}
    assert {"api", "cli", "fix-001"} <= landed and state.tasks["fix-001"].kind == "fix"
    assert state.tokens == sum(e.prompt_tokens + e.completion_tokens for e in seen if isinstance(e, LLMUsage))
    assert state.tokens == finished.tokens and state.finished is finished
    assert state.elapsed() == finished.duration_s
    assert [c.ok for c in state.checks] == [True]
    assert state.sweep is not None and state.sweep.green
    assert state.tasks["api"].children == [] and all(t.parent is None for t in state.tasks.values())
    assert state.ignored == 0


def test_unknown_event_types_are_ignored_not_fatal() -> None:
    state = Board()
    state.apply(Event(type="from.the.future", ts=5.0, task_id="slug"))
    lines = ['{"type": "from.the.future", "ts": 1, "run_id": "r", "task_id": null, "new_field": 1}',
             EVENTS[0].model_dump_json(), "not json at all", '{"type": "warning", "mess']
    for event in parse_lines(iter(lines)):
        state.apply(event)

    assert state.ignored == 1 and state.events == 2 and state.run_id == EVENTS[0].run_id
    assert state.tasks == {} and state.now == EVENTS[0].ts


def test_monitor_figures_are_used_while_they_are_the_freshest_source() -> None:
    state = Board()
    for event in [RunStarted(ts=0, request="r", repo="x", target_branch="main", max_workers=8),
                  TaskCreated(ts=1, task_id="a", description="a", branch="worker/a"),
                  TaskCreated(ts=1, task_id="b", description="b", branch="worker/b"),
                  TaskStatusChanged(ts=2, task_id="a", before="pending", after="running")]:
        state.apply(event)
    assert (state.figures().source, state.figures().workers_active, state.figures().pending) == ("events", 1, 1)

    state.apply(Metrics(ts=3, workers_active=6, workers_total=10, pending=3, done=2, failed=1, landed=2, tokens=900))
    f = state.figures()
    assert (f.source, f.workers_active, f.workers_total, f.pending, f.done, f.failed, f.tokens) == \
        ("monitor", 6, 10, 3, 2, 1, 900)

    state.apply(TaskStatusChanged(ts=4, task_id="b", before="pending", after="running"))
    assert (state.figures().source, state.figures().workers_active) == ("events", 2)


def test_a_retried_task_times_its_new_attempt() -> None:
    state = Board()
    handoff = Handoff(task_id="a", status="failed", summary="tests fail")
    for event in [TaskCreated(ts=1, task_id="a", description="a", branch="worker/a"),
                  TaskStatusChanged(ts=2, task_id="a", before="pending", after="running"),
                  HandoffReceived(ts=30, task_id="a", handoff=handoff),
                  TaskStatusChanged(ts=30, task_id="a", before="running", after="pending"),
                  TaskStatusChanged(ts=40, task_id="a", before="pending", after="running")]:
        state.apply(event)

    row = state.tasks["a"]
    assert (row.started, row.worked, row.status, state.workers_active) == (40, None, "running", 1)


def test_a_resumed_run_re_announces_its_tasks_with_their_status() -> None:
    state = Board()
    state.apply(TaskCreated(ts=1, task_id="a", description="a", branch="worker/a", status="landed"))
    state.apply(TaskCreated(ts=1, task_id="b", description="b", branch="worker/b", status="failed"))
    state.apply(TaskCreated(ts=1, task_id="c", description="c", branch="worker/c"))

    f = state.figures()
    assert (f.done, f.failed, f.pending, f.total) == (1, 1, 1, 3)
    assert state.tasks["a"].status == "landed"


def test_subtasks_nest_under_their_parent_and_steps_and_stuck_workers_show() -> None:
    state = Board()
    for event in [TaskCreated(ts=1, task_id="p", description="parent", branch="worker/p"),
                  TaskCreated(ts=2, task_id="p-1", description="child", branch="worker/p-1", parent="p"),
                  TaskStatusChanged(ts=3, task_id="p-1", before="pending", after="running"),
                  WorkerStep(ts=4, task_id="p-1", step=3, tool="bash", ok=False, detail="pytest -q"),
                  WorkerOutput(ts=5, task_id="p-1", bytes=2048),
                  WorkerStuck(ts=9, task_id="p-1", silent_s=300)]:
        state.apply(event)

    assert state.tasks["p"].children == ["p-1"] and [t.id for t in state.roots()] == ["p"]
    child = state.tasks["p-1"]
    assert (child.started, child.steps, child.step, child.step_ok, child.output) == (3, 3, "bash pytest -q", False, 2048)
    assert state.warnings == 1 and "no progress for 300s" in state.feed[-1].text


def test_predicted_conflicts_their_outcomes_and_hot_files_reach_the_report() -> None:
    from longshot.dashboard.lines import describe
    from longshot.dashboard.report import outcome, rows
    from longshot.events import ConflictOutcome, ConflictPredicted, FileHot, TipMerged

    events = [ConflictPredicted(task_id="b", against="main", files=["a.py"], lines={"a.py": "3-7"}),
              TipMerged(task_id="b", tip="f" * 40, conflicts=["a.py"]),
              ConflictOutcome(task_id="b", avoided=True, files=["a.py"]),
              ConflictPredicted(task_id="c", against="b", files=["x.py"], lines={"x.py": "1-2"}),
              ConflictOutcome(task_id="c", avoided=False, files=["x.py"]),
              FileHot(path="src/registry.py", reason="conflicted at landing 2 times", conflicts=2)]
    state = Board()
    for e in events:
        state.apply(e)
    assert (state.predicted, state.avoided, list(state.hot_files)) == (2, 1, ["src/registry.py"])
    table = dict(rows(outcome(state)))
    assert table["conflicts predicted"] == "2 (1 avoided after a warning)" and table["hot files"] == "src/registry.py"
    lines = [describe(e) or "" for e in events]
    assert "a.py lines 3-7" in lines[0] and "markers to resolve in a.py" in lines[1]
    assert "conflict avoided" in lines[2] and "not avoided" in lines[4] and "hot file" in lines[5]
