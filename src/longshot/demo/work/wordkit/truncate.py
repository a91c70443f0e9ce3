"""Truncation at a word boundary."""

from wordkit._words import cut_at_word


def truncate(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` (whitespace collapsed) if it fits in ``width``, else a word-boundary prefix plus ``ellipsis``."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if width <= len(ellipsis):
        return ellipsis[:width]
    return cut_at_word(text, width - len(ellipsis)) + ellipsis
