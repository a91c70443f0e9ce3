"""What a run shows on the terminal, chosen once: the dashboard, plain lines, or NDJSON.

`RunOutput` gives the bus its sink, keeps the dashboard's screen up while the run goes
on (from the first planner request or task; until then plain lines, so questions and the
``--reset`` listing stay readable) and restores the terminal however the run ends, then
writes the run's report and prints the summary. ``--json`` keeps stdout for events only: the report is still written,
and its path goes to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from rich.console import Console

from longshot.dashboard.screen import Dashboard
from longshot.dashboard.plain import JsonStdoutSink, PlainPrinter
from longshot.dashboard.report import load, print_summary, write_report
from longshot.dashboard.keys import ViewState
from longshot.dashboard.nextsteps import result_lines
from longshot.events import Event, PlannerRequested, RunResumed, Sink, TaskCreated

Mode = Literal["dashboard", "plain", "json"]


def choose_mode(dashboard: bool | None, json_out: bool, stream: IO[str] | None = None) -> Mode:
    """``--json`` wins; then ``--dashboard``/``--no-dashboard``; by default the dashboard on a terminal."""
    if json_out:
        return "json"
    if dashboard is None:
        stream = stream or sys.stdout
        dashboard = stream.isatty()
    return "dashboard" if dashboard else "plain"


DASHBOARD_FROM = (PlannerRequested, TaskCreated, RunResumed)
"""The dashboard takes the screen at the first of these: before, the run may still print
what ``--reset`` would delete and ask whether to resume, which a full-screen view would hide."""


class RunOutput:
    """The terminal side of one run."""

    def __init__(self, mode: Mode, console: Console, *, debug: bool = False) -> None:
        self.mode = mode
        self.console = console
        self.dashboard: Dashboard | None = None
        self.printer: PlainPrinter | None = None
        self._stop = threading.Event()
        self._entered = False
        self.sink: Sink
        if mode == "json":
            self.sink = JsonStdoutSink(sys.stdout)
            return
        self.printer = PlainPrinter(console, debug=debug)
        if mode == "dashboard":
            self.dashboard = Dashboard(console, view=ViewState(debug=debug, footer="Ctrl-C stops the run"),
                                       quittable=False)
            self._early: list[Event] = []
            self.sink = self._until_dashboard
        else:
            self.sink = self.printer

    def _until_dashboard(self, event: Event) -> None:
        """Plain lines until the run is under way, then the dashboard (given every event so far)."""
        assert self.dashboard is not None
        if self._early is None:
            self.dashboard(event)
            return
        assert self.printer is not None
        self._early.append(event)
        if not (self._entered and isinstance(event, DASHBOARD_FROM)):
            self.printer(event)
            return
        for early in self._early:
            self.dashboard(early)
        self._early = None  # type: ignore[assignment]
        self.printer = None
        self.dashboard.start()

    def __enter__(self) -> RunOutput:
        self._entered = True
        if self.printer is not None:
            threading.Thread(target=self._tick, name="longshot-status", daemon=True).start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self.dashboard is not None:
            self.dashboard.stop()
            if self.dashboard.error is not None:
                Console(stderr=True, highlight=False).print(
                    f"[yellow]the dashboard stopped drawing ({self.dashboard.error!r}); the run went on, "
                    "its events are in the run log[/]")

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            printer = self.printer  # None once the dashboard has the screen
            if printer is None:
                return
            printer.tick(time.time())

    def finish(self, log_path: Path) -> Path | None:
        """Write the report of the run logged at ``log_path`` and print the summary; the report's path."""
        state = load(log_path) if log_path.is_file() else None
        if state is None or state.started is None:
            return None  # the run never started (bad configuration): nothing to report
        report: Path | None = None
        err = Console(stderr=True, highlight=False)
        try:
            report = write_report(log_path, state)
        except (OSError, ValueError, ImportError) as e:
            err.print(f"[yellow]the run report could not be written: {e}[/]")
        if self.mode == "json":  # stdout is for events only: where the result is goes to stderr
            for label, text in result_lines(state, report):
                err.print(f"{label}: {text}", highlight=False, markup=False, soft_wrap=True)
            return report
        print_summary(self.console, state, report)
        return report
