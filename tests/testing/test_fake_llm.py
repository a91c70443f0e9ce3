"""The fake LLM server, exercised over real HTTP with the openai SDK."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from longshot.testing.fake_llm import FakeLLM
from longshot.testing.fake_script import Reply, RoleScript, ScriptExhausted, ToolCallSpec, Turn

USER: list[Any] = [{"role": "user", "content": "Task ID: T-42\nDo the thing."}]


@pytest.fixture
def fake_factory() -> Iterator[Any]:
    started: list[FakeLLM] = []

    def make(script: Any, **kwargs: Any) -> FakeLLM:
        fake = FakeLLM(script, **kwargs).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


def aclient(fake: FakeLLM, api_key: str = "k") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=api_key, max_retries=0, timeout=10)


def client(fake: FakeLLM) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=10)


async def test_non_streaming_text(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"planner": [Reply.text("hello world")]}))
    async with aclient(fake) as c:
        resp = await c.chat.completions.create(model="planner", messages=USER)
    assert resp.choices[0].message.content == "hello world"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == len(json.dumps(USER)) // 4
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert fake.errors == []


async def test_non_streaming_tool_call(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": [Reply.call("write_file", path="a.txt", name="n")]}))
    async with aclient(fake) as c:
        resp = await c.chat.completions.create(model="worker", messages=USER, tools=[])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    call: Any = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.id == "call_0_0" and call.type == "function"
    assert call.function.name == "write_file"
    assert json.loads(call.function.arguments) == {"path": "a.txt", "name": "n"}


async def test_streaming_assembles_content_and_tool_call(fake_factory: Any) -> None:
    reply = Reply(content="Let me look around.", tool_calls=[ToolCallSpec("run", {"cmd": "ls -la /tmp"}, id="c1")])
    fake = fake_factory(RoleScript({"worker": [reply]}))
    content, finish, usage = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    async with aclient(fake) as c:
        stream = await c.chat.completions.create(
            model="worker", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                content += choice.delta.content or ""
                finish = choice.finish_reason or finish
                for d in choice.delta.tool_calls or []:
                    entry = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
                    entry["id"] = d.id or entry["id"]
                    if d.function is not None:
                        entry["name"] += d.function.name or ""
                        entry["arguments"] += d.function.arguments or ""
    assert content == "Let me look around."
    assert calls == {0: {"id": "c1", "name": "run", "arguments": json.dumps({"cmd": "ls -la /tmp"})}}
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens >= 1


def test_stream_raw_wire_format(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": [Reply.text("abcdef")]}))
    body = {"model": "worker", "messages": USER, "stream": True}
    with httpx2.stream("POST", f"{fake.base_url}/chat/completions", json=body) as resp:
        text = "".join(resp.iter_text())
    events = [line for line in text.split("\n\n") if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) > 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_role_routing_by_mapping_and_substring(fake_factory: Any) -> None:
    seen: list[str] = []

    def script(turn: Turn) -> Reply:
        seen.append(turn.role)
        return Reply.text(turn.role)

    fake = fake_factory(script, models={"big-model": "planner", "small-model": "worker"})
    async with aclient(fake) as c:
        for model in ("big-model", "small-model", "acme-subplanner-v2", "my-planner", "reconciler-x"):
            await c.chat.completions.create(model=model, messages=USER)
    assert seen == ["planner", "worker", "subplanner", "planner", "reconciler"]
    assert fake.count(role="planner") == 2 and fake.count() == 5


async def test_unknown_model_is_400(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({}))
    async with aclient(fake) as c:
        with pytest.raises(openai.BadRequestError, match="gpt-unknown"):
            await c.chat.completions.create(model="gpt-unknown", messages=USER)


async def test_exhausted_script_is_500_and_recorded(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": {"T-42": [Reply.text("one")]}}))
    async with aclient(fake) as c:
        await c.chat.completions.create(model="worker", messages=USER)
        more = [*USER, {"role": "assistant", "content": "one"}, {"role": "user", "content": "go on"}]
        with pytest.raises(openai.InternalServerError, match="script exhausted"):
            await c.chat.completions.create(model="worker", messages=more)
    assert fake.errors == ["fake_llm script exhausted: role=worker task=T-42 turn=1 (1 replies scripted)"]
    assert [r.status for r in fake.requests] == [200, 500]


def test_raising_script_is_500_and_recorded(fake_factory: Any) -> None:
    def script(turn: Turn) -> Reply:
        raise RuntimeError("boom")

    fake = fake_factory(script)
    with pytest.raises(openai.InternalServerError):
        client(fake).chat.completions.create(model="worker", messages=USER)
    assert len(fake.errors) == 1 and "boom" in fake.errors[0]


def test_retry_after_header_on_429(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": Reply.error(429, "slow down", retry_after=2)}))
    resp = httpx2.post(f"{fake.base_url}/chat/completions", json={"model": "worker", "messages": USER})
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2"
    assert resp.json()["error"] == {
        "message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"
    }  # fmt: skip
    with pytest.raises(openai.RateLimitError):
        client(fake).chat.completions.create(model="worker", messages=USER)


def test_context_overflow_and_empty_choices(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": [Reply(context_overflow=True)], "planner": [Reply(empty_choices=True)]}))
    c = client(fake)
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="worker", messages=USER)
    assert info.value.code == "context_length_exceeded"
    assert "maximum context length" in info.value.message
    assert c.chat.completions.create(model="planner", messages=USER).choices == []


def test_raw_arguments_sent_verbatim(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": [Reply(tool_calls=[ToolCallSpec("x", raw_arguments='{"a": ')])]}))
    resp = client(fake).chat.completions.create(model="worker", messages=USER)
    assert resp.choices[0].message.tool_calls[0].function.arguments == '{"a": '  # type: ignore[index,union-attr]


def test_cut_stream_raises(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": Reply(content="x" * 200, cut_after_bytes=150)}))
    body = {"model": "worker", "messages": USER, "stream": True}
    received = b""
    with pytest.raises(httpx2.RemoteProtocolError):
        with httpx2.stream("POST", f"{fake.base_url}/chat/completions", json=body) as resp:
            for part in resp.iter_raw():
                received += part
    assert 0 < len(received) <= 150 and b"[DONE]" not in received
    with pytest.raises(openai.APIConnectionError):
        for _ in client(fake).chat.completions.create(model="worker", messages=USER, stream=True):
            pass


async def test_peak_in_flight_under_concurrency(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": Reply.text("done", delay=0.3)}))
    async with aclient(fake) as c:
        await asyncio.gather(*(c.chat.completions.create(model="worker", messages=USER) for _ in range(4)))
    assert fake.peak_in_flight() == 4  # all four delayed answers were in flight at once
    assert fake.peak_in_flight("worker") == 4
    assert fake.peak_in_flight("planner") == 0


async def test_request_log_has_bodies_but_no_api_key(fake_factory: Any, tmp_path: Path) -> None:
    log_path = tmp_path / "requests.jsonl"
    fake = fake_factory(RoleScript({"worker": [Reply.text("a"), Reply.text("b")]}), request_log=log_path)
    secret = "sk-very-secret-key-123"
    async with aclient(fake, api_key=secret) as c:
        await c.chat.completions.create(model="worker", messages=USER)
        await c.chat.completions.create(model="worker", messages=[*USER, {"role": "assistant", "content": "a"}])
    assert fake.settle()
    text = log_path.read_text()
    assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(x["index"], x["role"], x["turn"], x["status"]) for x in lines] == [(0, "worker", 0, 200), (1, "worker", 1, 200)]
    assert lines[0]["task_id"] == "T-42" and lines[0]["has_auth"] is True
    assert lines[0]["body"]["messages"] == USER


def test_role_script_from_file(fake_factory: Any, tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(
        json.dumps(
            {
                "planner": [{"tool_calls": [{"name": "spawn", "arguments": {"title": "t"}}]}, {"content": "done"}],
                "worker": {"T-1": [{"content": "one"}], "*": [{"content": "default"}]},
            }
        )
    )
    fake = fake_factory(RoleScript.from_file(path))
    c = client(fake)
    first = c.chat.completions.create(model="planner", messages=USER).choices[0].message
    assert first.tool_calls[0].function.name == "spawn"  # type: ignore[index,union-attr]
    more = [*USER, {"role": "assistant", "content": ""}]
    assert c.chat.completions.create(model="planner", messages=more).choices[0].message.content == "done"
    task1: list[Any] = [{"role": "user", "content": "Task ID: T-1"}]
    assert c.chat.completions.create(model="worker", messages=task1).choices[0].message.content == "one"
    assert c.chat.completions.create(model="worker", messages=USER).choices[0].message.content == "default"
    assert fake.errors == []


def test_role_script_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        RoleScript({"coder": []})
    with pytest.raises(ValueError, match="unknown reply fields"):
        RoleScript.from_dict({"worker": [{"contnet": "typo"}]})
    turn = Turn(role="worker", model="m", messages=[], tools=None, task_id=None, turn=0, index=0)
    with pytest.raises(ScriptExhausted, match="role=worker task=None turn=0"):
        RoleScript({"planner": []})(turn)


async def test_models_endpoint_and_404(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({}), models={"m-plan": "planner", "m-work": "worker"})
    async with aclient(fake) as c:
        models = await c.models.list()
    assert sorted(m.id for m in models.data) == ["m-plan", "m-work"]
    resp = httpx2.get(f"{fake.base_url}/nope")
    assert resp.status_code == 404
    assert set(resp.json()["error"]) >= {"message", "type", "code"}


async def test_turn_fields_and_task_id(fake_factory: Any) -> None:
    turns: list[Turn] = []

    def script(turn: Turn) -> Reply:
        turns.append(turn)
        return Reply.text("ok")

    fake = fake_factory(script)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    parts = [{"role": "user", "content": [{"type": "text", "text": "Task ID:  abc-7 go"}]}]
    async with aclient(fake) as c:
        await c.chat.completions.create(model="worker", messages=USER, tools=tools)  # type: ignore[arg-type]
        await c.chat.completions.create(model="worker", messages=parts)  # type: ignore[arg-type]
        await c.chat.completions.create(model="worker", messages=[{"role": "user", "content": "no id"}])
    assert [(t.task_id, t.index, t.turn) for t in turns] == [("T-42", 0, 0), ("abc-7", 1, 0), (None, 2, 0)]
    assert turns[0].tools == tools and turns[1].tools is None
    assert turns[0].messages == USER
    assert fake.count(task_id="T-42") == 1


async def test_hang_released_by_stop(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"worker": Reply(hang=True)}))
    async with aclient(fake) as c:
        task = asyncio.create_task(c.chat.completions.create(model="worker", messages=USER))
        while fake.count() == 0:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(fake.stop)  # returns although a handler hangs
        with pytest.raises(openai.APIConnectionError):
            await asyncio.wait_for(task, 5)
    assert fake.requests[0].status == 0


def test_urllib_client_in_plain_thread(fake_factory: Any) -> None:
    fake = fake_factory(RoleScript({"reconciler": [Reply.text("merged")]}))
    data = json.dumps({"model": "reconciler", "messages": USER}).encode()
    req = urllib.request.Request(f"{fake.base_url}/chat/completions", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = json.load(resp)
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "merged"
    assert fake.requests[0].has_auth is False
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(f"{fake.base_url}/chat/completions", data=b"{"), timeout=5)
    assert info.value.code == 400
    info.value.close()
