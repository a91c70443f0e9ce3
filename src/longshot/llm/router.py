"""The router: one `ChatModel` over many endpoints, for every role.

- **Choice**: smooth weighted round-robin (nginx's) over the endpoints that can take a
  request now; each weight is scaled by observed latency (faster gets up to 2x, slower
  down to 0.5x).
- **Health**: an endpoint that fails 3 times in a row (5xx, timeout, connection, cut
  answer) rests for ``rest_seconds``, unless something says it is alive: a success in the
  last second, or a request sent no later than the failed one that is still on its way (an
  error comes back at once, an answer takes seconds: fast errors while answers are on their
  way are a flaky endpoint, not a dead one; a dead one fails those too, and then rests).
  After a rest, one probe request decides. (A flaky endpoint that keeps answering others stays in use.)
- **Failover**: a failed request goes to another endpoint at once when one is free;
  otherwise it waits a jittered exponential backoff. Transient errors (429, 5xx, timeouts,
  broken connections) are retried however many times it takes, until ``retry_seconds``
  after the call began (`RETRY_POLICY`'s ``max_seconds``, or ``LLM_RETRY_SECONDS``) or the
  budget runs out: a run of bad luck never fails a call. Other errors are bounded by their
  policy's count. The final error names the endpoint, the cause and how long it tried.
- **Waiting**: when every endpoint rests, requests wait for the first rest to end and a
  `ModelsWaiting` event says so (once per rest), so the dashboard shows why nothing moves.
- **Rate limits**: a request answered 429 waits its ``Retry-After`` (or a backoff) before it
  is sent again, and the endpoint's concurrency limit shrinks by a quarter (at most once a
  second) and grows back by one per limit's worth of successes (AIMD). Throttling slows the
  run; it does not fail tasks.
- **Budgets and accounting**: the run budget is checked before every attempt; usage and
  cost of every answer are added and reported as `LLMUsage` events.

Conversations carry their whole history in each request, so any request may go to any
endpoint.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from longshot.budget import RunBudget
from longshot.errors import BudgetExceeded, LLMError, LLMRateLimited, backoff_delay, policy_for
from longshot.events import BudgetSpent, Emit, EndpointHealth, LLMRetry, LLMUsage, ModelsWaiting, RunWarning
from longshot.llm.base import Completion, Endpoint, Message, Role
from longshot.llm.prices import PriceTable
from longshot.llm.requestlog import RequestLog

FAILURES_TO_REST = 3
DECREASE_FACTOR = 0.75
DECREASE_EVERY = 1.0
SUCCESS_WINDOW = 1.0
"""An endpoint with a success this recent is flaky, not down: it does not rest."""


@dataclass
class EndpointState:
    client: Endpoint
    weight: float
    limit: float
    max_limit: float
    current: float = 0.0
    in_flight: int = 0
    since: list[float] = field(default_factory=list)
    """When each request in flight here was sent."""
    failures: int = 0
    rest_until: float = 0.0
    cooldown_until: float = 0.0
    probing: bool = False
    latency: float | None = None
    last_decrease: float = 0.0
    last_success: float = float("-inf")
    probation: bool = False
    """It rested; until a probe succeeds, one request at a time."""
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.client.name


class Router:
    """Routes each request of each role to a healthy endpoint, with retries and budgets."""

    def __init__(
        self, endpoints: Sequence[tuple[Endpoint, float]], models: dict[Role, str], emit: Emit, *,
        budget: RunBudget | None = None, prices: PriceTable | None = None, request_log: RequestLog | None = None,
        max_concurrency: int = 64, rest_seconds: float = 30.0, retry_seconds: float | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("the router needs at least one endpoint")
        self.states = [EndpointState(c, w, float(max_concurrency), float(max_concurrency)) for c, w in endpoints]
        self.models = models
        self.emit = emit
        self.budget = budget or RunBudget()
        self.prices = prices or PriceTable()
        self.request_log = request_log
        self.rest_seconds = rest_seconds
        self.retry_seconds = retry_seconds
        """Overrides the policies' ``max_seconds`` for transient errors (None: the policy's)."""
        self._changed = asyncio.Condition()
        self._waiting_reported_until = 0.0
        self._budget_reported = False

    async def complete(
        self, role: Role, messages: list[Message], tools: list[dict[str, Any]] | None = None,
        *, task_id: str | None = None,
    ) -> Completion:
        model = self.models[role]
        attempts: dict[type, int] = {}
        failed_on: set[str] = set()
        attempt = 0
        began = time.monotonic()
        while True:
            self._check_budget()
            if len(failed_on) >= len(self.states):
                failed_on.clear()  # every endpoint failed this request once: any may take it again
            state = await self._acquire(failed_on)
            attempt += 1
            started = time.monotonic()
            state.since.append(started)
            try:
                completion = await state.client.send(model, messages, tools)
            except BaseException as e:
                await self._release(state, started)  # a cancelled request gives its place back too
                if not isinstance(e, LLMError):
                    raise
                self._log(role, task_id, state, model, messages, attempt, error=e)
                delay = self._failed(state, e, attempts, began, started)  # raises when out of attempts or time
                failed_on.add(state.name)
                # Failing over to a free endpoint costs nothing, after a 429 too (the endpoint that
                # asked for the wait gets none of this request's retries before it is over); only
                # with nowhere else to go does the request wait (Retry-After, or the backoff).
                wait = 0.0 if self._free_elsewhere(failed_on) else delay
                self.emit(LLMRetry(task_id=task_id, role=role, endpoint=state.name, attempt=attempt,
                                   error=f"{type(e).__name__}: {e}"[:300], delay_s=round(wait, 3)))
                if wait > 0:
                    self._report_waiting(time.monotonic())
                    await asyncio.sleep(min(wait, self._time_left(e, began)))
                continue
            await self._release(state, started)
            self._succeeded(state, time.monotonic() - started)
            self._account(role, task_id, state, model, completion)
            self._log(role, task_id, state, model, messages, attempt, completion=completion)
            return completion

    def _check_budget(self) -> None:
        try:
            self.budget.check()
        except BudgetExceeded as e:
            if not self._budget_reported:
                self._budget_reported = True
                self.emit(BudgetSpent(budget=e.budget, message=str(e)))
            raise

    # -- choosing an endpoint ----------------------------------------------------------

    async def _acquire(self, failed_on: set[str]) -> EndpointState:
        async with self._changed:
            while True:
                now = time.monotonic()
                state = self._pick(now, failed_on)
                if state is not None:
                    state.in_flight += 1
                    state.sent += 1
                    return state
                self._report_waiting(now)
                await self._wait(now)

    def _report_waiting(self, now: float) -> None:
        """Say once per rest that every endpoint rests and requests wait for the first back."""
        if not all(s.rest_until > now for s in self.states):
            return
        back = min(s.rest_until for s in self.states)
        if back <= self._waiting_reported_until:
            return
        self._waiting_reported_until = back
        self.emit(ModelsWaiting(endpoints=len(self.states), wait_s=round(back - now, 1),
                                reason="every model endpoint is resting after repeated failures"))

    def _available(self, s: EndpointState, now: float) -> bool:
        if s.cooldown_until > now or s.in_flight >= max(1, int(s.limit)):
            return False
        if s.rest_until > now:
            return False
        if s.probation:  # rest is over: one probe at a time
            return not s.probing
        return True

    def _pick(self, now: float, failed_on: set[str]) -> EndpointState | None:
        ready = [s for s in self.states if self._available(s, now)]
        fresh = [s for s in ready if s.name not in failed_on]
        candidates = fresh or ready
        if not candidates:
            return None
        weights = self._effective_weights(candidates)
        total = sum(weights.values())
        for s in candidates:
            s.current += weights[s.name]
        best = max(candidates, key=lambda s: s.current)
        best.current -= total
        if best.probation:
            best.probing = True
        return best

    def _effective_weights(self, candidates: list[EndpointState]) -> dict[str, float]:
        known = [s.latency for s in self.states if s.latency]
        mean = sum(known) / len(known) if known else None
        out = {}
        for s in candidates:
            factor = 1.0 if not (mean and s.latency) else min(2.0, max(0.5, mean / s.latency))
            out[s.name] = s.weight * factor
        return out

    async def _wait(self, now: float) -> None:
        """Until a slot frees up, or the next rest or cooldown ends."""
        ends = [t for s in self.states for t in (s.rest_until, s.cooldown_until) if t > now]
        timeout = max(0.01, min(ends) - now) if ends else None
        try:  # asyncio.timeout, not wait_for: the wait must get the lock back in this task when cancelled
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            pass  # a rest or cooldown ended: look again

    def _free_elsewhere(self, failed_on: set[str]) -> bool:
        now = time.monotonic()
        return any(self._available(s, now) for s in self.states if s.name not in failed_on)

    async def _release(self, state: EndpointState, started: float) -> None:
        state.since.remove(started)
        state.in_flight -= 1
        state.probing = False
        async with self._changed:
            self._changed.notify_all()

    # -- outcomes ----------------------------------------------------------------------

    def _window(self, error: LLMError) -> float | None:
        """Seconds a call may go on retrying ``error``; None when its policy bounds by count."""
        policy = policy_for(error)
        if policy.max_seconds is None:
            return None
        return self.retry_seconds if self.retry_seconds is not None else policy.max_seconds

    def _time_left(self, error: LLMError, began: float) -> float:
        window = self._window(error)
        return float("inf") if window is None else max(0.0, began + window - time.monotonic())

    def _failed(self, state: EndpointState, error: LLMError, attempts: dict[type, int], began: float,
                started: float) -> float:
        policy = policy_for(error)
        kind = type(error)
        attempts[kind] = attempts.get(kind, 0) + 1
        state.errors[kind.__name__] = state.errors.get(kind.__name__, 0) + 1
        window = self._window(error)
        spent = time.monotonic() - began
        out = spent >= window if window is not None else attempts[kind] >= policy.max_attempts
        if not policy.retry or out:
            tried = (f" after {sum(attempts.values())} attempts in {spent:.1f}s" if window is not None
                     else f" after {attempts[kind]} attempts") if policy.retry else ""
            raise type(error)(f"gave up{tried}: {error}", error.endpoint, error.retry_after) from error
        # Back off by rounds over the endpoints: trying the others first costs nothing.
        rounds = max(1, -(-attempts[kind] // len(self.states)))
        delay = backoff_delay(policy, rounds) * (1 + random.random() * 0.25)
        if isinstance(error, LLMRateLimited):
            # The request waits what the server asked (or our backoff), then may go anywhere.
            wait = error.retry_after if error.retry_after is not None else delay
            now = time.monotonic()
            # Multiplicative decrease at most once a second: a burst of 429s is one signal.
            if now - state.last_decrease >= DECREASE_EVERY:
                state.limit = max(1.0, state.limit * DECREASE_FACTOR)
                state.last_decrease = now
            return wait
        state.failures += 1
        # A dead endpoint rests; a flaky one that keeps answering others, or is working on them, does not.
        if state.failures >= FAILURES_TO_REST and not self._alive(state, started) and state.rest_until <= time.monotonic():
            state.rest_until = time.monotonic() + self.rest_seconds
            state.probation = True
            self.emit(EndpointHealth(endpoint=state.name, healthy=False,
                                     reason=f"{state.failures} failures in a row; resting {self.rest_seconds:g}s: {error}"[:300]))
        return delay

    @staticmethod
    def _alive(state: EndpointState, failed_started: float) -> bool:
        """Whether ``state`` shows signs of life after a failure of a request sent at
        ``failed_started``: a recent success, or a request sent no later that is still on its
        way (it has taken longer than the failure did; if it fails too, that failure decides)."""
        if time.monotonic() - state.last_success <= SUCCESS_WINDOW:
            return True
        return any(sent <= failed_started for sent in state.since)

    def _succeeded(self, state: EndpointState, seconds: float) -> None:
        state.last_success = time.monotonic()
        if state.probation:
            state.probation = False
            self.emit(EndpointHealth(endpoint=state.name, healthy=True, reason="probe succeeded"))
        state.failures = 0
        state.limit = min(state.max_limit, state.limit + 1.0 / state.limit)
        state.latency = seconds if state.latency is None else 0.8 * state.latency + 0.2 * seconds

    def _account(self, role: Role, task_id: str | None, state: EndpointState, model: str, c: Completion) -> None:
        cost, unknown = self.prices.cost(c.model or model, c.usage.prompt_tokens, c.usage.completion_tokens)
        if unknown:
            self.emit(RunWarning(code="price.unknown", message=f"no price known for model {c.model or model!r}: its cost counts as 0 "
                                         "(add it with LLM_PRICES_FILE)"))
        self.budget.add(role, task_id, c.usage.total, cost)
        self.emit(LLMUsage(task_id=task_id, role=role, model=c.model or model, endpoint=state.name,
                           prompt_tokens=c.usage.prompt_tokens, completion_tokens=c.usage.completion_tokens,
                           cost_usd=round(cost, 6), duration_ms=c.duration_ms))

    def _log(self, role: Role, task_id: str | None, state: EndpointState, model: str, messages: list[Message],
             attempt: int, *, completion: Completion | None = None, error: LLMError | None = None) -> None:
        if self.request_log is not None:
            self.request_log.write(role=role, task_id=task_id, endpoint=state.name, model=model,
                                   messages=messages, attempt=attempt, completion=completion, error=error)

    async def aclose(self) -> None:
        for s in self.states:
            await s.client.aclose()
        if self.request_log is not None:
            self.request_log.close()
