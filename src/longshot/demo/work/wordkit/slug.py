"""URL slugs."""

import re


def slugify(text: str, max_length: int = 60) -> str:
    """Lower-case ASCII slug with single dashes and no dash at either end."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-")
