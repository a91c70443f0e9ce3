"""The router over real HTTP: several FakeLLM servers on loopback are several endpoints.

Covers weighted choice, failover and rest/probe, retries per `RETRY_POLICY`, timeouts,
cut answers, context overflow, 429 cooldown and AIMD concurrency, empty answers and the
run budget. Times come from `time.monotonic`, the clock the fake stamps its records with.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from longshot.budget import RunBudget
from longshot.errors import (
    RETRY_POLICY, BudgetExceeded, LLMContextOverflow, LLMServerError,
)
from longshot.events import BudgetSpent, EndpointHealth, Event, LLMRetry, LLMUsage, ModelsWaiting
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.router import Router
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.fake_script import Reply, ToolCallSpec, Turn, completion_body

MODELS: dict[str, str] = {"planner": "fake-planner", "worker": "fake-worker",
                          "subplanner": "fake-subplanner", "reconciler": "fake-reconciler"}
USER = [{"role": "user", "content": "Task ID: t1\nDo the thing."}]
SLACK = 0.01  # clock reads on both sides of a boundary


class Recorder:
    """An ``emit`` that keeps each event with the monotonic time it was emitted."""

    def __init__(self) -> None:
        self.timed: list[tuple[float, Event]] = []

    def __call__(self, event: Event) -> None:
        self.timed.append((time.monotonic(), event))

    def of(self, cls: type[Event]) -> list[Any]:
        return [e for _, e in self.timed if isinstance(e, cls)]

    def times(self, cls: type[Event]) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.timed if isinstance(e, cls)]


def endpoint(fake: FakeLLM, name: str, timeout: float = 10.0) -> OpenAICompatEndpoint:
    return OpenAICompatEndpoint(name=name, base_url=fake.base_url, api_key="sk-test", timeout=timeout)


def router(fakes: list[tuple[FakeLLM, float]], emit: Recorder, **kwargs: Any) -> Router:
    """A router over ``fakes`` (endpoints named ep0, ep1, ...) with their weights."""
    eps = [(endpoint(f, f"ep{i}"), w) for i, (f, w) in enumerate(fakes)]
    return Router(eps, MODELS, emit, **kwargs)  # type: ignore[arg-type]


def seq(*replies: Reply) -> Any:
    """Replies in order of arrival at this server; the last one repeats."""
    state = {"n": 0}

    def play(turn: Turn) -> Reply:
        i = state["n"]
        state["n"] += 1
        return replies[min(i, len(replies) - 1)]

    return play


def always(reply: Reply) -> Any:
    return lambda turn: reply


OK = always(Reply(content="ok"))


async def test_weighted_distribution_over_three_endpoints(fake_llm) -> None:
    """Weights 1, 2, 5 over 160 sequential requests give counts near 20, 40, 100.

    All fakes answer after the same small delay, so the router's latency factor (0.5x-2x)
    should stay near 1. Each endpoint client is warmed up first (outside the router), so
    the one-off cost of a client's first request does not enter the latency averages.
    A server that stalls busy keep-alive connections (Nagle's algorithm against delayed
    ACKs: ~40 ms per answer) makes the busiest endpoint look slowest and skews the counts.
    """
    fakes = [fake_llm(always(Reply(content=f"from {i}", delay=0.005))) for i in range(3)]
    eps = [endpoint(f, f"ep{i}") for i, f in enumerate(fakes)]
    for ep in eps:
        for _ in range(2):
            await ep.send("fake-worker", USER)
    warm = [f.count() for f in fakes]
    emit = Recorder()
    r = Router(list(zip(eps, [1.0, 2.0, 5.0])), MODELS, emit)  # type: ignore[arg-type]
    try:
        for _ in range(160):
            await r.complete("worker", USER)
    finally:
        await r.aclose()
    counts = [f.count() - w for f, w in zip(fakes, warm)]
    latencies_ms = [round((s.latency or 0) * 1000, 1) for s in r.states]
    why = f"counts {counts} for weights 1:2:5; router latency averages {latencies_ms} ms"
    assert sum(counts) == 160
    for count, expected in zip(counts, [20, 40, 100]):
        assert abs(count - expected) <= 0.25 * expected, why
    assert emit.of(LLMRetry) == []
    assert all(f.errors == [] for f in fakes)


async def test_failover_rest_probe_and_recovery(fake_llm) -> None:
    good = fake_llm(OK)
    # The flaky endpoint fails its first 4 requests: 3 in a row (then it rests), then the
    # first probe after the rest (it rests again); the second probe succeeds.
    flaky = fake_llm(seq(*[Reply.error(503)] * 4, Reply(content="back")))
    emit = Recorder()
    r = Router([(endpoint(good, "good"), 1.0), (endpoint(flaky, "flaky"), 1.0)], MODELS, emit, rest_seconds=0.5)  # type: ignore[arg-type]
    answers: list[str | None] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 6:
            answers.append((await r.complete("worker", USER)).content)
            healthy = [t for t, e in emit.times(EndpointHealth) if e.healthy]
            if healthy and sum(1 for q in flaky.requests if q.started > healthy[0]) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await r.aclose()

    assert all(a in ("ok", "back") for a in answers)  # every request succeeded
    health = emit.times(EndpointHealth)
    assert [(e.endpoint, e.healthy) for _, e in health] == [("flaky", False), ("flaky", False), ("flaky", True)]
    (t_rest1, _), (t_rest2, _), (t_back, _) = health
    reqs = flaky.requests
    assert [q.status for q in reqs[:5]] == [503, 503, 503, 503, 200]
    # Nothing reached the resting endpoint during either rest; a probe came after each.
    assert reqs[2].started < t_rest1
    assert reqs[3].started >= t_rest1 + 0.5 - SLACK, (reqs[3].started - t_rest1)
    assert reqs[3].answered is not None and reqs[3].answered <= t_rest2  # not .ended: the client may act first
    assert reqs[4].started >= t_rest2 + 0.5 - SLACK, (reqs[4].started - t_rest2)
    assert reqs[4].answered is not None and t_back >= reqs[4].answered  # healthy again once the probe answered 200
    # The healthy endpoint carried the load meanwhile, and the flaky one has traffic again.
    assert any(t_rest1 < q.started < t_rest1 + 0.5 for q in good.requests)
    after = [q for q in reqs if q.started > t_back]
    assert len(after) >= 3 and all(q.status == 200 for q in after)
    assert r.states[1].failures == 0
    assert len(emit.of(LLMRetry)) == 4  # one per failed attempt, each retried elsewhere


async def test_server_error_bursts_then_success_with_backoff(fake_llm) -> None:
    fake = fake_llm(seq(Reply.error(500), Reply.error(503), Reply(content="finally")))
    emit = Recorder()
    r = router([(fake, 1.0)], emit)
    try:
        result = await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert result.content == "finally"
    retries = emit.of(LLMRetry)
    assert [e.attempt for e in retries] == [1, 2]
    assert "LLMServerError" in retries[0].error and "HTTP 500" in retries[0].error
    assert "LLMServerError" in retries[1].error and "HTTP 503" in retries[1].error
    q = fake.requests
    assert [x.status for x in q] == [500, 503, 200]
    # Exponential backoff from RETRY_POLICY: base, then twice the base (no other endpoint).
    base = RETRY_POLICY[LLMServerError].base_delay
    assert q[1].started - q[0].ended >= base - SLACK
    assert q[2].started - q[1].ended >= 2 * base - SLACK
    assert len(emit.of(LLMUsage)) == 1


async def test_server_errors_are_retried_past_any_small_count(fake_llm) -> None:
    # Eight 503s in a row on the only endpoint: a count of five gave up here before (issue 21).
    fake = fake_llm(seq(*[Reply.error(503, "overloaded")] * 8, Reply(content="finally")))
    emit = Recorder()
    r = router([(fake, 1.0)], emit, rest_seconds=0.05)
    try:
        result = await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert result.content == "finally"
    assert fake.count() == 9
    assert [e.attempt for e in emit.of(LLMRetry)] == list(range(1, 9))


async def test_server_error_gives_up_after_the_retry_window_naming_the_endpoint(fake_llm) -> None:
    # Always-failing endpoints: failover to a free one is immediate (no backoff sleep); once
    # every endpoint failed, the call backs off until its retry window is spent.
    n = 3
    fakes = [fake_llm(always(Reply.error(500, "boom"))) for _ in range(n)]
    emit = Recorder()
    # The heavy first endpoint would win every choice: a retry must prefer the others.
    r = router([(f, 1000.0 if i == 0 else 1.0) for i, f in enumerate(fakes)], emit, retry_seconds=0.6)
    try:
        with pytest.raises(LLMServerError) as info:
            await r.complete("worker", USER)
    finally:
        await r.aclose()
    message = str(info.value)
    retries = emit.of(LLMRetry)
    first_round = [e.endpoint for e in retries[:n - 1]]
    assert len(set(first_round)) == n - 1 and "ep0" in first_round  # every failover went elsewhere
    assert [e.delay_s for e in retries[:n - 1]] == [0.0] * (n - 1)  # failover did not wait
    assert len(retries) > n - 1  # then it backed off and tried again, until the window was spent
    attempts = sum(f.count() for f in fakes)
    assert attempts == len(retries) + 1
    final = info.value.endpoint
    assert message.startswith(f"[{final}] gave up after {attempts} attempts in "), message  # names the endpoint
    assert "HTTP 500" in message and "boom" in message


async def test_every_endpoint_resting_makes_requests_wait_and_says_so(fake_llm) -> None:
    fakes = [fake_llm(seq(*[Reply.error(503, "down")] * 3, Reply(content=f"back {i}"))) for i in range(2)]
    emit = Recorder()
    r = router([(f, 1.0) for f in fakes], emit, rest_seconds=0.3)
    try:
        result = await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert result.content.startswith("back")
    assert [e.healthy for e in emit.of(EndpointHealth)][:2] == [False, False]  # both rested
    waiting = emit.of(ModelsWaiting)
    assert len(waiting) == 1  # said once for the one rest, not on every wake-up
    assert waiting[0].endpoints == 2 and 0 < waiting[0].wait_s <= 0.3
    assert any(e.healthy for e in emit.of(EndpointHealth))  # a probe brought one back


async def test_hang_times_out_and_is_retried(fake_llm) -> None:
    fake = fake_llm(seq(Reply(hang=True), Reply(content="second")))
    emit = Recorder()
    r = Router([(endpoint(fake, "slow", timeout=0.5), 1.0)], MODELS, emit)  # type: ignore[arg-type]
    try:
        result = await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert result.content == "second"
    assert [q.status for q in fake.requests] == [0, 200]  # the first was never answered: it timed out
    retries = emit.of(LLMRetry)
    assert len(retries) == 1 and "LLMTimeout" in retries[0].error and retries[0].endpoint == "slow"
    assert fake.count() == 2


async def test_cut_answer_inside_a_tool_call_is_retried(fake_llm) -> None:
    cut_args = {"path": "a.py", "content": "first version\n" * 40}
    full_args = {"path": "a.py", "content": "second version\n" * 40}
    cut_reply = Reply(tool_calls=[ToolCallSpec("write", cut_args)])
    # Cut the body in the middle of the tool call's arguments.
    body = json.dumps(completion_body(cut_reply, model="fake-worker", index=0, messages=USER))
    cut_at = body.index("first version") + 100
    assert cut_at < len(body) - 100
    fake = fake_llm(seq(Reply(tool_calls=cut_reply.tool_calls, cut_after_bytes=cut_at),
                        Reply(tool_calls=[ToolCallSpec("write", full_args)])))
    emit = Recorder()
    r = router([(fake, 1.0)], emit)
    try:
        result = await r.complete("worker", USER, tools=[{"type": "function", "function": {"name": "write"}}])
    finally:
        await r.aclose()
    assert len(result.tool_calls) == 1
    assert json.loads(result.tool_calls[0].arguments) == full_args  # the complete, second answer
    assert fake.count() == 2
    assert len(emit.of(LLMRetry)) == 1


@pytest.mark.parametrize("reply", [
    Reply(context_overflow=True),
    Reply(status=400, error_message="Please reduce the length of the messages or completion."),
], ids=["openai-code", "openrouter-text"])
async def test_context_overflow_is_raised_at_once(fake_llm, reply: Reply) -> None:
    fake = fake_llm(always(reply))
    other = fake_llm(OK)  # a healthy endpoint must not be tried: the request itself is too big
    emit = Recorder()
    r = router([(fake, 1000.0), (other, 1.0)], emit)
    try:
        with pytest.raises(LLMContextOverflow) as info:
            await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert fake.count() == 1 and other.count() == 0
    assert emit.of(LLMRetry) == []
    assert info.value.endpoint == "ep0"


async def test_429_cooldown_and_aimd_limit(fake_llm) -> None:
    fake = fake_llm(seq(Reply.error(429, "slow down", retry_after=0.4), Reply(content="ok")))
    emit = Recorder()
    r = router([(fake, 1.0)], emit, max_concurrency=8)
    try:
        assert r.states[0].limit == 8
        result = await r.complete("worker", USER)
        assert result.content == "ok"
        q = fake.requests
        assert [x.status for x in q] == [429, 200]
        assert q[1].started - q[0].ended >= 0.4 - SLACK  # Retry-After honoured
        # Cut by a quarter by the 429, then one success added 1/limit.
        assert r.states[0].limit == pytest.approx(6 + 1 / 6)
        limits = [r.states[0].limit]
        for _ in range(40):
            await r.complete("worker", USER)
            limits.append(r.states[0].limit)
    finally:
        await r.aclose()
    assert limits == sorted(limits)  # grows back steadily...
    assert limits[-1] == 8  # ...up to max_concurrency, not beyond
    retries = emit.of(LLMRetry)
    assert len(retries) == 1 and "LLMRateLimited" in retries[0].error


async def test_429_fails_over_at_once_when_another_endpoint_is_free(fake_llm) -> None:
    throttled = fake_llm(always(Reply.error(429, "slow down", retry_after=30)))
    other = fake_llm(OK)
    emit = Recorder()
    r = router([(throttled, 1000.0), (other, 1.0)], emit)  # the throttled one wins the first choice
    try:
        result = await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert result.content == "ok"
    assert throttled.count() == 1 and other.count() == 1
    (retry,) = emit.of(LLMRetry)
    assert retry.endpoint == "ep0" and "LLMRateLimited" in retry.error
    assert retry.delay_s == 0.0  # not the 30 s the throttled endpoint asked for: another one was free


def peak_in_flight(records: list[Any]) -> int:
    """Most of ``records`` in flight at once, from their start and end times."""
    return max((sum(1 for o in records if o.started <= q.started < (o.ended or float("inf"))) for q in records),
               default=0)


async def test_429_delays_only_its_own_request(fake_llm) -> None:
    """The throttled request waits its Retry-After; another conversation is not held up."""
    fake = fake_llm(lambda turn: Reply.error(429, retry_after=0.3) if turn.index == 0 else Reply(content="ok"))
    emit = Recorder()
    r = router([(fake, 1.0)], emit)
    try:
        first = asyncio.create_task(r.complete("worker", [{"role": "user", "content": "Task ID: a"}]))
        while not emit.of(LLMRetry):  # the 429 has been handled
            await asyncio.sleep(0.005)
        other = await r.complete("worker", [{"role": "user", "content": "Task ID: b"}])
        await first
    finally:
        await r.aclose()
    assert other.content == "ok"
    throttled = fake.requests[0]
    assert throttled.status == 429 and throttled.ended is not None
    b = next(q for q in fake.requests if q.task_id == "b")
    retry = [q for q in fake.requests if q.task_id == "a"][1]
    assert b.started - throttled.ended < 0.2, "another conversation waited for someone else's 429"
    assert retry.started - throttled.ended >= 0.3 - SLACK, "retried before Retry-After"


async def test_429_cuts_the_limit_of_requests_in_flight(fake_llm) -> None:
    # After a 429 the limit is 8 -> 6: eight concurrent callers see at most 6 (7 once
    # additive increase has added a whole slot) in flight, where 8 went at once before.
    fake = fake_llm(seq(Reply(content="ok", delay=0.1), *[Reply(content="ok", delay=0.1)] * 7,
                        Reply.error(429, retry_after=0.05), Reply(content="ok", delay=0.1)))
    emit = Recorder()
    r = router([(fake, 1.0)], emit, max_concurrency=8)
    try:
        await asyncio.gather(*(r.complete("worker", USER) for _ in range(8)))
        before = fake.requests
        await r.complete("worker", USER)  # 429, wait, ok
        assert 6 <= r.states[0].limit < 7
        t_mark = time.monotonic()
        await asyncio.gather(*(r.complete("worker", USER) for _ in range(8)))
    finally:
        await r.aclose()
    assert peak_in_flight(before) == 8
    later = [q for q in fake.requests if q.started >= t_mark]
    assert len(later) == 8
    assert 6 <= peak_in_flight(later) <= 7


async def test_empty_choices_are_retried_as_server_error(fake_llm) -> None:
    fake = fake_llm(seq(Reply(content="x", empty_choices=True), Reply(content="full")))
    emit = Recorder()
    r = router([(fake, 1.0)], emit)
    try:
        result = await r.complete("worker", USER)
    finally:
        await r.aclose()
    assert result.content == "full"
    retries = emit.of(LLMRetry)
    assert len(retries) == 1 and "LLMServerError" in retries[0].error and "no choices" in retries[0].error
    assert fake.count() == 2


async def test_run_budget_stops_new_requests(fake_llm) -> None:
    fake = fake_llm(OK)
    emit = Recorder()
    budget = RunBudget(max_tokens=10)
    r = router([(fake, 1.0)], emit, budget=budget)
    try:
        first = await r.complete("worker", USER, task_id="t1")
        assert first.usage.total > 10  # one answer overshoots the small budget
        assert budget.tokens == first.usage.total and budget.by_task["t1"] == first.usage.total
        for _ in range(3):
            with pytest.raises(BudgetExceeded) as info:
                await r.complete("worker", USER, task_id="t1")
            assert info.value.budget == "RUN_MAX_TOKENS"
    finally:
        await r.aclose()
    assert fake.count() == 1  # nothing was sent once the budget was spent
    spent = emit.of(BudgetSpent)
    assert len(spent) == 1 and spent[0].budget == "RUN_MAX_TOKENS"
    assert "RUN_MAX_TOKENS=10" in spent[0].message


async def test_the_request_body_is_the_conversation_as_given(fake_llm) -> None:
    """The endpoint sends the messages and tools untouched, with the role's model and the limits."""
    fake = fake_llm(always(Reply(tool_calls=[ToolCallSpec("read", {"path": "a.txt"})])))
    messages = [{"role": "system", "content": "sys"}, *USER,
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a.txt"}]
    tools = [{"type": "function", "function": {"name": "read", "description": "Read a file.",
                                                "parameters": {"type": "object", "properties": {}}}}]
    ep = OpenAICompatEndpoint(name="only", base_url=fake.base_url, api_key="sk-test", max_tokens=123,
                              temperature=0.25)
    try:
        completion = await ep.send("fake-worker", messages, tools)
    finally:
        await ep.aclose()
    assert fake.requests[0].body == {"model": "fake-worker", "messages": messages, "max_tokens": 123,
                                     "temperature": 0.25, "tools": tools}
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [("read", {"path": "a.txt"})]


async def test_many_requests_at_once_spread_over_small_connection_pools(fake_llm) -> None:
    from longshot.llm.openai_compat import POOL_SIZE

    fake = fake_llm(always(Reply(content="ok", delay=0.3)))
    ep = OpenAICompatEndpoint(name="only", base_url=fake.base_url, api_key="sk-test")
    n = 2 * POOL_SIZE + 5
    try:
        answers = await asyncio.gather(*(ep.send("fake-worker", USER) for _ in range(n)))
        assert [a.content for a in answers] == ["ok"] * n
        assert fake.peak_in_flight() == n  # all at once: no pool held a request back
        assert len(ep._clients) == 3 and ep._in_flight == [0, 0, 0]  # noqa: SLF001 - the pools are the point
        await ep.send("fake-worker", USER)
        assert len(ep._clients) == 3  # noqa: SLF001 - an idle pool is reused, not a new one made
    finally:
        await ep.aclose()


def every_nth_fails(n: int, delay: float, status: int = 503) -> Any:
    """Every ``n``-th request (the 1st, the n+1-th, ...) fails at once; the rest answer after ``delay``."""
    state = {"n": 0}

    def play(turn: Turn) -> Reply:
        i = state["n"]
        state["n"] += 1
        return Reply.error(status, "overloaded") if i % n == 0 else Reply(content="ok", delay=delay)

    return play


@pytest.mark.parametrize("status", [503, 500, 502])
async def test_fast_errors_while_answers_are_on_their_way_do_not_rest_an_endpoint(fake_llm, status: int) -> None:
    """Errors come back at once and answers take their time: at the start of a busy run an
    endpoint fails three in a row before its first answer lands. It is working on the
    requests it holds, so it does not rest (a 30 s rest of every endpoint stalled the run)."""
    fakes = [fake_llm(every_nth_fails(3, 0.4, status)) for _ in range(3)]
    emit = Recorder()
    r = router([(f, 1.0) for f in fakes], emit)
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(r.complete("worker", USER) for _ in range(30))), 20)
    finally:
        await r.aclose()
    assert [a.content for a in answers] == ["ok"] * 30
    assert not [e for e in emit.of(EndpointHealth) if not e.healthy]
    assert not emit.of(ModelsWaiting)
    assert sum(1 for f in fakes for q in f.requests if q.status == status) >= 9  # three in a row, and more


