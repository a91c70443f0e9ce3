"""Text that crosses between the model and the file system, made safe both ways.

File names and contents are bytes; the model speaks Unicode. Python carries bytes that are
not UTF-8 as lone surrogates (``U+DC80``-``U+DCFF``, "surrogate escapes"), which cannot be
encoded for a model request, an event or a log line: one such name in an ``ls`` would end
the run. So every text going to the model goes through `printable` (such bytes shown as
``\\xNN``), and every text coming from the model goes through `to_bytes`, which keeps
surrogate escapes as the bytes they stand for (a file read and written back round-trips)
and refuses any other lone surrogate with a message for the model.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED = range(0xDC80, 0xDD00)


class NotText(ValueError):
    """A value from the model holds a lone surrogate that stands for no byte."""


def _show(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if code in _ESCAPED else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` as valid Unicode: each surrogate escape shown as ``\\xNN``, any other lone surrogate as ``\\uNNNN``."""
    return _SURROGATE.sub(_show, text)


def has_escapes(text: str) -> bool:
    """Whether ``text`` holds surrogates (bytes that are not UTF-8, or invalid code points)."""
    return _SURROGATE.search(text) is not None


def to_bytes(text: str, what: str) -> bytes:
    """UTF-8 bytes of ``text``; surrogate escapes become their bytes; NotText names any other surrogate."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as e:
        bad = text[e.start]
        raise NotText(f"{what} contains U+{ord(bad):04X}, a lone surrogate that is no character; "
                      "send valid UTF-8 text (nothing was done)") from None


def check_strings(value: Any, what: str) -> None:
    """Raise NotText if any string inside ``value`` (JSON data) cannot become bytes."""
    if isinstance(value, str):
        to_bytes(value, what)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(key, what)
            check_strings(item, f"{what}.{printable(str(key))}")
    elif isinstance(value, list):
        for item in value:
            check_strings(item, what)
