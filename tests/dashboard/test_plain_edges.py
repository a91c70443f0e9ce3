"""Plain lines and ``--json`` stdout (dashboard/plain.py) at their edges: a real pipe, a run
that never started, the planner thinking, unknown prices, markup in fields, the status cadence."""

from __future__ import annotations

import io
import os

from rich.console import Console

from longshot.dashboard.board import Board
from longshot.dashboard.plain import JsonStdoutSink, PlainPrinter, status_line
from longshot.events import (
    LLMUsage, PlannerRequested, RunStarted, RunWarning, TaskCreated, WorkerStep, parse_event,
)

START = RunStarted(ts=100, request="r", repo="x", target_branch="main", max_workers=2, unpriced_models=["m"])


def printer(**kwargs: object) -> tuple[PlainPrinter, io.StringIO]:
    out = io.StringIO()
    return PlainPrinter(Console(file=out, width=300, color_system=None), **kwargs), out  # type: ignore[arg-type]


def test_json_lines_reach_a_pipe_one_by_one_and_read_back_as_the_same_events() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)  # a line not flushed fails at once (BlockingIOError), never hangs
    events = [START, TaskCreated(ts=101, task_id="a", description="line one\nline two [b]", branch="worker/a")]
    try:
        with os.fdopen(write, "w", encoding="utf-8", closefd=False) as stream:
            sink = JsonStdoutSink(stream)
            for event in events:
                sink(event)  # flushed at once: the reader sees the line while the stream is still open
                line = os.read(read, 65536).decode()
                assert line.endswith("\n") and line.count("\n") == 1
                assert parse_event(line) == event
    finally:
        os.close(read)
        os.close(write)


def test_nothing_is_printed_as_status_before_the_run_starts() -> None:
    p, out = printer(status_every=15)
    p(TaskCreated(ts=1, task_id="a", description="early", branch="worker/a"))
    p.tick(10_000)
    p(RunWarning(ts=10_001, message="still no start"))

    assert "status" not in out.getvalue() and "early" in out.getvalue()


def test_the_status_line_comes_every_interval_of_the_runs_own_clock() -> None:
    p, out = printer(status_every=15)
    p(START)
    for ts in range(105, 161, 5):
        p(RunWarning(ts=ts, message=f"tick {ts}"))

    status = [line.split(" · ")[0] for line in out.getvalue().splitlines() if line.startswith("status ")]
    assert status == ["status 0:15", "status 0:30", "status 0:45", "status 1:00"]


def test_the_status_line_says_the_planner_is_thinking_and_that_the_cost_is_unknown() -> None:
    state = Board()
    for event in (START, PlannerRequested(ts=110, iteration=1),
                  LLMUsage(ts=111, role="planner", model="m", prompt_tokens=900, completion_tokens=300)):
        state.apply(event)

    line = status_line(state, 140)

    assert line.startswith("[bold]status[/] 0:40 · [magenta]planning 0:30[/] · workers 0/2 · ")
    assert line.endswith("1.2k tokens unknown (no price for m)")
    p, out = printer()
    for event in (START, PlannerRequested(ts=110, iteration=1)):
        p(event)
    p.tick(140)
    assert out.getvalue().splitlines()[-1].startswith("status 0:40 · planning 0:30 · workers 0/2")


def test_debug_shows_fields_that_look_like_markup_as_they_are() -> None:
    p, out = printer(debug=True)
    p(WorkerStep(ts=1, task_id="a", step=1, tool="bash", ok=True, detail="echo [bold]x[/] [red"))

    assert '"detail":"echo [bold]x[/] [red"' in out.getvalue()
