"""The price table and the per-run request log (one line per attempt, secrets redacted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longshot.errors import ConfigError, LLMServerError
from longshot.events import Event
from longshot.llm.base import Completion, ToolCall, Usage
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.prices import PriceTable
from longshot.llm.requestlog import RequestLog
from longshot.llm.router import Router
from longshot.testing.fake_script import Reply, RoleScript, Turn

from helpers import plan_json, planner_then_done, run_cli, run_env, worker_steps

CANARY = "sk-canary-llm-7f3e19"
MODELS: dict[str, str] = {"planner": "fake-planner", "worker": "fake-worker",
                          "subplanner": "fake-subplanner", "reconciler": "fake-reconciler"}


# -- prices --------------------------------------------------------------------------------

def test_price_lookup_exact_prefix_and_unknown() -> None:
    table = PriceTable()
    assert table.lookup("gpt-4.1") == (2.0, 8.0)
    # The longest matching prefix wins: a dated gpt-4.1-mini is not priced as gpt-4.1.
    assert table.lookup("gpt-4.1-mini-2025-04-14") == (0.4, 1.6)
    assert table.lookup("gpt-4.1-2025-04-14") == (2.0, 8.0)
    assert table.lookup("claude-sonnet-4-20250514") == (3.0, 15.0)
    assert table.lookup("mystery-model") is None
    assert table.lookup("_comment") is None  # keys starting with "_" are not models
    assert table.cost("gpt-4.1", 1_000_000, 500_000) == (pytest.approx(6.0), False)
    assert table.cost("gpt-4.1-nano", 2_000, 1_000)[0] == pytest.approx((2_000 * 0.1 + 1_000 * 0.4) / 1e6)
    # An unknown model costs 0, and says so only the first time.
    assert table.cost("mystery-model", 1000, 1000) == (0.0, True)
    assert table.cost("mystery-model", 1000, 1000) == (0.0, False)
    assert table.cost("other-mystery", 1, 1) == (0.0, True)


def test_price_override_file_is_merged(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"_note": "mine", "gpt-4.1": [1, 1], "my-model": [0.5, 1.5]}))
    table = PriceTable(path)
    assert table.lookup("gpt-4.1") == (1.0, 1.0)  # overridden
    assert table.lookup("my-model-v2") == (0.5, 1.5)  # added, prefix match too
    assert table.lookup("gpt-4o") == (2.5, 10.0)  # the bundled ones stay
    assert table.cost("my-model", 1_000_000, 1_000_000) == (pytest.approx(2.0), False)


@pytest.mark.parametrize("content", [
    None,  # the file does not exist
    "{not json",
    '["gpt-4.1", 1, 2]',
    '{"m": [1]}',
    '{"m": [1, -2]}',
    '{"m": ["1", "2"]}',
    '{"m": {"input": 1, "output": 2}}',
], ids=["missing", "invalid-json", "not-object", "one-price", "negative", "strings", "object-value"])
def test_bad_price_file_is_a_config_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        PriceTable(path)
    message = str(info.value)
    assert message.startswith("LLM_PRICES_FILE:") and str(path) in message and "Fix:" in message


def test_bad_price_file_stops_the_cli_with_exit_2(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"a.txt": "a\n"})
    fake = fake_llm(RoleScript({}))
    bad = tmp_path / "prices.json"
    bad.write_text("{oops")
    done = run_cli(["do it"], run_env(tmp_path, target, fake, LLM_PRICES_FILE=str(bad)), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "LLM_PRICES_FILE" in done.stderr
    assert fake.count() == 0


# -- the request log, directly -------------------------------------------------------------------

def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_request_log_logs_only_new_messages_per_conversation(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "r" / "requests.ndjson", secrets=[CANARY])
    answer = Completion(content="sure", usage=Usage(prompt_tokens=3, completion_tokens=2), finish_reason="stop")
    conv = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Task ID: t1"}]
    common = {"role": "worker", "endpoint": "e", "model": "m"}
    log.write(task_id="t1", messages=conv, attempt=1, error=LLMServerError("HTTP 500", "e"), **common)
    log.write(task_id="t1", messages=conv, attempt=2, completion=answer, **common)
    conv2 = [*conv, answer.as_message(), {"role": "user", "content": "go on"}]
    log.write(task_id="t1", messages=conv2, attempt=1, completion=answer, **common)
    log.write(task_id="t2", messages=conv, attempt=1, completion=answer, **common)  # another conversation
    log.write(task_id="t1", messages=conv[:1], attempt=1, completion=answer, **common)  # compacted: whole again
    log.close()
    lines = read_lines(tmp_path / "r" / "requests.ndjson")
    assert len(lines) == 5  # one per attempt
    assert [(x["task_id"], x["attempt"], x["messages_from"], len(x["messages"])) for x in lines] == [
        ("t1", 1, 0, 2), ("t1", 2, 0, 2), ("t1", 1, 2, 2), ("t2", 1, 0, 2), ("t1", 1, 0, 1)]
    assert "LLMServerError" in lines[0]["error"] and "response" not in lines[0]
    assert lines[1]["response"] == {"role": "assistant", "content": "sure"}
    assert lines[1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2} and lines[1]["finish_reason"] == "stop"
    assert lines[2]["messages"][1] == {"role": "user", "content": "go on"}


def test_request_log_redacts_secrets_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "requests.ndjson"
    log = RequestLog(path, secrets=[CANARY, "", "ghp_second_secret"])
    messages = [{"role": "user", "content": f"the key is {CANARY}!"},
                {"role": "tool", "tool_call_id": "c1", "content": f"env: X={CANARY}\nT=ghp_second_secret"}]
    answer = Completion(content=f"I saw {CANARY}",
                        tool_calls=[ToolCall(id="c2", name="bash", arguments=json.dumps({"command": f"echo {CANARY}"}))])
    log.write(role="worker", task_id="t1", endpoint="e", model="m", messages=messages, attempt=1, completion=answer)
    log.write(role="worker", task_id="t1", endpoint="e", model="m", messages=messages, attempt=2,
              error=LLMServerError(f"HTTP 500: bad key {CANARY}", "e"))
    log.close()
    text = path.read_text()
    assert CANARY not in text and "ghp_second_secret" not in text
    assert text.count("[REDACTED]") == 6
    lines = read_lines(path)  # still valid JSON after redaction
    assert lines[0]["messages"][0]["content"] == "the key is [REDACTED]!"
    assert lines[0]["response"]["tool_calls"][0]["function"]["arguments"] == json.dumps({"command": "echo [REDACTED]"})
    assert lines[1]["error"].endswith("bad key [REDACTED]")


async def test_router_logs_every_attempt(tmp_path: Path, fake_llm) -> None:
    """A failed attempt and its retry on another endpoint are two lines; the next turn of
    the conversation logs only its new messages."""
    flaky = fake_llm(lambda turn: Reply.error(500, f"oops {CANARY}") if turn.index == 0 else Reply(content="a"))
    good = fake_llm(lambda turn: Reply(content=f"echo {CANARY}"))
    path = tmp_path / "requests.ndjson"
    events: list[Event] = []
    eps = [(OpenAICompatEndpoint(name=n, base_url=f.base_url, api_key=CANARY), 1.0)
           for n, f in (("flaky", flaky), ("good", good))]
    r = Router(eps, MODELS, events.append, request_log=RequestLog(path, [CANARY]))  # type: ignore[arg-type]
    conv = [{"role": "system", "content": "s"}, {"role": "user", "content": f"Task ID: t1\nkey {CANARY}"}]
    try:
        first = await r.complete("worker", conv, task_id="t1")
        conv = [*conv, first.as_message(), {"role": "user", "content": "next"}]
        await r.complete("worker", conv, task_id="t1")
        await r.complete("planner", [{"role": "user", "content": "plan"}])
    finally:
        await r.aclose()
    lines = read_lines(path)
    assert [(x["role"], x["endpoint"], x["attempt"], x["messages_from"], "error" in x) for x in lines][:2] == [
        ("worker", "flaky", 1, 0, True), ("worker", "good", 2, 0, False)]
    assert len(lines) == 4
    assert lines[2]["role"] == "worker" and lines[2]["messages_from"] == 2 and len(lines[2]["messages"]) == 2
    assert lines[3]["role"] == "planner" and lines[3]["messages_from"] == 0 and lines[3]["task_id"] is None
    text = path.read_text()
    assert CANARY not in text and "[REDACTED]" in text
    assert any(CANARY in json.dumps(q.body) for q in good.requests)  # the canary really was in the traffic


# -- a whole run through the CLI --------------------------------------------------------------------

def test_run_request_log_has_both_roles_and_no_api_key(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"SPEC.md": f"# Spec\nUse the key {CANARY} nowhere.\n", "a.txt": "a\n"})
    tasks = [{"id": "t1", "description": "Write b.txt", "scope": ["b.txt"]}]

    def worker(turn: Turn) -> Reply:
        return worker_steps([("b.txt", "b\n")])[turn.turn]

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": worker}))
    env = run_env(tmp_path, target, fake, LLM_API_KEY=CANARY, CHECK_COMMANDS="none")

    done = run_cli(["Build what SPEC.md says"], env, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.errors == []
    assert all(q.has_auth for q in fake.requests)
    # The canary really flowed into the prompts (SPEC.md goes to the planner) ...
    assert CANARY in json.dumps(fake.requests[0].body["messages"])
    logs = tmp_path / "logs"
    (requests_log,) = logs.glob("requests-*.ndjson")
    (run_log_file,) = logs.glob("run-*.ndjson")
    text = requests_log.read_text()
    # ... but neither log holds it: the request log has it redacted.
    assert CANARY not in text and "[REDACTED]" in text
    assert CANARY not in run_log_file.read_text()
    assert CANARY not in done.stdout + done.stderr
    lines = read_lines(requests_log)
    assert {x["role"] for x in lines} == {"planner", "worker"}
    assert len(lines) == fake.count()  # one line per attempt, every one answered
    worker_lines = [x for x in lines if x["role"] == "worker"]
    assert [(x["task_id"], x["messages_from"]) for x in worker_lines] == [("t1", 0), ("t1", 2)]
    assert all(x["model"] == "fake-worker" and x["endpoint"] == "default" for x in worker_lines)
    assert "[REDACTED]" in json.dumps(next(x for x in lines if x["role"] == "planner")["messages"])
