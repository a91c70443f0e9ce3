"""Role prompts as Jinja templates (``*.md`` beside this file), rendered strictly.

A template that uses a variable the caller did not pass fails loudly (StrictUndefined)
instead of sending the model a prompt with a hole in it.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined, Template


class Prompts:
    """Loads and renders the bundled prompt templates; each is read and compiled once."""

    def __init__(self) -> None:
        self._env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)
        self._templates: dict[str, Template] = {}

    def render(self, name: str, **variables: Any) -> str:
        template = self._templates.get(name)
        if template is None:
            source = files("longshot.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
            template = self._templates[name] = self._env.from_string(source)
        return template.render(**variables)
