"""Where recorded events come from: a run log replayed with its timing, or the newest log followed.

`replay` hands the events of a log to a sink with their original spacing divided by
``speed`` (0 means at once). `follow` tails the newest ``run-*.ndjson`` of a directory
and switches to a newer one when it appears. Both stop when ``stop`` is set.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from longshot.events import EVENT_TYPES, Event, parse_event
from longshot.errors import LongshotError

LOG_GLOB = "run-*.ndjson"
KNOWN_TYPES = frozenset(cls.model_fields["type"].default for cls in EVENT_TYPES)


def log_problem(path: Path) -> str | None:
    """Why ``path`` is not a run log (so nothing is read from it or written beside it), or None."""
    if not path.exists():
        return f"no such run log: {path}"
    if not path.is_file():
        return f"{path} is not a file, so not a run log"
    try:
        with path.open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), None)
    except (OSError, UnicodeDecodeError) as e:
        return f"{path} cannot be read as a run log ({type(e).__name__})"
    if first is None:
        return f"{path} is empty, not a run log"
    try:
        data = json.loads(first)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("type") not in KNOWN_TYPES:
        return f"{path} is not a run log: its first line is not a Longshot event"
    return None


class ReplayClock:
    """The recorded time a replay has reached: starts at the first event, runs ``speed`` times faster."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.origin: float | None = None
        self.started = time.monotonic()
        self.last = 0.0

    def begin(self, ts: float) -> None:
        self.origin, self.started = ts, time.monotonic()

    def __call__(self) -> float:
        if self.origin is None:
            return self.last
        if self.speed <= 0:
            return self.last
        return max(self.last, self.origin + (time.monotonic() - self.started) * self.speed)


def parse_lines(lines: Iterator[str]) -> Iterator[Event]:
    """Events of NDJSON lines: unknown types and torn or non-JSON lines are skipped."""
    for line in lines:
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except (json.JSONDecodeError, ValueError):
            continue
        if event is not None:
            yield event


def replay(path: Path, sink: Callable[[Event], None], *, speed: float = 1.0, clock: ReplayClock | None = None,
           stop: threading.Event | None = None) -> int:
    """Send the log's events to ``sink`` at ``speed`` times their recorded pace; how many were sent."""
    if not path.is_file():
        raise LongshotError(f"no such run log: {path}")
    clock = clock or ReplayClock(speed)
    stop = stop or threading.Event()
    sent = 0
    with path.open(encoding="utf-8") as f:
        for event in parse_lines(iter(f)):
            if clock.origin is None:
                clock.begin(event.ts)
            if speed > 0 and clock.origin is not None:
                due = clock.started + (event.ts - clock.origin) / speed
                if stop.wait(max(0.0, due - time.monotonic())):
                    return sent
            elif stop.is_set():
                return sent
            clock.last = max(clock.last, event.ts)
            sink(event)
            sent += 1
    return sent


def newest_log(directory: Path) -> Path | None:
    """The newest run log in ``directory`` (names sort by start time; mtime breaks ties)."""
    logs = list(directory.glob(LOG_GLOB)) if directory.is_dir() else []
    return max(logs, key=lambda p: (p.name, p.stat().st_mtime)) if logs else None


def follow(directory: Path, sink: Callable[[Event], None], on_switch: Callable[[Path], None], *,
           stop: threading.Event, poll: float = 0.25) -> None:
    """Tail the newest run log of ``directory``; call ``on_switch`` and start over when a newer one appears."""
    current: Path | None = None
    handle = None
    pending = ""
    try:
        while not stop.is_set():
            newest = newest_log(directory)
            if newest is not None and newest != current:
                if handle is not None:
                    handle.close()
                current, handle, pending = newest, newest.open(encoding="utf-8"), ""
                on_switch(newest)
            if handle is not None:
                chunk = handle.read()
                if chunk:
                    pending += chunk
                    complete, _, pending = pending.rpartition("\n")
                    for event in parse_lines(iter(complete.splitlines())):
                        sink(event)
                    continue
            stop.wait(poll)
    finally:
        if handle is not None:
            handle.close()
