"""Checks of a run report against its event log, shared by the report tests and the demo's test."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from longshot.events import (
    CheckFinished, Event, GateResult, LLMUsage, MergeFailed, MergeLanded, RunFinished, TaskCreated,
)


def figures(markdown: str) -> dict[str, str]:
    """The Outcome table of a report as {figure: value}."""
    section = markdown.split("## Outcome", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| ([^|]+?) \| (.*?) \|$", section, re.MULTILINE)[1:])


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 200, (path, width, height)
    from matplotlib import image

    assert image.imread(path).shape[:2] == (height, width)  # it decodes, not just starts like a PNG


def check_report(report: Path, events: list[Event]) -> None:
    """Every figure of the report against what the events say, counted here independently."""
    text = report.read_text()
    got = figures(text)
    finished = next(e for e in events if isinstance(e, RunFinished))
    created = [e for e in events if isinstance(e, TaskCreated)]
    failed = [e for e in events if isinstance(e, MergeFailed)]
    assert got["landed commits"] == str(sum(isinstance(e, MergeLanded) for e in events))
    assert got["merge failures"] == str(len(failed))
    assert got["merge conflicts"] == str(sum(bool(e.conflicts) for e in failed))
    assert got["gate refusals"] == str(sum(isinstance(e, GateResult) and not e.ok for e in events))
    assert got["reconciler fix tasks"] == str(sum(e.kind == "fix" for e in created))
    assert got["conflict-fix tasks"] == str(sum(e.kind == "conflict-fix" for e in created))
    assert got["tasks"].startswith(f"{len(created)} (")
    assert got["tokens"] == f"{finished.tokens:,}"
    assert got["tokens"] == f"{sum(e.prompt_tokens + e.completion_tokens for e in events if isinstance(e, LLMUsage)):,}"
    assert got["cost"] == f"${finished.cost_usd:.4f}"
    checks = [e for e in events if isinstance(e, CheckFinished) and e.task_id is None]
    said = "green" if finished.green else "not green" if checks else "no checks ran"
    assert got["exit status"] == f"{finished.exit_code} ({said})"
    assert got["final checks"] == ", ".join(f"{c.command}: {'ok' if c.ok else 'FAILED'}" for c in checks)
    rows = re.findall(r"^\| ([\w-]+) \| (task|fix|conflict-fix) \|", text, re.MULTILINE)
    assert [task for task, _ in rows] == [e.task_id for e in created]
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["progress.png", "time_to_land.png", "timeline.png"]
    for name in images:
        assert_png(report.parent / name)
