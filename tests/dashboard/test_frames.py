"""What a user reads on the dashboard's frame (view.py, tree.py, draw.py) at fixed terminal sizes.

States are folded from typed events by the real reducer; frames are printed on a recording
rich console of a fixed size and read back as text: names, figures, hints, no markup
shown as text, nothing wrapped, no row wider than the terminal.
"""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.text import Text

from longshot.dashboard.board import Board
from longshot.dashboard.draw import amount, box, cell, cost_text, duration, pairs
from longshot.dashboard.keys import ViewState
from longshot.dashboard.tree import tree_rows
from longshot.dashboard.view import KEYS_HELP, debug_line, progress_bar, render
from longshot.events import (
    Event, FeatureStatus, GateResult, HandoffReceived, LLMUsage, MergeBatch, MergeHealth, MergeLanded,
    PlannerRequested, RunFinished, RunInterrupted, RunStarted, RunWarning, SweepFinished, TaskCreated,
    TaskStatusChanged, WorkerOutput, WorkerStep,
)
from longshot.types import Handoff, HandoffMetrics


def board(*events: Event, **start: object) -> Board:
    state = Board()
    fields: dict[str, object] = {"request": "build it", "repo": "x", "target_branch": "main", "max_workers": 4, **start}
    for event in (RunStarted(ts=0, run_id="run-1", **fields), *events):  # type: ignore[arg-type]
        state.apply(event)
    return state


def created(task: str, ts: float = 1, **kw: object) -> TaskCreated:
    fields: dict[str, object] = {"description": f"do {task}", **kw}
    return TaskCreated(ts=ts, task_id=task, branch=f"worker/{task}", **fields)  # type: ignore[arg-type]


def status(task: str, before: str, after: str, ts: float = 2, reason: str = "") -> TaskStatusChanged:
    return TaskStatusChanged(ts=ts, task_id=task, before=before, after=after, reason=reason)


def frame(state: Board, view: ViewState | None = None, now: float = 10, width: int = 140,
          height: int = 40) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(render(state, view or ViewState(), now, height, width))
    return console.export_text().splitlines()


@pytest.mark.parametrize("width, height", [(60, 12), (80, 24), (140, 40), (211, 63)])
def test_every_frame_fills_the_terminal_exactly_whatever_the_text(width: int, height: int) -> None:
    long = "a very long request " * 30 + "日本語のテキスト"
    state = board(created("x" * 90), created("wide-日本語" * 5), status("x" * 90, "pending", "running"),
                  RunWarning(ts=3, message=long), request=long)

    for tab in (0, 1):
        rows = frame(state, ViewState(tab=tab), width=width, height=height)
        assert len(rows) == height
        assert all(Text(row).cell_len == width for row in rows), [Text(r).cell_len for r in rows]


@pytest.mark.parametrize("end, shown, hidden", [
    (None, "PLANNING ●", "FINISHED"),
    (RunFinished(ts=20, exit_code=0, green=True), "✓ FINISHED", "PLANNING"),
    (RunFinished(ts=20, exit_code=3, green=False), "✗ EXIT 3", "FINISHED"),
    (RunInterrupted(ts=20, signal="SIGINT"), "INTERRUPTED", "FINISHED"),
])
def test_the_header_says_how_the_run_stands(end: Event | None, shown: str, hidden: str) -> None:
    events: list[Event] = [PlannerRequested(ts=5, iteration=2)] + ([end] if end else [])
    header = "\n".join(frame(board(*events), now=65)[:3])

    assert shown in header and hidden not in header and "run-1" in header and "build it" in header
    if end is None:
        assert "PLANNING ●" in header and "1:00" in header  # thinking for a minute


@pytest.mark.parametrize("budget, usage, cost", [
    ({}, 0.5, "Cost            $0.5000"),
    ({}, 12.345, "Cost            $12.35"),
    ({"max_cost_usd": 2.0}, 0.5, "Cost            $0.5000 of $2 (25%)"),
    ({"max_tokens": 4000}, 0.5, "Tokens          2.0k (50% of 4.0k)"),
    ({"unpriced_models": ["a-model-with-a-long-name"]}, 0.0, "Cost            unknown (no price)  "),
    ({"unpriced_models": ["a-model-with-a-long-name"]}, 0.5, "Cost            ≥ $0.5000 (no price)  "),
])
def test_the_cost_is_measured_against_the_budget_and_never_cut(budget: dict[str, object], usage: float,
                                                               cost: str) -> None:
    """The left panel gives a value 24 cells: what does not fit there is said shorter, not cut (the alerts
    name a model without a price)."""
    state = board(LLMUsage(ts=2, role="worker", model="m1", prompt_tokens=1500, completion_tokens=500,
                           cost_usd=usage), **budget)

    assert any(cost in row for row in frame(state)), [row[:44] for row in frame(state)]


