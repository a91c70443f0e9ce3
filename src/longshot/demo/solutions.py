"""What the demo's scripted workers write: real code and tests for the sample's SPEC.

The files under ``work/`` are the modules and tests each task adds. ``WORDS`` is the
sample's shared helper module as it ships, with a latent bug in ``sentences``; the
truncate and stats tasks each add a helper at its end (the demo's merge conflict), and
the reconciler's fix corrects ``sentences``.
"""

from importlib.resources import files


def work(path: str) -> str:
    """The content a worker writes at ``path`` (relative to the project root)."""
    return files("longshot.demo").joinpath("work", path).read_text(encoding="utf-8")


WORDS = files("longshot.demo").joinpath("sample/wordkit/_words.py").read_text(encoding="utf-8")
SENTENCES_BUG = 'parts = re.split(r"(?<=\\.)\\s+", text.strip())'
SENTENCES_FIX = 'parts = re.split(r"(?<=[.!?])\\s+", text.strip())'

CUT_AT_WORD = '''

def cut_at_word(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` characters that ends at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rfind(" ")
    return text[:cut].rstrip() if cut > 0 else text[:limit]
'''

SYLLABLES = '''

def syllables(word: str) -> int:
    """A rough syllable count: vowel groups, a silent final e dropped (not -le), at least 1."""
    w = word.lower().strip("'")
    groups = re.findall(r"[aeiouy]+", w)
    silent = w.endswith("e") and not w.endswith("le") and len(groups) > 1
    return max(1, len(groups) - silent)
'''
