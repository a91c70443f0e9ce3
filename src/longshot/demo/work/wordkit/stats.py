"""Reading statistics."""

from wordkit._words import syllables, words


def reading_time(text: str, wpm: int = 200) -> int:
    """Seconds to read the words of ``text`` at ``wpm`` words per minute, rounded up."""
    n = len(words(text))
    return -(-n * 60 // wpm)


def syllable_count(text: str) -> int:
    """The rough syllable count of every word of ``text``."""
    return sum(syllables(w) for w in words(text))
