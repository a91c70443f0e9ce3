"""Events: frozen, round-trip through NDJSON, unknown types skipped, catalogue complete."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from longshot.events import (
    EVENT_TYPES, Bus, Event, MemorySink, NdjsonSink, RunWarning, TaskCreated, WarningCode, parse_event, read_events,
)
from longshot.types import Handoff
from longshot.events import HandoffReceived

DOC = Path(__file__).resolve().parents[1] / "docs" / "events.md"


def test_events_are_frozen() -> None:
    event = RunWarning(message="x")
    with pytest.raises(ValidationError):
        event.message = "y"  # type: ignore[misc]


def test_bus_stamps_run_id_and_log_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "run.ndjson"
    sink, memory = NdjsonSink.open(path), MemorySink()
    bus = Bus("run-1", [sink, memory])
    bus.emit(TaskCreated(task_id="t1", description="d", branch="worker/t1"))
    bus.emit(HandoffReceived(task_id="t1", handoff=Handoff(task_id="t1", status="complete", summary="s")))
    sink.close()
    with path.open("a") as f:
        f.write('{"type": "from.the.future", "ts": 1}\n{"type": "warning", "mess')  # unknown + torn line
    events = list(read_events(path))
    assert [e.type for e in events] == ["task.created", "handoff.received"]
    assert all(e.run_id == "run-1" for e in events)
    assert events == memory.events


def test_catalogue_lists_every_event_type() -> None:
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", DOC.read_text().split("## Warning codes")[0], re.MULTILINE))
    defined = {cls.model_fields["type"].default for cls in EVENT_TYPES}
    assert documented == defined


def test_every_event_class_is_in_the_union() -> None:
    """An event class defined in any events module but left out of AnyEvent would not parse back."""
    import longshot.bus
    import longshot.events
    import longshot.llm_events
    import longshot.merge_events

    def subclasses(cls: type[Event]) -> set[type[Event]]:
        return {s for c in cls.__subclasses__() for s in {c, *subclasses(c)}}

    homes = {m.__name__ for m in (longshot.bus, longshot.events, longshot.llm_events, longshot.merge_events)}
    ours = {c for c in subclasses(Event) if c.__module__ in homes}
    assert ours - set(EVENT_TYPES) == set()
    for cls in ours:
        assert getattr(longshot.events, cls.__name__) is cls, f"{cls.__name__} is not importable from longshot.events"


def test_every_warning_code_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_.]+)` \| [^|]+ \|$", DOC.read_text().split("## Warning codes")[1],
                                re.MULTILINE))
    assert documented == set(get_args(WarningCode))


def test_every_warning_the_run_emits_names_its_code() -> None:
    """A free-text warning cannot be told apart by consumers: each RunWarning(...) in src passes code=."""
    src = Path(__file__).resolve().parents[1] / "src" / "longshot"
    bare = [f"{p.relative_to(src)}:{node.lineno}" for p in sorted(src.rglob("*.py"))
            for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RunWarning"
            and not any(k.arg == "code" for k in node.keywords)]
    assert bare == []


def test_a_warning_from_an_old_log_still_reads() -> None:
    event = parse_event('{"type": "warning", "ts": 1, "message": "from before codes"}')
    assert isinstance(event, RunWarning) and event.code == "other"
