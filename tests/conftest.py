"""Shared fixtures: target repositories, the fake model, and running Longshot for real."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray cluster for the session, started the way the Ray provider starts one.

    A canary key is in this process's environment while it starts (as a user's LLM_API_KEY
    would be): the cluster's processes must not inherit it (see tests/sandboxes/test_ray.py).
    Shut down at the end of the session; it leaves no process behind.
    """
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]'; scripts/setup.sh does)")
    from longshot.sandboxes.ray import connect
    from provider_cases import RAY_CANARY

    if ray.is_initialized():
        ray.shutdown()
    saved = os.environ.get("LLM_API_KEY")
    os.environ["LLM_API_KEY"] = RAY_CANARY
    try:
        connect(None)
    finally:
        if saved is None:
            del os.environ["LLM_API_KEY"]
        else:
            os.environ["LLM_API_KEY"] = saved
    yield ray
    ray.shutdown()
