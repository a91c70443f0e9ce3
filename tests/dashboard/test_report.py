"""The run report: Markdown whose figures match the event log, and charts that are real PNG images."""

from __future__ import annotations

import shutil
from pathlib import Path

from longshot.dashboard.report import report_dir, write_report
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
