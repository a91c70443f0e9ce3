"""The planning conversation over a real router and the fake model: retries follow RETRY_POLICY.

The router already retried what it could; the conversation asks again only for an error
kind the policy marks retryable, as often and with the delay the policy says, and gives
up at once on one it does not (a 400 will not mend by asking again).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from longshot.errors import RETRY_POLICY, LLMBadRequest, LLMServerError, backoff_delay
from longshot.events import MemorySink, RunWarning
from longshot.git import Git
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.router import Router
from longshot.pipeline.converse import Conversation
from longshot.pipeline.explore import Explorer
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.fake_script import Reply, Turn
from longshot.testing.repos import make_remote

from helpers import MODELS, plan_json

ANSWER = plan_json([], scratchpad="all done")


def replies(*answers: Reply) -> Callable[[Turn], Reply]:
    """The answers in order of arrival; the last one repeats."""
    seen: list[Turn] = []

    def play(turn: Turn) -> Reply:
        seen.append(turn)
        return answers[min(len(seen) - 1, len(answers) - 1)]

    return play


def conversation(tmp_path: Path, fake: FakeLLM, sink: MemorySink) -> Conversation:
    remote = make_remote(tmp_path, {"README.md": "hi\n"})
    git = Git(remote)

    async def tip() -> str:
        return await git.run("rev-parse", "refs/heads/main")

    endpoint = OpenAICompatEndpoint(name="ep0", base_url=fake.base_url, api_key="sk-test", timeout=10)
    model = Router([(endpoint, 1.0)], {role: name for name, role in MODELS.items()}, sink, retry_seconds=0)  # type: ignore[misc]
    return Conversation("planner", model, Explorer(git, tip), sink, "You plan.")


def retry_warnings(sink: MemorySink) -> list[Any]:
    return [e for e in sink.of_type(RunWarning) if e.code == "model.retry"]


async def test_an_error_the_policy_does_not_retry_ends_the_conversation_at_once(tmp_path: Path, fake_llm) -> None:
    assert not RETRY_POLICY[LLMBadRequest].retry
    fake = fake_llm(replies(Reply(status=400, error_message="no such parameter"), Reply(content=ANSWER)))
    sink = MemorySink()
    with pytest.raises(LLMBadRequest):
        await conversation(tmp_path, fake, sink).ask("Plan it.", 1)
    assert len(fake.requests) == 1
    assert retry_warnings(sink) == []


async def test_a_retryable_error_is_asked_again_with_the_policys_backoff(tmp_path: Path, fake_llm) -> None:
    policy = RETRY_POLICY[LLMServerError]
    fake = fake_llm(replies(Reply(status=500), Reply(status=500), Reply(content=ANSWER)))
    sink = MemorySink()
    answer = await conversation(tmp_path, fake, sink).ask("Plan it.", 1)
    assert answer.tasks == [] and answer.scratchpad == "all done"
    assert len(fake.requests) == 3
    said = [e.message for e in retry_warnings(sink)]
    assert [s.rsplit("retrying in ", 1)[1] for s in said] == [
        f"{backoff_delay(policy, n):g}s" for n in (1, 2)]


async def test_a_retryable_error_stops_after_the_policys_attempts(tmp_path: Path, fake_llm) -> None:
    policy = RETRY_POLICY[LLMServerError]
    fake = fake_llm(replies(Reply(status=500)))
    sink = MemorySink()
    with pytest.raises(LLMServerError):
        await conversation(tmp_path, fake, sink).ask("Plan it.", 1)
    assert len(fake.requests) == policy.max_attempts
    assert len(retry_warnings(sink)) == policy.max_attempts - 1
