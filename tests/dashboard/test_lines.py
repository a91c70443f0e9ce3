"""One line per event for the plain printer and the activity feed: text a model or a worker wrote
is shown as written (never read as markup), and each event gets the level it deserves."""

from __future__ import annotations

import pytest
from rich.text import Text

from longshot.events import (
    BudgetSpent, CheckFinished, Event, LLMRetry, MergeFailed, MergeLanded, RunError, RunFinished, RunWarning,
    SweepFinished, TaskCreated, TaskRejected, TaskStatusChanged, WorkerStuck,
)
from longshot.dashboard.lines import describe, level

HOSTILE = "[bold red]pwned[/] [/nope] [link=http://x]y[/link]"
"""Markup a worker could put in a summary or a failing test's name: it must show literally."""


@pytest.mark.parametrize("event", [
    RunWarning(code="worker.failed", task_id="t1", message=HOSTILE),
    RunError(message=HOSTILE),
    MergeFailed(task_id="t1", branch="worker/t1", reason=HOSTILE),
    TaskRejected(reason=HOSTILE, description="d"),
    TaskCreated(task_id="t1", description=HOSTILE, branch="worker/t1", kind="fix"),
    CheckFinished(command=HOSTILE, exit_code=1, ok=False, output_tail=HOSTILE),
    SweepFinished(sweep=1, commit="c" * 40, green=False, failures=[HOSTILE]),
    LLMRetry(role="worker", endpoint=HOSTILE, attempt=1, error=HOSTILE),
    BudgetSpent(budget="RUN_MAX_TOKENS", message=HOSTILE),
], ids=lambda e: e.type)
def test_text_from_outside_is_never_read_as_markup(event: Event) -> None:
    line = describe(event)
    assert line is not None
    shown = Text.from_markup(line).plain  # raises on broken markup, e.g. a stray [/nope]
    assert "pwned" in shown and "[bold red]pwned[/]" in shown, shown


@pytest.mark.parametrize("event, expected", [
    (RunError(message="x"), "error"),
    (MergeFailed(branch="b", reason="conflict"), "error"),
    (BudgetSpent(budget="RUN_MAX_COST_USD", message="x"), "error"),
    (TaskStatusChanged(task_id="t", before="running", after="failed"), "error"),
    (TaskStatusChanged(task_id="t", before="running", after="blocked"), "error"),
    (CheckFinished(command="pytest", exit_code=1, ok=False), "error"),
    (RunFinished(exit_code=1, green=False), "error"),
    (RunWarning(code="other", message="x"), "warning"),
    (WorkerStuck(task_id="t", silent_s=600), "warning"),
    (TaskStatusChanged(task_id="t", before="running", after="partial"), "warning"),
    (TaskCreated(task_id="fix-001", description="d", branch="b", kind="fix"), "warning"),
    (SweepFinished(sweep=2, commit="c", green=False, failures=["f"]), "warning"),
    (SweepFinished(sweep=2, commit="c", green=False, failures=["f"], discarded=True), "info"),
    (TaskStatusChanged(task_id="t", before="merging", after="landed"), "info"),
    (MergeLanded(commit="c", branch="b"), "info"),
    (CheckFinished(command="pytest", exit_code=0, ok=True), "info"),
    (RunFinished(exit_code=0, green=True), "info"),
    (TaskCreated(task_id="t", description="d", branch="b"), "info"),
], ids=lambda v: v if isinstance(v, str) else v.type)
def test_each_event_gets_the_level_it_deserves(event: Event, expected: str) -> None:
    assert level(event) == expected


def test_a_passing_check_is_one_line_and_a_failing_one_shows_its_output_tail() -> None:
    ok = describe(CheckFinished(command="pytest -q", exit_code=0, ok=True, output_tail="1 passed"))
    bad = describe(CheckFinished(command="pytest -q", exit_code=1, ok=False, output_tail="E   assert 1 == 2"))
    assert ok is not None and bad is not None
    assert "\n" not in ok and "1 passed" not in ok
    assert Text.from_markup(bad).plain.endswith("E   assert 1 == 2")
