"""The runs of a log folder, each followed as its log grows.

`RunLog` reads a ``run-*.ndjson`` incrementally: each `refresh` reads what was appended
since the last one (a torn last line waits for its end), redacts it, parses the typed
events and folds them into a `RunView`. `RunIndex` keeps one per log of the folder, so
the runs list, the run pages and the live stream share one reading of each log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from longshot.dashboard.sources import LOG_GLOB
from longshot.events import Event, parse_event
from longshot.redaction import Redactor
from longshot.web.model import RunView

SILENT_AFTER = 600.0
"""A live run writes at least every HEALTH_CHECK_INTERVAL (10 s): a log quiet for this long
without ``run.finished`` belongs to a run that was killed (``--resume`` picks it up)."""
CHUNK = 4 << 20
"""Bytes read per refresh at most, so a huge log is taken in steps and the server stays responsive."""


def parse_redacted(lines: list[str], redact: Redactor) -> list[Event]:
    """Typed events of NDJSON lines, each line redacted before it is parsed; bad or unknown lines skipped."""
    events = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_event(redact(line))
        except (json.JSONDecodeError, ValueError):
            continue
        if event is not None:
            events.append(event)
    return events


class RunLog:
    """One run log, read as it grows."""

    def __init__(self, path: Path, redact: Redactor) -> None:
        self.path = path
        self.id = path.stem
        self.view = RunView()
        self.version = 0
        """Counts refreshes that brought events: pages compare it to know whether to render again."""
        self._redact = redact
        self._offset = 0
        self._pending = b""

    @property
    def requests_path(self) -> Path:
        """The request log written beside the run log (`longshot.llm.requestlog`)."""
        return self.path.with_name(self.path.name.replace("run-", "requests-", 1))

    @property
    def live(self) -> bool:
        return self.view.state.finished is None

    def refresh(self) -> list[Event]:
        """Read and apply what was appended since the last call; the new events."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size <= self._offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read(min(size - self._offset, CHUNK))
        self._offset += len(data)
        data = self._pending + data
        complete, _, self._pending = data.rpartition(b"\n")
        events = parse_redacted(complete.decode("utf-8", "replace").split("\n"), self._redact)
        for event in events:
            self.view.apply(event)
        if events:
            self.version += 1
        return events

    def modified(self) -> float:
        """When the log was last written to."""
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def events(self) -> list[Event]:
        """Every event of the log from the start (for a replay): read again, not kept in memory."""
        with self.path.open("rb") as f:
            return parse_redacted(f.read().decode("utf-8", "replace").split("\n"), self._redact)


@dataclass(frozen=True)
class RunSummary:
    id: str
    request: str
    started: float | None
    duration_s: float
    status: str
    landed: int
    failed: int
    tasks: int
    cost_usd: float


class RunIndex:
    """Every run log of ``directory``, newest first."""

    def __init__(self, directory: Path, redact: Redactor) -> None:
        self.directory = directory
        self.redact = redact
        self.runs: dict[str, RunLog] = {}

    def scan(self) -> list[RunLog]:
        """Find new logs, bring every log up to date; newest first."""
        if self.directory.is_dir():
            for path in self.directory.glob(LOG_GLOB):
                if path.stem not in self.runs:
                    self.runs[path.stem] = RunLog(path, self.redact)
        for run in self.runs.values():
            while run.refresh():
                pass
        return sorted(self.runs.values(), key=lambda r: r.id, reverse=True)

    def get(self, run_id: str) -> RunLog | None:
        run = self.runs.get(run_id)
        if run is None:
            self.scan()
            run = self.runs.get(run_id)
        elif run.live:
            while run.refresh():
                pass
        return run


def summarize(run: RunLog, now: float | None = None) -> RunSummary:
    """A run's line in the runs list; one without news for `SILENT_AFTER` seconds at ``now`` is ``silent``."""
    s = run.view.state
    f = s.finished
    if f is not None:
        status = "green" if f.exit_code == 0 else f"exit {f.exit_code}"
    elif s.interrupted:
        status = "interrupted"
    elif now is not None and now - run.modified() > SILENT_AFTER:
        status = "silent"
    else:
        status = "running" if s.started is not None else "starting"
    figures = s.figures()
    return RunSummary(id=run.id, request=s.request, started=s.started, duration_s=s.elapsed(),
                      status=status, landed=s.merge_landed, failed=figures.failed, tasks=len(s.tasks),
                      cost_usd=f.cost_usd if f is not None and f.cost_usd else s.cost_usd)
