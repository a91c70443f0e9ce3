"""The dashboard's frames: panels, the task tree, timers, keys (drawn into a recording console)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from longshot.dashboard.screen import decode_keys
from longshot.dashboard.board import Board, TaskRow
from longshot.dashboard.tree import task_row
from longshot.dashboard.keys import ViewState
from longshot.dashboard.view import render
from longshot.events import RunStarted, TaskCreated, TaskStatusChanged, read_events

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"


def frame(state: Board, view: ViewState, now: float, width: int = 140, height: int = 44) -> str:
    console = Console(width=width, height=height, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(render(state, view, now, height, width))
    return console.export_text()


def at_the_conflict() -> tuple[Board, str]:
    """The state when the task that conflicted has failed, and that task's id."""
    state = Board()
    for event in read_events(LOG):
        state.apply(event)
        if isinstance(event, TaskStatusChanged) and event.after == "failed":
            return state, event.task_id or ""
    raise AssertionError("no conflict in the recorded demo")


def test_every_panel_shows_the_demo_at_the_conflict() -> None:
    state, conflicted = at_the_conflict()
    text = frame(state, ViewState(), state.now)

    for panel in ("metrics", "merge queue", "alerts", "tasks", "progress"):
        assert f"─ {panel}" in text
    assert "LONGSHOT" in text and "workers 1/4" in text and "landed 6" in text
    for task in ("slug", "counts", "case", "wrap", "truncate", "stats", "api", "cli"):
        assert f" {task} " in text
    assert "Conflicts       1" in text and "Merge success   86%" in text
    assert f"{conflicted} merge failed" in text and "· merge conflict with main in" in text
    assert "6/8 done · 1 failed" in text


def test_tabs_depth_and_scrolling_follow_the_keys() -> None:
    state = Board()
    state.apply(RunStarted(ts=0, request="r", repo="x", target_branch="main", max_workers=4))
    for i in range(60):
        state.apply(TaskCreated(ts=1, task_id=f"t{i:02d}", description=f"task {i}", branch=f"worker/t{i:02d}"))
    state.apply(TaskCreated(ts=1, task_id="t00-sub", description="a subtask", branch="worker/s", parent="t00"))
    view = ViewState()

    first = frame(state, view, 2)
    assert "t00-sub" in first and "t00 " in first and "─ tasks" in first
    assert "t59" not in first and "of 62" in first  # more rows than fit: scrollable
    for _ in range(70):
        view.key("down")
    scrolled = frame(state, view, 2)
    assert "t59" in scrolled and "t00-sub" not in scrolled
    view.key("home")
    view.key("-")
    assert "t00-sub" in frame(state, view, 2)  # depth 3: the planner, its tasks, their subtasks
    view.key("-")
    assert "t00-sub" not in frame(state, view, 2) and "t01" in frame(state, view, 2)
    view.key("tab")
    assert "─ activity" in frame(state, view, 2)
    view.key("left")
    assert "─ tasks" in frame(state, view, 2)
    assert decode_keys("\x1b[C\tq\x1b[6~+") == ["right", "tab", "q", "pgdn", "+"]


def test_running_timers_turn_yellow_then_red() -> None:
    view = ViewState(warn_after=180, alert_after=300)
    row = TaskRow(id="t", description="d", created=0, status="running", started=0)

    assert task_row(row, view, 60, "")[2].style == "bold"
    assert task_row(row, view, 200, "")[2].style == "yellow"
    assert task_row(row, view, 400, "")[2].style == "bold red"
    assert str(task_row(row, view, 400, "")[2]) == "6:40"
    row.worked = 100.0  # the worker handed off: the timer stops and dims
    assert (str(task_row(row, view, 400, "")[2]), task_row(row, view, 400, "")[2].style) == ("1:40", "dim")


def test_a_frame_before_any_event_and_a_tiny_terminal_do_not_fail() -> None:
    assert "waiting for events" in frame(Board(), ViewState(), 0)
    state = Board()
    state.apply(TaskCreated(ts=1, task_id="a", description="d", branch="worker/a"))
    state.apply(TaskStatusChanged(ts=2, task_id="a", before="pending", after="running"))
    assert "LONGSHOT" in frame(state, ViewState(), 3, width=60, height=12)