def test_the_merge_queue_panel_shows_the_gate_the_batch_the_sweep_and_the_features() -> None:
    state = board(created("a"), MergeBatch(ts=3, size=3, ok=False),
                  MergeHealth(ts=3, queue_depth=2, landed=4, failed=1, conflicts=0, flakes=2, p50_seconds_to_land=3.5,
                              p95_seconds_to_land=9.25, mean_batch=2.5),
                  GateResult(ts=4, task_id="a", commit="c" * 40, ok=False, preexisting=["t1", "t2"]),
                  SweepFinished(ts=5, sweep=3, commit="d" * 40, green=False, failures=["test_x", "test_y"]),
                  FeatureStatus(ts=6, feature="F1", status="verified"),
                  FeatureStatus(ts=6, feature="F2", status="failing"))
    text = "\n".join(frame(state, now=64, height=44))

    for shown in ("Queue depth     2", "Time to land    p50 3.5s · p95 9.2s", "Batch           last 3 ✗ · mean 2.5",
                  "Flakes          2", "Gate            ✗ refused a 1:00 ago", "Sweep           #3 red (2)",
                  "Features        1 verified · 0 claimed", "                1 failing · 0 missing"):
        assert shown in text, shown
    assert "◆ reconciler" in text and "sweep 3: test_x, test_y" in text


def test_no_text_from_outside_is_read_as_markup_anywhere_on_the_frame() -> None:
    nasty = ["[bold]loud[/]", "a [/] b", "[link=http://x]y[/link]", "[@click=quit]q[/]", "x [red", "a]b[c"]
    events: list[Event] = []
    for i, text in enumerate(nasty):
        events += [created(f"t{i}[red]", description=text), RunWarning(ts=3, message=text),
                   WorkerStep(ts=4, task_id=f"t{i}[red]", step=1, tool="bash", ok=True, detail=text)]
    state = board(*events)

    tasks, activity = "\n".join(frame(state, height=60)), "\n".join(frame(state, ViewState(tab=1), height=60))
    for text in nasty:
        assert f"warning: {text}" in activity, text
    assert "t0[red]" in tasks and "t5[red]" in tasks
    step = next(e for e in state.recent if isinstance(e, WorkerStep) and e.detail == "a]b[c")
    assert debug_line(state, step).plain.endswith('worker.step t5[red] {"step":1,"tool":"bash","ok":true,'
                                                  '"detail":"a]b[c"}')
    # a "[" in the task id and a "]" in the fields, each harmless alone, must not make a tag together
    split = WorkerStep(ts=4, task_id="a[b", step=2, tool="bash", ok=True, detail="x]")
    assert debug_line(state, split).plain.endswith('worker.step a[b {"step":2,"tool":"bash","ok":true,"detail":"x]"}')


def test_the_activity_tab_scrolls_and_says_which_rows_it_shows() -> None:
    state = board(*[RunWarning(ts=i, message=f"warning number {i}") for i in range(1, 101)],
                  LLMUsage(ts=101, role="planner", model="m", prompt_tokens=7, completion_tokens=3))
    view = ViewState(tab=1)

    first = "\n".join(frame(state, view, height=30))
    assert "warning number 100" in first and "rows 1-20 of 101" in first and "llm.usage" not in first
    view.scroll["activity"] = 10_000  # far past the end: held at the last page
    last = "\n".join(frame(state, view, height=30))
    assert "rows 82-101 of 101" in last and "longshot build it" in last and view.scroll["activity"] == 81
    view.key("d")  # details: every event, those without a line of their own with their fields
    view.key("home")
    details = "\n".join(frame(state, view, height=30))
    assert 'llm.usage  {"role":"planner","model":"m",' in details and "rows 1-20 of 102" in details


def test_the_progress_bar_splits_its_cells_by_outcome() -> None:
    state = board(*[created(t) for t in "abcdefgh"], status("a", "pending", "landed"), status("b", "pending", "landed"),
                  status("c", "pending", "failed"), status("d", "pending", "running"),
                  status("e", "pending", "cancelled"), status("f", "pending", "partial"))

    bar = progress_bar(state, width=40)

    # green: landed; red: failed, cancelled or partial (not a success); blue: active; grey: pending
    assert bar.plain == "█" * 25 + "▒" * 5 + "░" * 10 + " 2/8 done · 1 failed · 1 active · 2 pending"
    assert [(span.end - span.start, span.style) for span in bar.spans][:3] == [(10, "green"), (15, "red"), (5, "blue")]
    assert progress_bar(board(), width=10).plain.startswith("░" * 10 + " 0/0 done")
    assert KEYS_HELP in "\n".join(frame(state, ViewState(footer="replay ×2 · q quits")))


