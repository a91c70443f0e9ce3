"""Plain terminal output and ``--json`` stdout: two sinks over the same events.

The plain printer shows one readable line per meaningful event, and a status line every
``status_every`` seconds of run time and at each monitor report (`run.metrics`);
``--debug`` shows every event. It reads event types and fields only, never message text.
"""

from __future__ import annotations

import threading
from typing import IO

from rich.console import Console
from rich.markup import escape, render

from longshot.dashboard.lines import describe
from longshot.dashboard.board import Board
from longshot.dashboard.draw import amount, cost_text, duration
from longshot.events import Event, Metrics

STATUS_EVERY = 15.0


class JsonStdoutSink:
    """``--json``: every event as one JSON line on stdout, nothing else."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        self._stream.write(event.model_dump_json() + "\n")
        self._stream.flush()


class PlainPrinter:
    """One line per meaningful event, coloured by kind, and a status line every ``status_every`` seconds.

    The status line is due by the events' clock (so a replay prints it where the run did)
    and, in a live run, by the wall clock too: `tick` is called every second from a thread,
    so a quiet stretch still shows the run is alive.
    """

    def __init__(self, console: Console, *, debug: bool = False, status_every: float = STATUS_EVERY) -> None:
        self.console = console
        self.debug = debug
        self.status_every = status_every
        self.state = Board()
        self._status_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.state.apply(event)
            line = describe(event)
            if line is None and self.debug:
                line = f"[dim]{escape(event.model_dump_json(exclude={'ts', 'run_id'}))}[/]"
            if line is not None:
                self._say(line)
            if isinstance(event, Metrics) or self._due(event.ts):
                self._status(event.ts)

    def tick(self, now: float) -> None:
        """Print the status line if one is due at ``now`` (wall time of a live run)."""
        with self._lock:
            if self._due(now):
                self._status(now)

    def _due(self, now: float) -> bool:
        if self._status_at is None and self.state.started is not None:
            self._status_at = self.state.started
        return self._status_at is not None and self.state.finished is None and now - self._status_at >= self.status_every

    def _status(self, now: float) -> None:
        if self.state.finished is None:
            self._status_at = now
            self._say(status_line(self.state, now))

    def _say(self, line: str) -> None:
        console = self.console
        if console.is_terminal or console.record or console.color_system is not None or not console.soft_wrap:
            console.print(line)
        else:  # a file or a pipe: the text as print would write it (no colour, no wrapping), at a quarter of its CPU
            console.file.write(render(line).plain + "\n")
            console.file.flush()  # as print does: a pipe (`watch`, `| tee`) shows each line as it comes


def status_line(state: Board, now: float) -> str:
    """``status 0:45 · workers 3/4 · tasks 5/9 done, 1 failed, 2 pending · landed 5 (400/h) · queue 1 · ...``."""
    f = state.figures()
    parts = [f"[bold]status[/] {duration(state.elapsed(now))}", f"workers {f.workers_active}/{f.workers_total}",
             f"tasks {f.done}/{f.total} done, {f.failed} failed, {f.pending} pending",
             f"landed {f.landed} ({state.landed_per_hour(now):.0f}/h)", f"queue {f.queue_depth}",
             f"{amount(f.tokens)} tokens {cost_text(f.cost_usd, state.unpriced)}"]
    if state.planner_since is not None:
        parts.insert(1, f"[magenta]planning {duration(now - state.planner_since)}[/]")
    return " · ".join(parts)
