"""The reducer (dashboard/board.py) on every event type, on types it does not know, and on
events that arrive out of order or twice.

One event of every type in the catalogue is made from its own fields (the least each needs),
so a type added later is folded here too without editing this file.
"""

from __future__ import annotations

from typing import Literal

import pytest

from longshot.dashboard.board import Board
from longshot.dashboard.lines import describe
from longshot.dashboard.view import render
from longshot.dashboard.keys import ViewState
from longshot.dashboard.tree import tree_rows
from longshot.events import (
    EVENT_TYPES, Event, HandoffReceived, MergeLanded, RunStarted, TaskCreated, TaskStatusChanged,
    WorkerStep,
)
from longshot.types import Handoff

from dashboard.event_samples import one_of


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.model_fields["type"].default)
def test_every_event_type_is_folded_and_shown_when_it_has_a_line(cls: type[Event]) -> None:
    state = Board()
    for event in (RunStarted(ts=1, request="r", repo="x", target_branch="main", max_workers=2),
                  TaskCreated(ts=2, task_id="t", description="d", branch="worker/t")):
        state.apply(event)
    event = one_of(cls)

    state.apply(event)
    state.figures()
    render(state, ViewState(), 6.0)  # and it can be drawn
    render(state, ViewState(tab=1, debug=True), 6.0)

    assert state.ignored == 0 and state.events == 3 and state.recent[-1] is event and state.now == 5.0
    assert (state.feed[-1].text == describe(event)) if describe(event) is not None else len(state.feed) <= 2


class FromTheFuture(Event):
    """An event type this version of the dashboard does not know (a newer Longshot wrote the log)."""

    type: Literal["future.thing"] = "future.thing"
    payload: str = ""


def test_an_unknown_event_type_is_counted_and_changes_nothing_else() -> None:
    state = Board()
    state.apply(RunStarted(ts=1, request="r", repo="x", target_branch="main", max_workers=2))
    before = (len(state.feed), len(state.recent), state.figures())

    state.apply(FromTheFuture(ts=9, task_id="t", payload="[bold]?"))

    assert state.ignored == 1 and state.events == 2 and state.now == 9
    assert (len(state.feed), len(state.recent), state.figures()) == before


def test_late_events_never_move_the_clock_back() -> None:
    state = Board()
    state.apply(RunStarted(ts=10, request="r", repo="x", target_branch="main", max_workers=2))
    for ts in (40.0, 20.0):
        state.apply(WorkerStep(ts=ts, task_id="t", step=1, tool="bash", ok=True))

    assert state.now == 40.0 and state.elapsed() == 30.0


def test_events_for_a_task_not_yet_announced_are_dropped_without_a_trace_in_the_counts() -> None:
    state = Board()
    state.apply(TaskStatusChanged(ts=1, task_id="ghost", before="pending", after="running"))
    state.apply(WorkerStep(ts=2, task_id="ghost", step=1, tool="bash", ok=True, detail="ls"))
    handoff = Handoff(task_id="ghost", status="complete", summary="s")
    state.apply(HandoffReceived(ts=3, task_id="ghost", handoff=handoff))
    state.apply(MergeLanded(ts=4, task_id="ghost", commit="c" * 40, branch="worker/ghost", seconds_to_land=2.0))

    assert state.tasks == {} and +state.statuses == {} and state.workers_active == 0
    assert state.merge_landed == 1 and state.waits == [2.0]  # the landing itself happened
    state.apply(TaskCreated(ts=5, task_id="ghost", description="late", branch="worker/ghost"))
    assert state.statuses == {"pending": 1} and state.tasks["ghost"].landed_at is None


def test_a_task_announced_twice_keeps_its_first_row_and_counts() -> None:
    state = Board()
    state.apply(TaskCreated(ts=1, task_id="a", description="first", branch="worker/a"))
    state.apply(TaskStatusChanged(ts=2, task_id="a", before="pending", after="running"))
    state.apply(TaskCreated(ts=3, task_id="a", description="again", branch="worker/a", status="pending"))

    assert state.tasks["a"].description == "first" and state.tasks["a"].status == "running"
    assert +state.statuses == {"running": 1} and len(state.tasks) == 1


def test_a_subtask_announced_before_its_parent_still_hangs_under_it() -> None:
    state = Board()
    state.apply(TaskCreated(ts=1, task_id="part-2", description="p2", branch="worker/p2", parent="big"))
    state.apply(TaskCreated(ts=2, task_id="big", description="big", branch="worker/big"))
    state.apply(TaskCreated(ts=3, task_id="part-1", description="p1", branch="worker/p1", parent="big"))

    assert [t.id for t in state.roots()] == ["big"]
    assert sorted(state.tasks["big"].children) == ["part-1", "part-2"]
    rows = [make()[0].plain for make in tree_rows(state, ViewState(), 4.0)]
    assert [row.split()[-1] for row in rows] == ["planner", "big", "part-2", "part-1"]  # in the order announced
