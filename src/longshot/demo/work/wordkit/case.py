"""snake_case and camelCase conversion."""

import re

_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|\b|_|$)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _words(text: str) -> list[str]:
    words: list[str] = []
    for chunk in re.split(r"[\s_-]+", text):
        words.extend(m.group(0).lower() for m in _PARTS.finditer(chunk))
    return words


def snake_case(text: str) -> str:
    """Words joined lower-case with underscores."""
    return "_".join(_words(text))


def camel_case(text: str) -> str:
    """First word lower-case, the rest capitalised, no separators."""
    words = _words(text)
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else ""
