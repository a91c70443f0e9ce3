"""The task tree: the planner and the reconciler, their tasks, and the subtasks of split tasks.

Each task shows its status, a timer that runs while its worker works (yellow after
``warn_after``, red after ``alert_after`` seconds), and the worker's latest step, or
after the handoff its figures (lines, files, tokens) and how long it took to land.
Within a parent, running and merging tasks come first, then pending, failed, done. Rows
are made only for what is on screen, so a run of thousands of tasks draws as fast as a
small one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text

from longshot.dashboard.draw import amount, duration
from longshot.dashboard.keys import ViewState
from longshot.dashboard.board import ACTIVE, FAILED, Board, TaskRow
from longshot.types import DONE

STATUS_STYLE = {
    "pending": "dim", "running": "bold blue", "merging": "cyan", "decomposed": "magenta", "landed": "green",
    "completed": "green", "unchanged": "green dim", "superseded": "green dim", "partial": "yellow",
    "blocked": "red", "failed": "bold red", "cancelled": "dim red",
}
GLYPH = {"pending": "○", "running": "●", "merging": "◐", "decomposed": "◆", "partial": "◑", "cancelled": "⊘"}

Row = Callable[[], tuple[Text, Text, Text, Text]]
"""A row of the tree (label, status, timer, detail), made only when it is on screen."""


def tree_rows(state: Board, view: ViewState, now: float) -> list[Row]:
    """The tree flattened to rows, down to ``view.depth`` levels (1: the planner and reconciler alone)."""
    thinking = state.planner_since is not None
    planner = (Text("◆ planner", style="bold magenta"),
               Text("thinking" if thinking else "idle", style="bold magenta" if thinking else "dim"),
               Text(duration(now - state.planner_since) if state.planner_since is not None else ""),
               Text(f"sprint {state.planner_iteration} · {state.planner_tasks} tasks planned", style="dim"))
    roots = state.roots()
    groups = [(planner, [t for t in roots if t.kind != "fix"])]
    fixes = [t for t in roots if t.kind == "fix"]
    if fixes or state.sweep is not None:
        sw = state.sweep
        green = sw is None or sw.green
        what = "" if sw is None else f"sweep {sw.sweep}: " + (", ".join(sw.failures[:3]) or "no failures")
        groups.append(((Text("◆ reconciler", style="bold yellow"),
                        Text("-" if sw is None else "green" if green else "red", style="green" if green else "red"),
                        Text(""), Text(what, style="dim")), fixes))
    out: list[Row] = []
    for head, children in groups:
        out.append(partial(lambda h: h, head))
        if view.depth > 1:
            _branch(state, view, now, children, "", 2, out)
    return out


def _order(row: TaskRow) -> int:
    if row.status in ACTIVE:
        return 0
    if row.status == "pending":
        return 1
    return 3 if row.status in DONE else 2


def _branch(state: Board, view: ViewState, now: float, rows: list[TaskRow], prefix: str, level: int,
            out: list[Row]) -> None:
    ordered = sorted(rows, key=_order)
    for i, row in enumerate(ordered):
        last = i == len(ordered) - 1
        out.append(partial(task_row, row, view, now, prefix + ("└─ " if last else "├─ ")))
        if row.children and level < view.depth:
            kids = [state.tasks[c] for c in row.children if c in state.tasks]
            _branch(state, view, now, kids, prefix + ("   " if last else "│  "), level + 1, out)


def task_row(row: TaskRow, view: ViewState, now: float, prefix: str) -> tuple[Text, Text, Text, Text]:
    """(tree label, status, timer, latest step or handoff figures) of one task."""
    style = STATUS_STYLE.get(row.status, "")
    glyph = GLYPH.get(row.status, "✓" if row.status in DONE else "✗" if row.status in FAILED else "·")
    label = Text(prefix, style="dim")
    label.append(f"{glyph} {row.id}", style=style)
    timer = Text("")
    if row.started is not None:
        end = row.worked or (row.ended if row.status not in ACTIVE else None) or now
        took = end - row.started
        timer_style = "dim" if row.worked or row.status not in ACTIVE else \
            "bold red" if took > view.alert_after else "yellow" if took > view.warn_after else "bold"
        timer = Text(duration(took), style=timer_style)
    detail = Text("")
    if row.handoff is not None:
        m = row.handoff
        detail.append(f"+{m.lines_added}/-{m.lines_removed} {row.files}f {amount(row.tokens)} tok", style="dim")
        if row.seconds_to_land is not None:
            detail.append(f" · landed in {row.seconds_to_land:.1f}s", style="green")
        elif row.reason and row.status not in DONE:
            detail.append(f" · {row.reason.splitlines()[0][:120]}", style="red")
    elif row.status == "running" and row.step:
        detail.append(f"#{row.steps} ", style="dim")
        detail.append(row.step.splitlines()[0][: 300 if view.debug else 100], style="" if row.step_ok else "red")
        if row.output:
            detail.append(f" · a command printing, {amount(row.output)}B so far", style="dim")
    elif row.reason:
        detail.append(row.reason.splitlines()[0][:120], style="red" if row.status in FAILED else "dim")
    else:
        detail.append(row.description.splitlines()[0][:100] if row.description else "", style="dim italic")
    return label, Text(row.status, style=style), timer, detail
