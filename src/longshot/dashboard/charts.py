"""The report's charts, drawn with matplotlib (Agg backend, no display needed) as PNG files.

- ``progress.png``: landed work and busy workers over the run;
- ``time_to_land.png``: per landed task, the worker's time and the wait to land;
- ``timeline.png``: every task from start to end, coloured by outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from longshot.dashboard.state import DONE, FAILED, RunState

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLOURS = {"done": "#2e9e44", "failed": "#d62728", "other": "#9e9e9e", "worker": "#1f77b4", "wait": "#2ca02c"}


def draw(state: RunState, directory: Path) -> list[tuple[str, str]]:
    """Write the charts of ``state`` into ``directory``; (file name, caption) of each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    start = state.started if state.started is not None else min((t.created for t in state.tasks.values()), default=0)
    end = start + state.elapsed()
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


def _progress(plt: Any, state: RunState, start: float, end: float) -> Figure | None:
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


def _time_to_land(plt: Any, state: RunState, start: float, end: float) -> Figure | None:
    rows = sorted((t for t in state.tasks.values() if t.landed_at is not None), key=lambda t: t.landed_at or 0)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1.2)), constrained_layout=True)
    names = [t.id for t in rows]
    worked = [(t.worked - t.started) if t.worked and t.started else 0.0 for t in rows]
    waited = [t.seconds_to_land or 0.0 for t in rows]
    ax.barh(names, worked, color=COLOURS["worker"], label="worker")
    ax.barh(names, waited, left=worked, color=COLOURS["wait"], label="waiting to land (queue and gate)")
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return cast("Figure", fig)


def _timeline(plt: Any, state: RunState, start: float, end: float) -> Figure | None:
    rows = [t for t in state.tasks.values() if t.started is not None]
    if not rows:
        return None
    rows.sort(key=lambda t: t.started or 0)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(rows) + 1.2)), constrained_layout=True)
    for i, t in enumerate(rows):
        begin = (t.started or start) - start
        finish = (t.landed_at or t.ended or end) - start
        kind = "done" if t.status in DONE else "failed" if t.status in FAILED else "other"
        ax.barh(i, max(0.05, finish - begin), left=begin, color=COLOURS[kind])
        if t.worked is not None and t.landed_at is not None:
            ax.plot([t.worked - start], [i], marker="|", color="white", markersize=10)
    ax.set_yticks(range(len(rows)), [t.id for t in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.0, end - start))
    ax.set_xlabel("seconds since the start (green: landed or done; red: failed; grey: other; | handoff)")
    ax.grid(axis="x", alpha=0.3)
    return cast("Figure", fig)
