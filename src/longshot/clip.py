"""Shortening text for one line without cutting a word: ``clip("a long request", 8) == "a long…"``."""

from __future__ import annotations

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary with an ellipsis.

    A single word longer than ``limit`` (a path, a URL) is kept whole: cutting it would leave
    something that looks right and is wrong.
    """
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    head = line[: max(1, limit - len(ELLIPSIS)) + 1]
    cut = head.rfind(" ")
    if cut <= 0:
        return line.split(" ", 1)[0] + (ELLIPSIS if " " in line else "")
    return line[:cut].rstrip(" ,;:.-") + ELLIPSIS
