"""The report's charts, drawn with matplotlib (Agg backend, no display needed) as PNG files.

- ``progress.png``: landed work and busy workers over the run;
- ``time_to_land.png``: per landed task, the worker's time and the wait to land;
- ``timeline.png``: every task from start to end, coloured by outcome.

Every figure has a bounded size whatever the task count: up to `LABELLED_ROWS` tasks get a
labelled bar each; beyond that the tasks are thin lines of one collection in a figure of
`MAX_HEIGHT` inches (500 tasks once made an 800x17,620 px chart and 6 s of CPU). The charts
are drawn in a child process (`draw_in_child`, ``python -m longshot.dashboard.charts``), so
matplotlib's memory and time never count against the orchestrator, whose run is over by then.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from longshot.dashboard.board import FAILED, Board
from longshot.events import read_events
from longshot.types import DONE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLOURS = {"done": "#2e9e44", "failed": "#d62728", "partial": "#ff7f0e", "other": "#9e9e9e", "worker": "#1f77b4",
           "wait": "#2ca02c"}
OUTCOME = {"landed": "done", "failed": "failed", "blocked": "failed", "cancelled": "failed", "partial": "partial"}
"""Timeline colour by final status: green only for work that landed; anything else is not a success."""
LABELLED_ROWS = 40
"""Tasks that get a labelled bar each; more are drawn as thin unlabelled lines."""
MAX_HEIGHT = 7.0
"""Inches: no chart is taller, however many tasks the run had."""
CHILD_TIMEOUT = 120.0


def _height(rows: int) -> float:
    return min(MAX_HEIGHT, max(2.5, 0.35 * rows + 1.2))


def draw_in_child(log_path: Path, directory: Path) -> list[tuple[str, str]]:
    """Draw the charts of the run logged at ``log_path`` in a child process; (file, caption) of each.

    Raises `subprocess.CalledProcessError` or `subprocess.TimeoutExpired` when the child fails.
    """
    proc = subprocess.run([sys.executable, "-m", "longshot.dashboard.charts", str(log_path), str(directory)],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=True)
    return [(str(name), str(caption)) for name, caption in json.loads(proc.stdout)]


def draw(state: Board, directory: Path) -> list[tuple[str, str]]:
    """Write the charts of ``state`` into ``directory``; (file name, caption) of each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    start = state.started if state.started is not None else min((t.created for t in state.tasks.values()), default=0)
    end = start + state.elapsed() if state.started is not None else max(start, state.now)  # elapsed() needs a start
    charts = [("progress.png", "Landed work and busy workers over time", _progress),
              ("time_to_land.png", "Time to land per task: the worker's time, then the wait to land", _time_to_land),
              ("timeline.png", "Every task from start to end", _timeline)]
    written = []
    for name, caption, plot in charts:
        fig = plot(plt, state, start, end)
        if fig is None:
            continue
        fig.savefig(directory / name, dpi=100)
        plt.close(fig)
        written.append((name, caption))
    return written


def _progress(plt: Any, state: Board, start: float, end: float) -> Figure | None:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.8), sharex=True, constrained_layout=True)
    landed_x = [0.0] + [t - start for t in state.landings] + [end - start]
    landed_y = list(range(len(state.landings) + 1)) + [len(state.landings)]
    top.step(landed_x, landed_y, where="post", color=COLOURS["done"], linewidth=2)
    top.fill_between(landed_x, landed_y, step="post", color=COLOURS["done"], alpha=0.15)
    top.set_ylabel("tasks landed")
    top.grid(alpha=0.3)
    series = state.active_series or [(start, 0)]
    xs = [t - start for t, _ in series] + [end - start]
    ys = [n for _, n in series] + [series[-1][1]]
    bottom.step(xs, ys, where="post", color=COLOURS["worker"], linewidth=2)
    if state.max_workers:
        bottom.axhline(state.max_workers, color="#555555", linestyle="--", linewidth=1, label="MAX_WORKERS")
        bottom.legend(loc="upper right", fontsize=8)
    bottom.set_ylabel("workers busy")
    bottom.set_xlabel("seconds since the start")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    return cast("Figure", fig)


def _time_to_land(plt: Any, state: Board, start: float, end: float) -> Figure | None:
    rows = sorted((t for t in state.tasks.values() if t.landed_at is not None), key=lambda t: t.landed_at or 0)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, _height(len(rows))), constrained_layout=True)
    worked = [(t.worked - t.started) if t.worked and t.started else 0.0 for t in rows]
    waited = [t.seconds_to_land or 0.0 for t in rows]
    if len(rows) <= LABELLED_ROWS:
        names = [t.id for t in rows]
        ax.barh(names, worked, color=COLOURS["worker"], label="worker")
        ax.barh(names, waited, left=worked, color=COLOURS["wait"], label="waiting to land (queue and gate)")
    else:
        ys = range(len(rows))
        width = max(0.5, 300.0 / len(rows))
        ax.hlines(ys, 0, worked, colors=COLOURS["worker"], linewidth=width, label="worker")
        ax.hlines(ys, worked, [w + x for w, x in zip(worked, waited)], colors=COLOURS["wait"], linewidth=width,
                  label="waiting to land (queue and gate)")
        ax.set_ylabel(f"{len(rows)} tasks, in order of landing")
        ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return cast("Figure", fig)


def _timeline(plt: Any, state: Board, start: float, end: float) -> Figure | None:
    rows = [t for t in state.tasks.values() if t.started is not None]
    if not rows:
        return None
    rows.sort(key=lambda t: t.started or 0)
    fig, ax = plt.subplots(figsize=(8, _height(len(rows))), constrained_layout=True)
    begins = [(t.started or start) - start for t in rows]
    finishes = [max(b + 0.05, (t.landed_at or t.ended or end) - start) for b, t in zip(begins, rows)]
    colours = [COLOURS[OUTCOME.get(t.status, "other")] for t in rows]
    handed = [(t.worked - start, i) for i, t in enumerate(rows) if t.worked is not None and t.landed_at is not None]
    if len(rows) <= LABELLED_ROWS:
        ax.barh(range(len(rows)), [f - b for b, f in zip(begins, finishes)], left=begins, color=colours)
        if handed:
            ax.plot([x for x, _ in handed], [i for _, i in handed], linestyle="none", marker="|", color="white",
                    markersize=10)
        ax.set_yticks(range(len(rows)), [t.id for t in rows])
    else:
        ax.hlines(range(len(rows)), begins, finishes, colors=colours, linewidth=max(0.5, 300.0 / len(rows)))
        ax.set_ylabel(f"{len(rows)} tasks, in order of start")
        ax.set_yticks([])
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.0, end - start))
    ax.set_xlabel("seconds since the start (green: landed; red: failed, blocked or cancelled; orange: partial; "
                  "grey: other; | handoff)")
    ax.grid(axis="x", alpha=0.3)
    return cast("Figure", fig)


def main(argv: list[str]) -> None:
    """``python -m longshot.dashboard.charts LOG DIRECTORY``: draw, print [[file, caption], ...] as JSON."""
    log_path, directory = Path(argv[0]), Path(argv[1])
    state = Board()
    for event in read_events(log_path):
        state.apply(event)
    directory.mkdir(parents=True, exist_ok=True)
    print(json.dumps(draw(state, directory)))


if __name__ == "__main__":
    main(sys.argv[1:])
