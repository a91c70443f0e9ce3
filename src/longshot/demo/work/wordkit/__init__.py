"""wordkit: a small text toolkit (see SPEC.md)."""

from wordkit.case import camel_case, snake_case
from wordkit.counts import top_words, word_count
from wordkit.slug import slugify
from wordkit.wrap import wrap

__all__ = ["slugify", "word_count", "top_words", "snake_case", "camel_case", "wrap"]