async def test_a_dead_endpoint_rests_while_the_others_work_on_slow_answers(fake_llm) -> None:
    """The signs of life are the endpoint's own: requests in flight elsewhere do not keep a
    dead endpoint in use."""
    dead = fake_llm(always(Reply.error(503, "down")))
    slow = fake_llm(always(Reply(content="ok", delay=0.3)))
    emit = Recorder()
    r = Router([(endpoint(dead, "dead"), 1.0), (endpoint(slow, "slow"), 1.0)], MODELS, emit,  # type: ignore[arg-type]
               rest_seconds=30)
    try:
        answers = await asyncio.wait_for(asyncio.gather(*(r.complete("worker", USER) for _ in range(12))), 20)
    finally:
        await r.aclose()
    assert [a.content for a in answers] == ["ok"] * 12
    assert [(e.endpoint, e.healthy) for e in emit.of(EndpointHealth)] == [("dead", False)]


async def test_a_cancelled_request_gives_its_place_back(fake_llm) -> None:
    """A call cancelled while its request is in flight frees the endpoint's slot: with one slot,
    the next call goes through instead of waiting forever."""
    slow = fake_llm(seq(Reply(content="late", delay=5), Reply(content="ok")))
    emit = Recorder()
    r = router([(slow, 1.0)], emit, max_concurrency=1)
    try:
        call = asyncio.ensure_future(r.complete("worker", USER))
        while not slow.requests:
            await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert r.states[0].in_flight == 0 and r.states[0].since == []
        assert (await asyncio.wait_for(r.complete("worker", USER), 5)).content == "ok"
    finally:
        await r.aclose()
