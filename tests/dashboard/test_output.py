"""What a run shows on the terminal (dashboard/output.py): the mode, the sinks and the end of the run.

Consoles are real rich consoles of a fixed width writing to buffers; a terminal is a real
pseudo-terminal (``os.openpty``); run logs are written by the real NDJSON sink.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from longshot.dashboard.output import DASHBOARD_FROM, RunOutput, choose_mode
from longshot.dashboard.report import report_dir
from longshot.events import (
    Event, NdjsonSink, PlannerRequested, ResultReady, RunFinished, RunResumed, RunStarted, RunWarning, TaskCreated,
    read_events,
)

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"


def console(width: int = 100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, color_system=None, highlight=False, soft_wrap=True), out


def test_json_wins_then_the_flag_then_whether_stdout_is_a_terminal() -> None:
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert choose_mode(None, False, tty) == "dashboard"
            assert choose_mode(False, False, tty) == "plain"
            assert choose_mode(None, True, tty) == "json"
    finally:
        os.close(leader)
        os.close(follower)
    assert choose_mode(None, False, io.StringIO()) == "plain"
    assert choose_mode(True, False, io.StringIO()) == "dashboard"
    assert choose_mode(True, True, io.StringIO()) == "json"


@pytest.mark.parametrize("under_way", [
    PlannerRequested(ts=2, iteration=1), TaskCreated(ts=2, task_id="a", description="d", branch="worker/a"),
    RunResumed(ts=2),
])
def test_the_dashboard_takes_the_screen_at_the_first_sign_the_run_is_under_way(under_way: Event) -> None:
    output = RunOutput("dashboard", Console(file=io.StringIO(), force_terminal=True, width=100, height=30))
    with output:
        output.sink(RunStarted(ts=0, request="r", repo="x", target_branch="main", max_workers=1))
        output.sink(RunWarning(ts=1, message="not yet"))
        assert output.dashboard is not None and output.dashboard._thread is None
        output.sink(under_way)
        assert output.dashboard._thread is not None and isinstance(under_way, DASHBOARD_FROM)


def test_plain_mode_prints_lines_and_at_the_end_the_summary_and_the_report(tmp_path: Path) -> None:
    log = Path(shutil.copy(LOG, tmp_path / "run-demo.ndjson"))
    con, out = console()
    output = RunOutput("plain", con)
    with output:
        for event in read_events(log):
            output.sink(event)

    report = output.finish(log)

    assert output.dashboard is None and report == report_dir(log) / "report.md" and report.is_file()
    text = out.getvalue()
    assert "longshot Build wordkit" in text and "fix-001" in text
    assert "✓ run finished" in text and f"report   {report}" in text.splitlines()


def test_json_mode_keeps_stdout_for_events_and_says_where_the_result_is_on_stderr(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run-json.ndjson"
    sink = NdjsonSink.open(log)
    events = [RunStarted(ts=1, request="r", repo="/srv/repo", target_branch="main", max_workers=1, log_path=str(log)),
              ResultReady(ts=2, repo="/srv/repo", branch="main", ref="refs/longshot/result", commit="abcdef1234567",
                          moved=True), RunFinished(ts=3, exit_code=0, green=True)]
    con, out = console()
    output = RunOutput("json", con)
    with output:
        for event in events:
            sink(event)
            output.sink(event)
    sink.close()

    report = output.finish(log)

    captured = capfd.readouterr()
    assert captured.out.splitlines() == [e.model_dump_json() for e in events]
    assert out.getvalue() == "" and report is not None
    assert "result: refs/longshot/result in /srv/repo (commit abcdef1234)" in captured.err
    assert f"report: {report}" in captured.err and "branch: main moved to the result" in captured.err


@pytest.mark.parametrize("content", [None, RunWarning(ts=1, message="no run.started before me").model_dump_json()])
def test_a_run_that_never_started_leaves_no_report(tmp_path: Path, content: str | None) -> None:
    log = tmp_path / "run-none.ndjson"
    if content is not None:
        log.write_text(content + "\n")
    con, out = console()

    assert RunOutput("plain", con).finish(log) is None
    assert not report_dir(log).exists() and out.getvalue() == ""


def test_a_report_that_cannot_be_written_is_said_and_the_summary_still_printed(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = Path(shutil.copy(LOG, tmp_path / "run-demo.ndjson"))
    report_dir(log).write_text("a file where the report's folder goes")
    con, out = console()

    assert RunOutput("plain", con).finish(log) is None

    assert "the run report could not be written" in capfd.readouterr().err
    assert "✓ run finished" in out.getvalue() and "report   " not in out.getvalue()


class Unplugged(io.StringIO):
    """A terminal that goes away: every write after `unplug` raises, as on a closed tty."""

    gone = False

    def write(self, text: str) -> int:
        if self.gone:
            raise OSError(5, "Input/output error")
        return super().write(text)


def test_a_dashboard_that_fails_to_draw_is_reported_and_the_run_goes_on(capfd: pytest.CaptureFixture[str]) -> None:
    screen = Unplugged()
    output = RunOutput("dashboard", Console(file=screen, force_terminal=True, width=100, height=30))
    with output:
        output.sink(RunStarted(ts=0, request="r", repo="x", target_branch="main", max_workers=1))
        screen.gone = True
        output.sink(PlannerRequested(ts=1, iteration=1))
        output.sink(RunWarning(ts=2, message="still taken"))  # the sink does not raise: the run goes on

    assert output.dashboard is not None and isinstance(output.dashboard.error, OSError)
    err = capfd.readouterr().err
    assert "the dashboard stopped drawing (OSError(5," in err and "its events are in the run log" in err


def test_events_before_the_run_is_entered_stay_plain_even_if_the_run_is_under_way() -> None:
    """Until the run's ``with`` is entered (e.g. a ``--reset`` prompt), the dashboard never starts."""
    out = io.StringIO()
    output = RunOutput("dashboard", Console(file=out, force_terminal=True, width=100, height=30))
    output.sink(RunStarted(ts=0, request="the request", repo="x", target_branch="main", max_workers=1))
    output.sink(TaskCreated(ts=1, task_id="early", description="an early task", branch="worker/early"))

    assert output.dashboard is not None and output.dashboard._thread is None and "early" in out.getvalue()
    with output:
        output.sink(RunResumed(ts=2))
        assert output.dashboard._thread is not None and output.printer is None
    assert output.dashboard.state.events == 3 and "early" in output.dashboard.state.tasks
