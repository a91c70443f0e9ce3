"""Plain output: one readable line per meaningful event, a periodic status line, --debug detail."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from longshot.dashboard.plain import PlainPrinter
from longshot.events import (
    LLMUsage, MergeLanded, Metrics, RunFinished, RunStarted, TaskCreated, TaskStatusChanged, WorkerStep, read_events,
)

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"


def printer(**kwargs: object) -> tuple[PlainPrinter, io.StringIO]:
    out = io.StringIO()
    return PlainPrinter(Console(file=out, width=200, color_system=None), **kwargs), out  # type: ignore[arg-type]


def test_one_line_per_meaningful_event_and_a_status_line_every_interval() -> None:
    p, out = printer(status_every=15)
    p(RunStarted(ts=100, request="build it", repo="r", target_branch="main", max_workers=4))
    p(TaskCreated(ts=101, task_id="a", description="write a", branch="worker/a"))
    p(TaskStatusChanged(ts=102, task_id="a", before="pending", after="running"))
    p(WorkerStep(ts=110, task_id="a", step=1, tool="read", ok=True, detail="x.py"))
    p(LLMUsage(ts=116, task_id="a", role="worker", model="m", prompt_tokens=1000, completion_tokens=200))
    p(MergeLanded(ts=120, task_id="a", commit="abcdef1234567", branch="worker/a"))

    lines = out.getvalue().splitlines()
    assert "a planned: write a" in lines and "a running" in lines and "a landed as abcdef1234" in lines
    assert not any("x.py" in line for line in lines)  # a worker's steps are not meaningful lines
    status = [line for line in lines if line.startswith("status ")]
    assert status == ["status 0:16 · workers 1/4 · tasks 0/1 done, 0 failed, 0 pending · landed 0 (0/h) · queue 0 · "
                      "1.2k tokens $0.0000"]


def test_a_quiet_live_run_still_gets_its_status_line_from_the_clock() -> None:
    p, out = printer(status_every=15)
    p(RunStarted(ts=100, request="r", repo="r", target_branch="main", max_workers=2))
    p.tick(110)
    assert "status" not in out.getvalue()
    p.tick(116)
    p.tick(117)  # not due again yet
    assert out.getvalue().count("status 0:16 · workers 0/2") == 1
    p(RunFinished(ts=200, exit_code=0, green=True))
    p.tick(300)
    assert out.getvalue().count("status ") == 1  # none after the end


def test_a_monitor_report_prints_a_status_line_with_its_figures() -> None:
    p, out = printer(status_every=1000)
    p(RunStarted(ts=0, request="r", repo="r", target_branch="main", max_workers=4))
    p(Metrics(ts=10, workers_active=3, workers_total=4, pending=2, done=5, failed=1, landed=5))

    assert "status 0:10 · workers 3/4 · tasks 5/0 done, 1 failed, 2 pending · landed 5" in out.getvalue()


def test_debug_prints_every_event() -> None:
    events = list(read_events(LOG))
    quiet, quiet_out = printer()
    loud, loud_out = printer(debug=True)
    for e in events:
        quiet(e)
        loud(e)

    assert '"type":"worker.step"' in loud_out.getvalue() and "worker.step" not in quiet_out.getvalue()
    assert len(loud_out.getvalue().splitlines()) > len(quiet_out.getvalue().splitlines()) >= 40
    assert "fix-001 fix task: sentences()" in quiet_out.getvalue()


def _both_ways(events: list[object], **kwargs: object) -> tuple[str, str]:
    """The same events through a printer that renders with rich (a recording console) and one
    that writes a file directly (the fast path: soft wrap, no colour, not a terminal)."""
    slow, fast = io.StringIO(), io.StringIO()
    printers = [PlainPrinter(Console(file=slow, record=True, color_system=None, soft_wrap=True), **kwargs),  # type: ignore[arg-type]
                PlainPrinter(Console(file=fast, color_system=None, soft_wrap=True), **kwargs)]  # type: ignore[arg-type]
    for event in events:
        for p in printers:
            p(event)  # type: ignore[arg-type]
    return slow.getvalue(), fast.getvalue()


def test_a_file_gets_the_lines_rich_would_print_without_its_rendering() -> None:
    """Markup, escaped brackets, emoji codes, wide and long text: written straight to a file, a
    line is what rich's print writes there (a recorded demo run, then hostile text)."""
    events: list[object] = list(read_events(LOG))
    events += [TaskCreated(ts=10_000, task_id="z", description="fix [bold]x[/] \\[not markup] :smile: 例え" + "y" * 300,
                           branch="worker/z"),
               TaskStatusChanged(ts=10_001, task_id="z", before="pending", after="failed", reason="[red]boom[/] ]["),
               TaskStatusChanged(ts=10_002, task_id="z", before="failed", after="pending", reason="trailing  :smile: ")]
    for kwargs in ({}, {"debug": True}):
        slow, fast = _both_ways(events, **kwargs)
        assert fast == slow
        demo, hostile = fast.split("z planned")
        assert demo.count("\n") > 20 and "[/" not in demo  # the printer's own markup is rendered
        assert "[bold]x[/] \\[not markup]" in hostile and "[red]boom[/] ][" in hostile  # a task's text is not
