"""The code the demo's scripted workers write: real implementations of the sample SPEC."""

SLUG = '''"""URL slugs."""

import re


def slugify(text: str, max_length: int = 60) -> str:
    """Lower-case ASCII slug with single dashes and no dash at either end."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-")
'''

COUNTS = '''"""Word frequencies."""

import re
from collections import Counter

_WORD = re.compile(r"[A-Za-z0-9']+")


def word_count(text: str) -> dict[str, int]:
    """Occurrences of each word, case-insensitively (keys lower-case)."""
    return dict(Counter(w.lower() for w in _WORD.findall(text)))


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words; ties broken alphabetically."""
    counts = word_count(text)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
'''

CASE = '''"""snake_case and camelCase conversion."""

import re

_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|\\b|_|$)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _words(text: str) -> list[str]:
    words: list[str] = []
    for chunk in re.split(r"[\\s_-]+", text):
        words.extend(m.group(0).lower() for m in _PARTS.finditer(chunk))
    return words


def snake_case(text: str) -> str:
    """Words joined lower-case with underscores."""
    return "_".join(_words(text))


def camel_case(text: str) -> str:
    """First word lower-case, the rest capitalised, no separators."""
    words = _words(text)
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else ""
'''

WRAP = '''"""Greedy word wrap."""


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most width characters; a longer word stands alone."""
    if width < 1:
        raise ValueError("width must be at least 1")
    lines: list[str] = []
    current = ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines
'''

API = '''"""wordkit: a small text toolkit (see SPEC.md)."""

from wordkit.case import camel_case, snake_case
from wordkit.counts import top_words, word_count
from wordkit.slug import slugify
from wordkit.wrap import wrap

__all__ = ["slugify", "word_count", "top_words", "snake_case", "camel_case", "wrap"]
'''
