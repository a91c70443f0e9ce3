"""Shared text helpers: words and sentences. Every other module builds on these."""

import re

_WORD = re.compile(r"[A-Za-z0-9']+")


def words(text: str) -> list[str]:
    """The words of ``text`` in order: runs of letters, digits and apostrophes."""
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped; a sentence ends with ``.``, ``!`` or ``?``."""
    parts = re.split(r"(?<=\.)\s+", text.strip())
    return [p.strip() for p in parts if p.strip()]
