"""Real parts for stage tests: a hub over a fresh remote, commits pushed to it as a person or
another run would, and a planning conversation (the router over the fake model's HTTP
server, exploration over the hub). Nothing of ours is patched."""

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
from longshot.testing.repos import git, make_remote

from helpers import MODELS

AUTHOR = ("Longshot", "longshot@localhost")


async def open_hub(tmp_path: Path, files: dict[str, str]) -> Hub:
    """A hub (opened) over a fresh remote holding ``files`` on ``main``."""
    remote = make_remote(tmp_path, files)
    hub = Hub(tmp_path / "hub", url=str(remote), branch="main", author=AUTHOR)
    await hub.open()
    return hub


def conversation(fake: FakeLLM, hub: Hub, emit: Sink, role: Role, *, task_id: str | None = None,
                 system: str = "You plan.", **options: int) -> Conversation:
    """``options``: the conversation's limits (window, max_tool_steps, max_parse_retries)."""
    endpoint = OpenAICompatEndpoint(name="ep0", base_url=fake.base_url, api_key="sk-test", timeout=10)
    model = Router([(endpoint, 1.0)], {r: name for name, r in MODELS.items()}, emit, retry_seconds=0)  # type: ignore[misc]
    return Conversation(role, model, Explorer(hub.git, hub.tip), emit, system, task_id=task_id, **options)  # type: ignore[arg-type]


def push(hub: Hub, work: Path, files: dict[str, str | None], message: str, *, branch: str = "main") -> str:
    """A commit of ``files`` (None deletes) on the remote's ``branch`` (made from main when new),
    as someone else would push it; returns its sha. The hub does not see it until fetched."""
    clone = work / f"clone-{len(list(work.glob('clone-*')))}"
    git("clone", "--quiet", hub.url, str(clone), cwd=work)
    for path, text in files.items():
        if text is None:
            git("rm", "--quiet", path, cwd=clone)
            continue
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text(text)
        git("add", path, cwd=clone)
    git("commit", "--quiet", "-m", message, cwd=clone)
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)


async def fetch(hub: Hub, branch: str) -> None:
    """Bring a task branch pushed to the remote into the hub (``refresh`` does the target)."""
    await hub.git.run("fetch", "--quiet", "origin", f"+{branch}:refs/heads/{branch}")
