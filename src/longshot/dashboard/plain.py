"""Plain terminal output and ``--json`` stdout: two sinks over the same events.

The plain printer shows one readable line per meaningful event; ``--debug`` shows every
event. It reads event types and fields only, never message text.
"""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.markup import escape

from longshot.events import (
    CheckFinished, Event, HandoffReceived, MergeFailed, MergeLanded, PlannerAnswered, PlannerParseError,
    PlannerRequested, RunError, SandboxProfile, RunFinished, RunStarted, RunWarning, TaskCreated, TaskRejected, TaskStatusChanged,
)


class JsonStdoutSink:
    """``--json``: every event as one JSON line on stdout, nothing else."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: Event) -> None:
        self._stream.write(event.model_dump_json() + "\n")
        self._stream.flush()


class PlainPrinter:
    """One line per meaningful event, coloured by kind."""

    def __init__(self, console: Console, *, debug: bool = False) -> None:
        self.console = console
        self.debug = debug

    def __call__(self, event: Event) -> None:
        line = self._line(event)
        if line is None and self.debug:
            line = f"[dim]{escape(event.model_dump_json(exclude={'ts', 'run_id'}))}[/]"
        if line is not None:
            self.console.print(line)

    def _line(self, e: Event) -> str | None:
        t = f"[cyan]{escape(e.task_id)}[/] " if e.task_id else ""
        match e:
            case RunStarted():
                return f"[bold]longshot[/] {escape(e.request[:120])}\n  repo {escape(e.repo)} → {e.target_branch}, " \
                       f"{e.max_workers} workers, log {escape(e.log_path)}"
            case PlannerRequested():
                return f"[magenta]planner[/] thinking (iteration {e.iteration}, {e.handoffs} new handoffs)"
            case PlannerAnswered():
                return f"[magenta]planner[/] {e.tasks} new tasks"
            case PlannerParseError():
                return f"[yellow]planner answer unusable[/]: {escape(e.error[:200])}"
            case TaskCreated():
                return f"{t}planned: {escape(e.description[:100])}"
            case TaskRejected():
                return f"[yellow]rejected task[/] {t}{escape(e.reason)}"
            case TaskStatusChanged() if e.after in ("merging", "landed"):
                return None  # the merge events say it better
            case TaskStatusChanged():
                colour = {"landed": "green", "failed": "red", "blocked": "red", "partial": "yellow"}.get(e.after, "blue")
                why = f" ({escape(e.reason[:160])})" if e.reason and e.after != "merging" else ""
                return f"{t}[{colour}]{e.after}[/]{why}"
            case HandoffReceived():
                m = e.handoff.metrics
                return f"{t}handoff {e.handoff.status}: +{m.lines_added}/-{m.lines_removed} in " \
                       f"{len(e.handoff.files_changed)} files, {m.tool_calls} tool calls, {m.tokens_used} tokens"
            case MergeLanded():
                return f"{t}[green]landed[/] as {e.commit[:10]}"
            case MergeFailed():
                return f"{t}[red]merge failed[/]: {escape(e.reason)}"
            case CheckFinished():
                mark = "[green]✓[/]" if e.ok else "[red]✗[/]"
                tail = "" if e.ok else "\n" + escape(e.output_tail[-1500:])
                return f"check {mark} {escape(e.command)} (exit {e.exit_code}){tail}"
            case SandboxProfile():
                colour = "yellow" if e.weakened else "dim"
                return f"[{colour}]sandbox ({e.provider}): {escape(e.description)}[/]"
            case RunWarning():
                return f"{t}[yellow]warning[/]: {escape(e.message)}"
            case RunError():
                return f"{t}[red]error[/]: {escape(e.message)}"
            case RunFinished():
                mark = "[green]✓ done[/]" if e.exit_code == 0 else f"[red]✗ exit {e.exit_code}[/]"
                return f"{mark} in {e.duration_s:.1f}s, {e.tokens} tokens, ${e.cost_usd:.4f}: {escape(e.summary)}"
        return None
