"""The drawing loop: at most 200 events folded per frame, a reset for watch, frames until done."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from longshot.dashboard.screen import Dashboard
from longshot.dashboard.output import RunOutput
from longshot.dashboard.keys import ViewState
from longshot.events import PlannerRequested, RunStarted, RunWarning


def dashboard(**kwargs: object) -> Dashboard:
    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=30)
    return Dashboard(console, keys=False, screen=False, **kwargs)  # type: ignore[arg-type]


def test_a_burst_is_folded_200_events_per_frame() -> None:
    dash = dashboard()
    dash(RunStarted(ts=0, request="r", repo="x", target_branch="main", max_workers=2))
    for i in range(499):
        dash(RunWarning(ts=1 + i, message=f"w{i}"))

    assert [dash.drain(), dash.drain(), dash.drain(), dash.drain()] == [200, 200, 100, 0]
    assert dash.state.warnings == 499 and dash.state.events == 500


def test_a_reset_starts_over_with_the_newer_run() -> None:
    dash = dashboard()
    dash(RunStarted(ts=0, run_id="old", request="r", repo="x", target_branch="main", max_workers=2))
    dash.reset("run-new.ndjson")
    dash(RunStarted(ts=5, run_id="new", request="r", repo="x", target_branch="main", max_workers=3))
    dash.drain()

    assert (dash.state.run_id, dash.state.events, dash.state.max_workers) == ("new", 1, 3)
    assert dash.view.footer == "following run-new.ndjson"


def test_a_live_dashboard_draws_until_stopped_and_shows_what_was_queued_last() -> None:
    dash = dashboard(hz=20.0, view=ViewState(tab=1))  # the activity tab
    dash.start()
    dash(RunStarted(ts=0, request="the request", repo="x", target_branch="main", max_workers=2))
    done = threading.Event()
    threading.Timer(0.3, done.set).start()
    done.wait()
    dash(RunWarning(ts=1, message="the very last event"))
    dash.stop()

    assert dash.error is None and len(dash.frames) >= 3
    assert dash.state.feed[-1].text.endswith("the very last event")
    assert "the very last event" in dash.console.file.getvalue()  # type: ignore[attr-defined]


def test_a_live_run_prints_plain_lines_until_it_is_under_way_then_the_dashboard_has_every_event() -> None:
    out = io.StringIO()
    output = RunOutput("dashboard", Console(file=out, force_terminal=True, width=120, height=30))
    with output:
        output.sink(RunStarted(ts=0, request="the request", repo="x", target_branch="main", max_workers=2))
        output.sink(RunWarning(ts=1, message="printed before the dashboard"))  # e.g. what --reset would delete
        assert "printed before the dashboard" in out.getvalue() and output.dashboard is not None
        assert output.dashboard._thread is None  # not drawing yet: a question would still be readable
        output.sink(PlannerRequested(ts=2, iteration=1))
        output.sink(RunWarning(ts=3, message="only on the dashboard"))
        assert output.dashboard._thread is not None
    state = output.dashboard.state
    assert state.events == 4 and state.request == "the request" and state.planner_iteration == 1
