"""The run report: Markdown whose figures match the event log, and charts that are real PNG images."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from longshot.dashboard.report import load, report_dir, write_report
from longshot.events import read_events

from dashboard.report_check import check_report, figures

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"


def test_the_report_of_the_demo_log_matches_its_events(tmp_path: Path) -> None:
    log = Path(shutil.copy(LOG, tmp_path / "run-20260101T000000Z-abcd.ndjson"))

    report = write_report(log)

    assert report == tmp_path / "report-20260101T000000Z-abcd" / "report.md" == report_dir(log) / "report.md"
    events = list(read_events(log))
    check_report(report, events)
    text = report.read_text()
    assert "| stats | task | - | superseded |" in text or "| truncate | task | - | superseded |" in text
    assert "## Warnings and errors" in text and "already failing when the run started" in text


def test_a_log_cut_before_the_end_still_gives_a_report(tmp_path: Path) -> None:
    lines = LOG.read_text().splitlines(keepends=True)
    log = tmp_path / "run-cut.ndjson"
    log.write_text("".join(lines[: len(lines) // 2]))

    text = write_report(log).read_text()

    assert figures(text)["exit status"] == "unfinished (the log ends before run.finished)"
    assert (tmp_path / "report-cut" / "progress.png").is_file()


def many_tasks_log(path: Path, n: int) -> Path:
    """A run log of ``n`` tasks that each start, hand off and land (one in ten fails)."""
    from longshot.events import (
        MergeLanded, RunFinished, RunStarted, TaskCreated, TaskStatusChanged,
    )
    t0 = 1_800_000_000.0
    events: list[Any] = [RunStarted(ts=t0, run_id="many", request="many tasks", repo="r", target_branch="main",
                                    max_workers=100)]
    for i in range(n):
        task, start = f"task-{i:04d}", t0 + i * 0.1
        events += [TaskCreated(ts=start, task_id=task, description=f"task {i}", branch=f"worker/{task}"),
                   TaskStatusChanged(ts=start, task_id=task, before="pending", after="running")]
        if i % 10 == 9:
            events.append(TaskStatusChanged(ts=start + 5, task_id=task, before="running", after="failed"))
        else:
            events += [TaskStatusChanged(ts=start + 5, task_id=task, before="running", after="merging"),
                       MergeLanded(ts=start + 6, task_id=task, commit="d" * 40, branch=f"worker/{task}",
                                   seconds_to_land=1.0),
                       TaskStatusChanged(ts=start + 6, task_id=task, before="merging", after="landed")]
    events.append(RunFinished(ts=t0 + n * 0.1 + 10, exit_code=1, green=False, duration_s=n * 0.1 + 10))
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    return path


def test_charts_keep_a_bounded_size_however_many_tasks(tmp_path: Path) -> None:
    from matplotlib import image

    from longshot.dashboard.charts import LABELLED_ROWS, MAX_HEIGHT

    heights = {}
    for n in (LABELLED_ROWS // 4, 500):
        log = many_tasks_log(tmp_path / f"run-{n}.ndjson", n)
        text = write_report(log).read_text()
        for name in ("timeline.png", "time_to_land.png", "progress.png"):
            png = report_dir(log) / name
            assert f"({name})" in text, (n, name)
            rows, cols = image.imread(png).shape[:2]
            assert cols == 800 and rows <= MAX_HEIGHT * 100, (n, name, rows, cols)
            heights[(n, name)] = rows
    # A small run keeps a bar and a label per task: its chart is shorter than the capped one.
    assert heights[(LABELLED_ROWS // 4, "timeline.png")] < heights[(500, "timeline.png")] == MAX_HEIGHT * 100


def test_the_summary_box_wraps_long_reasons_and_never_says_green_for_exit_1(tmp_path: Path) -> None:
    """On a console that soft-wraps (the CLI's, so that paths are never broken) the box must
    still wrap its own text: a long refusal was once cut at the border, mid-word."""
    import io

    from rich.console import Console

    from longshot.dashboard.report import print_summary
    from longshot.events import RunFinished, RunStarted

    reason = "speedup-chunked failed: " + " ".join(f"tests/test_more.py::ChunkedTests::test_{i}" for i in range(12))
    log = tmp_path / "run-x.ndjson"
    events = [RunStarted(ts=1.0, run_id="x", request="r", repo="r", target_branch="main", max_workers=2),
              RunFinished(ts=9.0, exit_code=1, green=True, duration_s=8.0, summary=reason + "\n- not landed: a")]
    log.write_text("".join(e.model_dump_json() + "\n" for e in events))
    out = io.StringIO()
    print_summary(Console(file=out, width=80, soft_wrap=True, highlight=False), load(log))
    text = out.getvalue()
    box = [line for line in text.splitlines() if line.startswith("│")]
    assert box and all(len(line) <= 80 for line in text.splitlines())
    inside = " ".join(line.strip("│ ") for line in box)
    assert "tests/test_more.py::ChunkedTests::test_11" in inside  # the end of the long reason is there, not cut
    assert "1 (green)" not in text
    assert "checks green, but work is left unlanded or unproven" in " ".join(inside.split())
