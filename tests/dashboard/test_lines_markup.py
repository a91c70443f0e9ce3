"""Every field a line of the feed shows is shown whole (dashboard/lines.py), whatever it holds.

Each field is escaped before it goes into a line of rich markup; escaped one by one, a ``[x``
at the end of one field and a ``]`` in the next could still make a tag together, which rich
then swallows with the text between. One event of every described type is made with a ``[x``
in every text field and a ``]`` in every list of texts, and each field must read whole.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from rich.text import Text

from longshot.dashboard.lines import describe
from longshot.events import EVENT_TYPES, ConflictPredicted, Event, TipMerged

from dashboard.event_samples import least


OPTIONAL = (typing.Union, types.UnionType)


def bracketed(cls: type[Event]) -> tuple[Event, dict[str, str]]:
    """An event of ``cls`` whose text fields end in ``[x`` and whose lists of texts hold a ``]``."""
    fields: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for name, f in cls.model_fields.items():
        args = typing.get_args(f.annotation)
        if name in ("type", "ts", "run_id"):
            continue
        if typing.get_origin(f.annotation) is list and args == (str,):
            fields[name] = [f"{name}]y"]
            texts[name] = f"{name}]y"
        elif f.annotation is str or (typing.get_origin(f.annotation) in OPTIONAL and str in args):
            fields[name] = texts[name] = f"{name}[x"
        elif f.is_required():
            fields[name] = least(f.annotation)
    return cls(**fields), texts


DESCRIBED = [cls for cls in EVENT_TYPES if describe(bracketed(cls)[0]) is not None]


@pytest.mark.parametrize("cls", DESCRIBED, ids=lambda c: c.model_fields["type"].default)
def test_no_two_fields_make_a_tag_together(cls: type[Event]) -> None:
    event, texts = bracketed(cls)
    line = describe(event) or ""

    plain = Text.from_markup(line).plain
    shown = {name: text for name, text in texts.items() if text in line.replace("\\[", "[")}
    assert all(text in plain for text in shown.values()), (shown, plain)


def test_the_lines_that_once_lost_text_read_whole() -> None:
    predicted = ConflictPredicted(ts=1, task_id="t", against="task[a", files=["pages/x]", "b.py"])
    merged = TipMerged(ts=1, task_id="t", tip="0123456789abcdef", conflicts=["a]", "pages/[id].tsx"])

    assert Text.from_markup(describe(predicted) or "").plain == \
        "t conflict predicted with task[a: pages/x] lines ?; b.py lines ? (worker told)"
    assert Text.from_markup(describe(merged) or "").plain == \
        "t merged the tip 0123456789 into its checkout, markers to resolve in a], pages/[id].tsx"
    assert len(DESCRIBED) >= 30  # the catalogue's described types are all checked above
