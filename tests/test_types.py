"""The task state machine: TRANSITIONS is complete and `Task.move` enforces exactly it."""

from __future__ import annotations

import itertools

import pytest

from longshot.errors import IllegalTransition
from longshot.types import ENDED, TERMINAL, TRANSITIONS, Task, TaskStatus

ALL = list(TaskStatus)


def task_in(status: TaskStatus) -> Task:
    # Built directly in the wanted status: the model allows any initial status.
    return Task(id="t1", description="d", branch="worker/t1-d", status=status)


def test_every_status_has_an_entry() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)
    for status, exits in TRANSITIONS.items():
        assert exits <= set(TaskStatus), status
        assert status not in exits, f"{status} lists itself as an exit"


def test_terminal_statuses_have_no_exits_and_others_do() -> None:
    assert TERMINAL == {TaskStatus.LANDED, TaskStatus.UNCHANGED, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED,
                        TaskStatus.COMPLETED}
    for status in ALL:
        if status in TERMINAL:
            assert TRANSITIONS[status] == frozenset(), status
        else:
            assert TRANSITIONS[status], f"{status} is not terminal but has no exit"


def test_ended_statuses_may_be_retried_or_cancelled() -> None:
    for status in ENDED - TERMINAL:
        # retried, given up, or carried on by a continuation that landed; partial and failed
        # work with a commit may also go back to the merge queue (finalization re-lands it)
        relandable = {TaskStatus.MERGING} if status in (TaskStatus.PARTIAL, TaskStatus.FAILED) else set()
        assert TRANSITIONS[status] == {TaskStatus.PENDING, TaskStatus.CANCELLED, TaskStatus.SUPERSEDED, *relandable}


def test_every_status_is_reachable_from_pending() -> None:
    seen = {TaskStatus.PENDING}
    frontier = [TaskStatus.PENDING]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(TaskStatus)


@pytest.mark.parametrize(("before", "after"), list(itertools.product(ALL, ALL)),
                         ids=lambda s: str(s))
def test_move_allows_exactly_the_listed_transitions(before: TaskStatus, after: TaskStatus) -> None:
    task = task_in(before)
    if after in TRANSITIONS[before]:
        previous = task.move(after, "because")
        assert previous == before
        assert task.status == after
        assert task.reason == "because"
    else:
        with pytest.raises(IllegalTransition) as info:
            task.move(after, "nope")
        assert task.status == before, "a refused move changed the status"
        assert task.reason == "", "a refused move changed the reason"
        assert str(before) in str(info.value) and str(after) in str(info.value)


def test_move_records_and_replaces_reason() -> None:
    task = task_in(TaskStatus.PENDING)
    task.move(TaskStatus.RUNNING)
    assert task.reason == ""
    task.move(TaskStatus.BLOCKED, "needs an API key")
    assert task.reason == "needs an API key"
    task.move(TaskStatus.PENDING)
    assert task.reason == ""
    task.move(TaskStatus.RUNNING)
    task.move(TaskStatus.FAILED, "tests fail")
    assert (task.status, task.reason) == (TaskStatus.FAILED, "tests fail")


def test_full_happy_path() -> None:
    task = task_in(TaskStatus.PENDING)
    for nxt in (TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.LANDED):
        task.move(nxt)
    assert task.status == TaskStatus.LANDED
    for nxt in ALL:
        with pytest.raises(IllegalTransition):
            task.move(nxt)