def tree_text(state: Board, depth: int = 4, now: float = 100) -> list[str]:
    return [" ".join(part.plain for part in make()) for make in tree_rows(state, ViewState(depth=depth), now)]


def test_the_tree_puts_work_in_progress_first_and_done_work_last() -> None:
    state = board(*[created(t) for t in ("done", "failed", "waiting", "merging", "running")],
                  status("done", "pending", "landed"), status("failed", "pending", "failed", reason="tests fail\nmore"),
                  status("merging", "pending", "merging"), status("running", "pending", "running"))

    rows = tree_text(state)

    assert [r.split()[1:3] for r in rows[1:]] == [["◐", "merging"], ["●", "running"], ["○", "waiting"],
                                                   ["✗", "failed"], ["✓", "done"]]  # active ones in planned order
    assert rows[-2].endswith("tests fail") and "more" not in rows[-2]
    assert tree_text(state, depth=1) == rows[:1]


def test_a_task_row_shows_its_step_then_its_handoff_figures_then_its_landing() -> None:
    metrics = HandoffMetrics(lines_added=10, lines_removed=2, tokens_used=1500)
    handoff = Handoff(task_id="a", status="complete", summary="s", files_changed=["x", "y", "z"], metrics=metrics)
    steps = [created("a"), status("a", "pending", "running"), WorkerStep(ts=3, task_id="a", step=3, tool="bash",
                                                                             ok=False, detail="make test\nsecond"),
             WorkerOutput(ts=4, task_id="a", bytes=2048)]
    assert tree_text(board(*steps))[1].endswith("#3 bash make test · a command printing, 2.0kB so far")
    steps += [HandoffReceived(ts=50, task_id="a", handoff=handoff), status("a", "running", "merging", ts=50)]
    assert tree_text(board(*steps))[1].endswith("0:48 +10/-2 3f 1.5k tok")
    steps += [MergeLanded(ts=54, task_id="a", commit="c" * 40, branch="worker/a", seconds_to_land=4.0),
              status("a", "merging", "landed", ts=54)]
    assert tree_text(board(*steps))[1].endswith("0:48 +10/-2 3f 1.5k tok · landed in 4.0s")


def test_fix_tasks_hang_under_the_reconciler_and_subtasks_under_their_parent() -> None:
    state = board(created("big"), created("part", parent="big"), created("fix-1", kind="fix"),
                  SweepFinished(ts=5, sweep=1, commit="c" * 40, green=True))

    rows = tree_text(state)

    assert rows[0].startswith("◆ planner idle") and rows[1].startswith("└─ ○ big")
    assert rows[2].startswith("   └─ ○ part") and rows[3].startswith("◆ reconciler green")
    assert "sweep 1: no failures" in rows[3] and rows[4].startswith("└─ ○ fix-1")
    assert tree_text(state, depth=2) == [rows[0], rows[1], rows[3], rows[4]]


@pytest.mark.parametrize("cost, unpriced, shown", [
    (0.12345, [], "$0.1235"), (0.0, ["a", "b"], "unknown (no price for a, b)"),
    (0.5, ["a"], "at least $0.5000 (no price for a)"),
])
def test_a_cost_is_never_a_bare_zero_when_a_price_is_unknown(cost: float, unpriced: list[str], shown: str) -> None:
    assert cost_text(cost, unpriced) == shown


def test_drawing_primitives_at_their_limits() -> None:
    assert (duration(-5), duration(59.9), amount(-1500), amount(999), amount(2.5e9)) == ("0:00", "0:59", "-1.5k",
                                                                                           "999", "2.5G")
    assert cell("日本語テキスト", 5).cell_len == 5 and cell("x", 0).plain == ""
    assert cell("ab", 4, right=True).plain == "  ab"
    panel = box("a title far too long for its panel", [Text("row")] * 9, 20, 6, "red",
                subtitle=Text("a subtitle too long"))
    assert [row.cell_len for row in panel] == [20] * 6 and panel[-1].plain.endswith("─╯")
    assert panel[0].plain.startswith("╭─ a title") and "…" in panel[0].plain and "…" in panel[-1].plain
    assert [r.plain for r in pairs([("Label", "value")], 30, label=8)] == ["Label    value                "[:26]]
