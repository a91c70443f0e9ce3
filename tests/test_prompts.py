"""Prompt templates: compiled once per `Prompts`, rendered strictly every time."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from longshot.prompts import Prompts
from longshot.types import Task


def test_a_template_is_compiled_once_and_each_render_uses_its_own_variables() -> None:
    prompts = Prompts()
    first = prompts.render("worker_task", task=Task(id="t1", description="Add the parser.", branch="worker/t1"))
    compiled = prompts._templates["worker_task"]  # noqa: SLF001 - the cache is what this test is about
    second = prompts.render("worker_task", task=Task(id="t2", description="Add the printer.", branch="worker/t2"))
    assert prompts._templates["worker_task"] is compiled  # noqa: SLF001
    assert "Task ID: t1" in first and "Add the parser." in first and "t2" not in first
    assert "Task ID: t2" in second and "Add the printer." in second and "t1" not in second


def test_a_missing_variable_fails_on_every_render_not_only_the_first() -> None:
    prompts = Prompts()
    prompts.render("worker_task", task=Task(id="t1", description="x", branch="worker/t1"))
    with pytest.raises(UndefinedError):
        prompts.render("worker_task")
