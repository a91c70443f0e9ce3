"""T12: a whole run against a throttling endpoint slows down but finishes, every task landed.

Three of every five worker requests are answered 429 with ``Retry-After: 1``; the rest
answer the task's next step. The router must honour Retry-After for each retry, lower
its concurrency (AIMD), and no task may fail because of throttling.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longshot.events import LLMRetry, RunFinished
from longshot.llm.router import DECREASE_EVERY, DECREASE_FACTOR
from longshot.testing.fake_script import Reply, RoleScript, Turn

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps

TASKS = 8
RETRY_AFTER = 1.0
SLACK = 0.05
ANSWER_DELAY = 0.05


def throttling_worker() -> Any:
    """Worker requests 0, 2, 4 of every 5 (by arrival) get a 429; the others the next step."""
    seen = {"n": 0}

    def play(turn: Turn) -> Reply:
        n = seen["n"]
        seen["n"] += 1
        if n % 5 in (0, 2, 4):
            return Reply.error(429, "rate limit exceeded", retry_after=RETRY_AFTER)
        # Answers take a moment, so requests the router lets through overlap at the server.
        return worker_steps([(f"out/{turn.task_id}.txt", f"{turn.task_id}\n")], delay=ANSWER_DELAY)[turn.turn]

    return play


def replayed_limit_violations(records: list[Any], limit: float) -> list[str]:
    """Replay the router's AIMD limit from what the server saw (a 429 cuts it by a quarter at
    most once a second, a success adds 1/limit, in the order the answers ended) and list
    every request that started
    while more requests were in flight than the limit allowed (one of slack, for answers
    ending at nearly the same moment being counted in another order)."""
    points = sorted([(r.ended, 0, r) for r in records if r.ended is not None] + [(r.started, 1, r) for r in records],
                    key=lambda p: (p[0], p[1]))
    in_flight, bad, last_cut = 0, [], float("-inf")
    for _, is_start, r in points:
        if is_start:
            in_flight += 1
            if in_flight > max(1, int(limit)) + 1:
                bad.append(f"request {r.index} started with {in_flight} in flight, limit {limit:.2f}")
        else:
            in_flight -= 1
            if r.status == 429 and r.ended - last_cut >= DECREASE_EVERY:
                limit, last_cut = max(1.0, limit * DECREASE_FACTOR), r.ended
            elif r.status != 429:
                limit = min(float(TASKS), limit + 1 / limit)
    return bad


def in_flight_peak(records: list[Any], start: float, end: float) -> int:
    """Most requests in flight at once at any instant in [start, end)."""
    points = sorted({max(start, r.started) for r in records if r.started < end and (r.ended or end) > start})
    return max((sum(1 for r in records if r.started <= t < (r.ended or float("inf"))) for t in points), default=0)


def test_throttled_run_finishes_with_every_task_landed(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    tasks = [{"id": f"t{i}", "description": f"Write out/t{i}.txt", "scope": [f"out/t{i}.txt"]} for i in range(TASKS)]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": throttling_worker()}))

    code = run_inprocess(tmp_path, target, fake, MAX_WORKERS=str(TASKS), LLM_MAX_CONCURRENCY=str(TASKS),
                         CHECK_COMMANDS="none")

    events = run_log(tmp_path)
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert code == 0, finished.summary
    assert fake.errors == []
    assert sorted(finished.landed) == sorted(t["id"] for t in tasks) and finished.failed == []

    workers = [r for r in fake.requests if r.role == "worker"]
    throttled = [r for r in workers if r.status == 429]
    assert len([r for r in workers if r.status == 200]) == 2 * TASKS  # write + handoff per task
    assert 0.55 <= len(throttled) / len(workers) <= 0.65, (len(throttled), len(workers))
    assert len([e for e in events if isinstance(e, LLMRetry) and "LLMRateLimited" in e.error]) == len(throttled)

    # Each 429 was retried (same conversation, same turn), never before Retry-After ran out.
    for r in throttled:
        retry = next((o for o in workers if o.index > r.index and (o.task_id, o.turn) == (r.task_id, r.turn)), None)
        assert retry is not None, f"429 for {r.task_id} turn {r.turn} was never retried"
        assert r.ended is not None
        waited = retry.started - r.ended
        assert waited >= RETRY_AFTER - SLACK, f"{r.task_id} turn {r.turn} retried after {waited:.3f}s"

    # The concurrency limit came down: in the second half of the run fewer than
    # MAX_WORKERS worker requests were ever in flight at once.
    start = min(r.started for r in workers)
    end = max(r.ended or r.started for r in workers)
    middle = (start + end) / 2
    first_half, second_half = in_flight_peak(workers, start, middle), in_flight_peak(workers, middle, end)
    assert second_half < TASKS, (first_half, second_half)
    assert fake.peak_in_flight("worker") <= TASKS
    # Sharper: at every moment the requests in flight (all roles share the endpoint's
    # limit) stayed within the limit as cut by 429s and regrown by successes.
    assert replayed_limit_violations(fake.requests, float(TASKS)) == []

    # "A 429 puts its endpoint in cooldown for Retry-After": after the last 429 before
    # it, the endpoint's next request (whichever conversation; the throttled one is
    # always waiting) starts about Retry-After later, not a per-request exponential
    # backoff later (allowing 25% jitter and 0.3 s of scheduling).
    everything = fake.requests
    all_429 = [r for r in everything if r.status == 429 and r.ended is not None]
    late = []
    for r in all_429:
        following = [o.started for o in everything if o.started > r.ended]
        if not following:
            continue
        nxt = min(following)
        last_end = max(o.ended for o in all_429 if o.ended <= nxt)  # type: ignore[type-var]
        if nxt - last_end > 1.25 * RETRY_AFTER + 0.3:
            late.append(f"{nxt - last_end:.2f}s after the 429 of request {r.index}")
    assert late == [], f"the endpoint stayed cooled down longer than Retry-After={RETRY_AFTER:g}s: {sorted(set(late))}"
