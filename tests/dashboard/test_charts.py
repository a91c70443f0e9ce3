"""The report's charts (dashboard/charts.py): drawn in a child process, bounded, coloured by outcome.

Logs are written from typed events; the charts are drawn by the real child
(``python -m longshot.dashboard.charts``) or by `draw`, and read back as PNG pixels.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from longshot.dashboard.board import Board
from longshot.dashboard.charts import COLOURS, MAX_HEIGHT, draw, draw_in_child
from longshot.events import (
    Event, HandoffReceived, MergeLanded, RunFinished, RunStarted, TaskCreated, TaskStatusChanged, read_events,
)
from longshot.types import Handoff

T0 = 1_800_000_000.0
CAPTIONS = {"progress.png": "Landed work and busy workers over time",
            "time_to_land.png": "Time to land per task: the worker's time, then the wait to land",
            "timeline.png": "Every task from start to end"}


def task_events(task: str, at: float, end: str | None) -> list[Event]:
    """A task created at ``at``; ``end`` None: never started; "landed": handed off and landed; else its last status."""
    events: list[Event] = [TaskCreated(ts=at, task_id=task, description=task, branch=f"worker/{task}")]
    if end is None:
        return events
    events.append(TaskStatusChanged(ts=at + 1, task_id=task, before="pending", after="running"))
    if end != "landed":
        return events + [TaskStatusChanged(ts=at + 20, task_id=task, before="running", after=end)]
    handoff = Handoff(task_id=task, status="complete", summary="done")
    return events + [HandoffReceived(ts=at + 10, task_id=task, handoff=handoff),
                     TaskStatusChanged(ts=at + 10, task_id=task, before="running", after="merging"),
                     MergeLanded(ts=at + 20, task_id=task, commit="c" * 40, branch=f"worker/{task}",
                                 seconds_to_land=10),
                     TaskStatusChanged(ts=at + 20, task_id=task, before="merging", after="landed")]


def write_run(path: Path, ends: list[str | None], started: bool = True) -> Path:
    events: list[Event] = [RunStarted(ts=T0, request="charts", repo="r", target_branch="main", max_workers=4)] \
        if started else []
    for i, end in enumerate(ends):
        events += task_events(f"t{i:04d}", T0 + i, end)
    events.append(RunFinished(ts=T0 + len(ends) + 30, exit_code=0, green=True, duration_s=len(ends) + 30.0))
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    return path


def pixels(png: Path, colour: str) -> int:
    """How many pixels of ``png`` are exactly ``colour`` (the inside of bars is drawn without blending)."""
    from matplotlib import image

    rgb = (image.imread(png)[:, :, :3] * 255).round().astype(int)
    want = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return int((rgb == want).all(axis=2).sum())


def test_the_child_draws_every_chart_into_a_new_folder_and_names_it(tmp_path: Path) -> None:
    log = write_run(tmp_path / "run-a.ndjson", ["landed", "landed", "failed"])
    folder = tmp_path / "deep" / "report-a"

    charts = draw_in_child(log, folder)

    assert charts == list(CAPTIONS.items())
    for name, _ in charts:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("ends, drawn", [
    ([None, None], ["progress.png"]),
    (["failed", "running", "blocked"], ["progress.png", "timeline.png"]),
    (["landed"], ["progress.png", "time_to_land.png", "timeline.png"]),
    ([], ["progress.png"]),
])
def test_a_chart_with_nothing_to_show_is_left_out(tmp_path: Path, ends: list[str | None], drawn: list[str]) -> None:
    log = write_run(tmp_path / "run-a.ndjson", ends)

    charts = draw_in_child(log, tmp_path)

    assert [name for name, _ in charts] == drawn and sorted(p.name for p in tmp_path.glob("*.png")) == sorted(drawn)


def test_the_child_fails_loudly_on_a_log_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        draw_in_child(tmp_path / "run-missing.ndjson", tmp_path / "out")

    assert "run-missing.ndjson" in failed.value.stderr and not (tmp_path / "out").exists()


def test_green_is_only_for_work_that_landed(tmp_path: Path) -> None:
    nothing_landed = write_run(tmp_path / "run-bad.ndjson", ["failed", "blocked", "cancelled", "partial", "running"])
    some_landed = write_run(tmp_path / "run-good.ndjson", ["landed", "failed"])
    draw_in_child(nothing_landed, tmp_path / "bad")
    draw_in_child(some_landed, tmp_path / "good")

    bad, good = tmp_path / "bad" / "timeline.png", tmp_path / "good" / "timeline.png"
    assert pixels(bad, COLOURS["done"]) == 0
    for outcome in ("failed", "partial", "other"):
        assert pixels(bad, COLOURS[outcome]) > 100, outcome
    assert pixels(good, COLOURS["done"]) > 100 and pixels(good, COLOURS["failed"]) > 100
    assert pixels(good, COLOURS["partial"]) < 50 and pixels(good, COLOURS["other"]) < 50  # no bar, a stray edge


def test_charts_grow_with_the_task_count_up_to_the_cap_and_keep_their_width(tmp_path: Path) -> None:
    from matplotlib import image

    heights = []
    for n in (1, 4, 10, 40, 41, 300):
        folder = tmp_path / str(n)
        folder.mkdir()
        state = board(write_run(tmp_path / f"run-{n}.ndjson", ["landed"] * n))
        assert [name for name, _ in draw(state, folder)] == list(CAPTIONS)
        shapes = {name: image.imread(folder / name).shape[:2] for name in CAPTIONS}
        assert all(cols == 800 and rows <= MAX_HEIGHT * 100 for rows, cols in shapes.values()), (n, shapes)
        assert shapes["time_to_land.png"][0] == shapes["timeline.png"][0]
        heights.append(shapes["timeline.png"][0])
    assert heights == sorted(heights) and heights[0] == 250 and heights[-1] == MAX_HEIGHT * 100


def test_a_log_without_its_start_is_drawn_from_its_first_task(tmp_path: Path) -> None:
    state = board(write_run(tmp_path / "run-a.ndjson", ["landed", "failed"], started=False))

    assert state.started is None
    assert [name for name, _ in draw(state, tmp_path)] == list(CAPTIONS)
    assert pixels(tmp_path / "timeline.png", COLOURS["done"]) > 100


def board(log: Path) -> Board:
    state = Board()
    events: list[Any] = list(read_events(log))
    for event in events:
        state.apply(event)
    return state
