"""The event base class and the bus that carries events to their sinks.

Every stage receives an ``Emit`` callable and reports through it. The `Bus` stamps each
event with the run id and fans it out to its sinks (the NDJSON run log, ``--json``
stdout, the plain printer, the state writer, the monitor). The event classes themselves
are in `longshot.events` (which re-exports everything here).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    """Base of every event: a ``type`` tag, a wall-clock time, the run and maybe a task."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    ts: float = Field(default_factory=time.time)
    run_id: str = ""
    task_id: str | None = None


def new_run_id() -> str:
    """A unique, sortable run id: UTC time plus randomness."""
    return time.strftime("run-%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


Emit = Callable[[Event], None]
"""What every stage is given to report with."""


class Sink(Protocol):
    """Receives every event, in order. Must not raise for a well-formed event."""

    def __call__(self, event: Event) -> None: ...


class Bus:
    """Stamps each event with the run id and hands it to every sink in order."""

    def __init__(self, run_id: str, sinks: list[Sink] | None = None) -> None:
        self.run_id = run_id
        self._sinks: list[Sink] = list(sinks or [])

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def emit(self, event: Event) -> None:
        if not event.run_id:
            event = event.model_copy(update={"run_id": self.run_id})
        for sink in self._sinks:
            sink(event)


class NdjsonSink:
    """Writes one JSON object per line and flushes, so a crash loses at most one line."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    @classmethod
    def open(cls, path: Path) -> "NdjsonSink":
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path.open("a", encoding="utf-8"))

    def __call__(self, event: Event) -> None:
        self._stream.write(event.model_dump_json() + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


class MemorySink:
    """Keeps events in a list (for the end-of-run summary and for tests)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, cls: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]
