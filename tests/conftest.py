"""Shared fixtures: target repositories, the fake model, and running Longshot for real."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from longshot.testing.fake_llm import FakeLLM
from longshot.testing.repos import make_remote

from helpers import MODELS


@pytest.fixture
def fake_llm() -> Iterator[Callable[..., FakeLLM]]:
    """Start FakeLLM servers with a script; all are stopped at the end of the test."""
    started: list[FakeLLM] = []

    def start(script: Any, **kwargs: Any) -> FakeLLM:
        fake = FakeLLM(script, models=MODELS, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def remote(tmp_path: Path) -> Callable[..., Path]:
    def make(files: dict[str, str] | None = None, **kwargs: Any) -> Path:
        return make_remote(tmp_path, files, **kwargs)

    return make
