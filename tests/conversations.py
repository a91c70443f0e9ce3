"""A real planning conversation for stage tests: the router over the fake model's HTTP
server, and exploration over a real hub (no patched code)."""

from __future__ import annotations

from pathlib import Path

from longshot.bus import Sink
from longshot.hub import Hub
from longshot.llm.base import Role
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.router import Router
from longshot.pipeline.converse import Conversation
from longshot.pipeline.explore import Explorer
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.repos import make_remote

from helpers import MODELS

AUTHOR = ("Longshot", "longshot@localhost")


async def open_hub(tmp_path: Path, files: dict[str, str]) -> Hub:
    """A hub (opened) over a fresh remote holding ``files`` on ``main``."""
    remote = make_remote(tmp_path, files)
    hub = Hub(tmp_path / "hub", url=str(remote), branch="main", author=AUTHOR)
    await hub.open()
    return hub


def conversation(fake: FakeLLM, hub: Hub, emit: Sink, role: Role, *, task_id: str | None = None,
                 system: str = "You plan.") -> Conversation:
    endpoint = OpenAICompatEndpoint(name="ep0", base_url=fake.base_url, api_key="sk-test", timeout=10)
    model = Router([(endpoint, 1.0)], {r: name for name, r in MODELS.items()}, emit, retry_seconds=0)  # type: ignore[misc]
    return Conversation(role, model, Explorer(hub.git, hub.tip), emit, system, task_id=task_id)
