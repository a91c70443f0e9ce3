"""Word frequencies."""

from collections import Counter

from wordkit._words import words


def word_count(text: str) -> dict[str, int]:
    """Occurrences of each word, case-insensitively (keys lower-case)."""
    return dict(Counter(w.lower() for w in words(text)))


def top_words(text: str, n: int) -> list[tuple[str, int]]:
    """The n most frequent words; ties broken alphabetically."""
    counts = word_count(text)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
