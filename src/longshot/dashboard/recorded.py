"""``longshot replay``, ``longshot watch`` and ``longshot report``: looking at recorded runs.

They read run logs only (the NDJSON events), so they work on any machine a log is copied
to. Registered on the CLI's typer app by `register`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from longshot.dashboard.screen import Dashboard
from longshot.dashboard.output import choose_mode
from longshot.dashboard.plain import JsonStdoutSink, PlainPrinter
from longshot.dashboard.report import load, print_summary, write_report
from longshot.dashboard.sources import ReplayClock, follow, log_problem, newest_log, replay as replay_log
from longshot.dashboard.board import Board
from longshot.dashboard.keys import ViewState
from longshot.dashboard.view import render
from longshot.events import Event

DASHBOARD = typer.Option("--dashboard/--no-dashboard", help="The dashboard (the default on a terminal), or plain lines.")
JSON = typer.Option("--json", help="Print the NDJSON events on stdout, nothing else.")


def replay(
    file: Annotated[Path, typer.Argument(help="A run log (logs/run-*.ndjson).")],
    speed: Annotated[float, typer.Option(help="How many times faster than recorded; 0 = at once.", min=0)] = 1.0,
    dashboard: Annotated[bool | None, DASHBOARD] = None,
    json_out: Annotated[bool, JSON] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Every event, with details.")] = False,
    snapshot: Annotated[Path | None, typer.Option(help="Write one dashboard frame to this SVG file and exit.")] = None,
    at: Annotated[float | None, typer.Option(help="With --snapshot: seconds into the run (default: the end).")] = None,
) -> None:
    """Show a recorded run with its original timing (or faster)."""
    _check_log(file)
    if snapshot is not None:
        _snapshot(file, snapshot, at)
        return
    mode = choose_mode(dashboard, json_out)
    console = Console(highlight=False, soft_wrap=mode != "dashboard")
    if mode != "dashboard":
        sink = JsonStdoutSink(sys.stdout) if mode == "json" else PlainPrinter(console, debug=debug)
        replay_log(file, sink, speed=speed)
        if isinstance(sink, PlainPrinter) and sink.state.started is not None:
            print_summary(console, sink.state)
        return
    clock = ReplayClock(speed)
    dash = Dashboard(console, view=ViewState(debug=debug, footer=f"replay ×{speed:g} · q quits"), clock=clock)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(file, dash, speed, clock, stop), daemon=True)
    feeder.start()
    interactive = sys.stdin.isatty()

    def finished() -> bool:
        if feeder.is_alive():
            return False
        dash.view.footer = "replay finished · q quits"
        return not interactive

    try:
        dash.run(until=finished)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
    if dash.state.started is not None:
        print_summary(console, dash.state)


def _feed(file: Path, dash: Dashboard, speed: float, clock: ReplayClock, stop: threading.Event) -> None:
    replay_log(file, dash, speed=speed, clock=clock, stop=stop)


def watch(
    directory: Annotated[Path | None, typer.Option("--dir", help="Where run logs are (default: LONGSHOT_LOG_DIR or ./logs).")] = None,
    dashboard: Annotated[bool | None, DASHBOARD] = None,
    json_out: Annotated[bool, JSON] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Every event, with details.")] = False,
) -> None:
    """Follow the newest run log, switching when a newer run starts. Ctrl-C (or q) stops watching."""
    where = directory or Path(os.environ.get("LONGSHOT_LOG_DIR", "logs"))
    if where.exists() and not where.is_dir():
        _usage(f"{where} is not a folder of run logs. Fix: longshot watch --dir <the folder of run-*.ndjson logs>, "
               "or longshot replay <a log>")
    mode = choose_mode(dashboard, json_out)
    console = Console(highlight=False, soft_wrap=mode != "dashboard")
    stop = threading.Event()
    if newest_log(where) is None and mode != "json":
        console.print(f"waiting for a run log (run-*.ndjson) in {where.resolve()}")
    if mode == "dashboard":
        dash = Dashboard(console, view=ViewState(debug=debug, footer="watching · q quits"))
        thread = threading.Thread(target=follow, args=(where, dash, lambda p: dash.reset(p.name)),
                                  kwargs={"stop": stop}, daemon=True)
        thread.start()
        try:
            dash.run(until=lambda: False)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
        return
    printer: list[PlainPrinter | JsonStdoutSink] = [JsonStdoutSink(sys.stdout) if mode == "json" else PlainPrinter(console, debug=debug)]

    def switch(path: Path) -> None:
        if mode != "json":
            printer[0] = PlainPrinter(console, debug=debug)
            console.print(f"[bold]following {path}[/]")

    def sink(event: Event) -> None:
        printer[0](event)

    def tick() -> None:  # the status line of a quiet run, by the wall clock
        while not stop.wait(1.0):
            if isinstance(printer[0], PlainPrinter):
                printer[0].tick(time.time())

    threading.Thread(target=tick, daemon=True).start()
    try:
        follow(where, sink, switch, stop=stop)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


def report(file: Annotated[Path, typer.Argument(help="A run log (logs/run-*.ndjson).")]) -> None:
    """Write (again) the report of a recorded run, and print its summary."""
    _check_log(file)
    path = write_report(file)
    console = Console(highlight=False, soft_wrap=True)
    print_summary(console, load(file), path)


def _snapshot(file: Path, out: Path, at: float | None) -> None:
    state = Board()
    events: list[Event] = []
    replay_log(file, events.append, speed=0)
    start = events[0].ts if events else 0.0
    for event in events:
        if at is not None and event.ts - start > at:
            break
        state.apply(event)
    width, height = 140, 42
    console = Console(record=True, width=width, height=height, force_terminal=True, color_system="truecolor",
                      file=open(os.devnull, "w"))  # noqa: SIM115 - closed with the console's recording
    console.print(render(state, ViewState(), start + at if at is not None else state.now, height, width))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(console.export_svg(title=f"longshot replay {file.name}"), encoding="utf-8")
    console.file.close()
    Console(highlight=False).print(f"wrote {out}")


def _check_log(file: Path) -> None:
    """Exit 2 (nothing read, nothing written) unless ``file`` is a run log."""
    problem = log_problem(file)
    if problem is not None:
        _usage(f"{problem}. Fix: give a run log, such as logs/run-<time>-<id>.ndjson (longshot watch follows the newest)")


def _usage(message: str) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(message, style="red", markup=False)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the commands to the CLI."""
    for command in (replay, watch, report):
        app.command()(command)

