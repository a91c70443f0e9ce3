"""From a `RunView` to what the templates draw: the task tree, the workers, the merge queue, charts.

Pure functions of the view (and the time the page is drawn at), so the live page, a
replay frame and a test all draw the same thing from the same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from rich.text import Text

from longshot.dashboard.board import ACTIVE, DONE, FAILED, TaskRow
from longshot.web.model import RunView

WIDTH, HEIGHT = 560, 140


@dataclass
class Node:
    row: TaskRow
    sprint: int
    children: list["Node"] = field(default_factory=list)


@dataclass
class Group:
    title: str
    nodes: list[Node]


def status_class(status: str) -> str:
    if status in DONE:
        return "done"
    if status in FAILED:
        return "failed"
    return {"running": "running", "merging": "merging", "pending": "pending"}.get(status, "other")


def tree(v: RunView) -> list[Group]:
    """Tasks by sprint (the planner iteration that made them), then reconciler fixes; subtasks under parents."""
    s = v.state

    def node(row: TaskRow) -> Node:
        extra = v.tasks.get(row.id)
        return Node(row, extra.sprint if extra else 0,
                    [node(s.tasks[c]) for c in row.children if c in s.tasks])

    groups: dict[str, list[Node]] = {}
    for row in s.roots():
        n = node(row)
        title = "reconciler fixes" if row.kind == "fix" else f"sprint {n.sprint}"
        groups.setdefault(title, []).append(n)
    return [Group(t, ns) for t, ns in sorted(groups.items(), key=lambda kv: (kv[0].startswith("reconciler"), kv[0]))]


def busy(v: RunView) -> list[TaskRow]:
    return [t for t in v.state.tasks.values() if t.status == "running"]


def merging(v: RunView) -> list[TaskRow]:
    return [t for t in v.state.tasks.values() if t.status == "merging"]


def plain(markup: str) -> str:
    """The text of a line of rich markup (the dashboard's feed lines)."""
    return Text.from_markup(markup).plain


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def elapsed(row: TaskRow, now: float) -> str:
    if row.started is None:
        return ""
    end = row.worked or (row.ended if row.status not in ACTIVE else None) or now
    return duration(end - row.started)


@dataclass
class Chart:
    """An SVG line chart: polylines in a WIDTH x HEIGHT box, with an optional limit line."""

    lines: list[tuple[str, str]]
    """(css class, "x,y x,y ...")."""
    limit_y: float | None
    top: str
    span: str


def _points(series: list[tuple[float, float]], t0: float, t1: float, top: float) -> str:
    dt = max(t1 - t0, 1e-9)
    return " ".join(f"{(t - t0) / dt * WIDTH:.1f},{HEIGHT - (y / top * HEIGHT if top else 0):.1f}" for t, y in series)


def landings_chart(v: RunView) -> Chart:
    s = v.state
    t0, t1 = s.started or v.first_ts or 0.0, s.now
    series = [(t0, 0.0)] + [(t, float(i + 1)) for i, t in enumerate(s.landings)] + [(t1, float(len(s.landings)))]
    steps = [p for i, p in enumerate(series) for p in ([(p[0], series[i - 1][1]), p] if i else [p])]
    total = max(float(len(s.tasks)), float(len(s.landings)), 1.0)
    return Chart([("landed", _points(steps, t0, t1, total))], None, f"{len(s.landings)} of {len(s.tasks)} tasks",
                 duration(t1 - t0))


def cost_chart(v: RunView) -> Chart:
    s = v.state
    t0, t1 = s.started or v.first_ts or 0.0, s.now
    series = [(t0, 0.0)] + v.cost_series + [(t1, s.cost_usd)]
    budget = s.max_cost_usd
    top = max(s.cost_usd, budget or 0.0) * 1.1 or 1.0
    limit = HEIGHT - budget / top * HEIGHT if budget else None
    label = f"${s.cost_usd:.4f}" + (f" of ${budget:.2f} budget" if budget else " (no budget set)")
    return Chart([("cost", _points(series, t0, t1, top))], limit, label, duration(t1 - t0))
