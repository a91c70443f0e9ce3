"""Budgets: a task's token budget, the run's token and cost budgets, and unknown prices.

Whole runs in this process against the fake model; tokens are what the fake reports
(a quarter of the characters), so sizes below are chosen with wide margins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longshot.events import (
    BudgetSpent, Event, HandoffReceived, LLMUsage, RunFinished, RunWarning, TaskStatusChanged,
)
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.prices import PriceTable
from longshot.llm.router import Router
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps

BIG = "x" * 40_000  # about 10,000 completion tokens in one answer
MAX_WORKERS = 2


def of(events: list[Event], cls: type[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def trailers(target: Path) -> list[str]:
    log = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=)", "main", cwd=target)
    return sorted(line.strip() for line in log.splitlines() if line.strip())


def no_price_warnings(events: list[Event], model: str) -> list[RunWarning]:
    return [e for e in of(events, RunWarning) if e.code == "price.unknown" and repr(model) in e.message]


# -- (a) the task budget ------------------------------------------------------------------

def test_task_budget_stops_a_worker_after_its_first_step(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    tasks = [{"id": "t1", "description": "Write a.txt and b.txt", "scope": ["a.txt", "b.txt"]}]
    worker = worker_steps([("a.txt", "a\n"), ("b.txt", "b\n")])
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": worker}))

    code = run_inprocess(tmp_path, target, fake, TASK_MAX_TOKENS="50", CHECK_COMMANDS="none")

    events = run_log(tmp_path)
    assert fake.errors == []
    assert fake.count(role="worker", task_id="t1") == 1  # stopped after its first step
    (handoff,) = [e.handoff for e in of(events, HandoffReceived)]
    assert handoff.status == "partial"
    assert any("TASK_MAX_TOKENS=50" in c for c in handoff.concerns), handoff.concerns
    assert handoff.commit and handoff.files_changed == ["a.txt"]  # the first step's work is kept
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert code == 1 and finished.exit_code == 1
    assert finished.unlanded == ["t1"] and finished.landed == []
    assert "unlanded" in finished.summary and "t1" in finished.summary
    assert trailers(target) == []
    # (d) in a run: models without a price are reported once each, however many requests.
    assert len(no_price_warnings(events, "fake-worker")) == 1
    assert len(no_price_warnings(events, "fake-planner")) == 1
    assert fake.count(role="planner") >= 2


# -- (b, c) the run budgets ------------------------------------------------------------------

def budget_script() -> RoleScript:
    """Four tasks, two workers. t1 is quick and its handoff is one very large answer, which
    spends the run budget; t2's first answer is still in flight then; t3 and t4 wait."""
    tasks = [{"id": f"t{i}", "description": f"Write f{i}.txt", "scope": [f"f{i}.txt"]} for i in range(1, 5)]

    def worker(turn: Turn) -> Reply:
        tid = turn.task_id or "?"
        # t1 takes 0.3 s per answer, so t2's first request (answered after 1.5 s) has
        # certainly started when t1's handoff spends the budget.
        delay = 1.5 if tid == "t2" else 0.3
        if turn.turn == 0:
            return Reply(tool_calls=[ToolCallSpec("write", {"path": f"f{tid[1:]}.txt", "content": tid + "\n"})],
                         delay=delay)
        summary = "done " + (BIG if tid == "t1" else "")
        return Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": summary})], delay=delay)

    return RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": worker})


def check_run_stopped_by_budget(tmp_path: Path, target: Path, fake: Any, code: int, budget_name: str) -> tuple[list[Event], int]:
    """What both run budgets must do; returns the events and the index of the answer that
    spent the budget (in the order of `LLMUsage` events)."""
    events = run_log(tmp_path)
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert fake.errors == []
    assert code == 1 and finished.exit_code == 1, finished.summary
    spent = of(events, BudgetSpent)
    assert len(spent) == 1 and spent[0].budget == budget_name and budget_name in spent[0].message
    assert budget_name in finished.summary
    # Completed work landed; tasks not started were cancelled and never reached the model.
    assert trailers(target) == ["t1"] and finished.landed == ["t1"]
    status = {}
    for e in of(events, TaskStatusChanged):
        status.setdefault(e.task_id, []).append(e.after)
    assert status["t3"] == ["cancelled"] and status["t4"] == ["cancelled"], status
    assert fake.count(task_id="t3") == 0 and fake.count(task_id="t4") == 0
    # t2 was running: its answer in flight was counted, then it stopped partial.
    t2 = next(e.handoff for e in of(events, HandoffReceived) if e.task_id == "t2")
    assert t2.status == "partial" and any(budget_name in c for c in t2.concerns), t2
    assert fake.count(task_id="t2") == 1 and t2.files_changed == ["f2.txt"]
    assert finished.unlanded == ["t2"]  # its partial work is on its branch, not landed
    # Every request sent was answered and counted; none started after the budget ran out.
    usage = of(events, LLMUsage)
    assert len(usage) == fake.count()
    crossing = next(i for i, e in enumerate(usage) if e.task_id == "t1" and e.completion_tokens > 5000)
    assert len(usage) - crossing <= MAX_WORKERS + 1  # the crossing answer, plus those in flight
    assert finished.tokens == sum(e.prompt_tokens + e.completion_tokens for e in usage)
    return events, crossing


def test_run_token_budget_stops_the_run_mid_way(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    fake = fake_llm(budget_script())
    budget = 5000  # more than the planner and t1's first step, far less than t1's handoff

    code = run_inprocess(tmp_path, target, fake, RUN_MAX_TOKENS=str(budget), MAX_WORKERS=str(MAX_WORKERS),
                         CHECK_COMMANDS="none")

    events, crossing = check_run_stopped_by_budget(tmp_path, target, fake, code, "RUN_MAX_TOKENS")
    usage = [e.prompt_tokens + e.completion_tokens for e in of(events, LLMUsage)]
    assert sum(usage[:crossing]) < budget <= sum(usage[: crossing + 1])  # this answer spent it
    finished = events[-1]
    overshoot = finished.tokens - budget
    in_flight = sum(usage[crossing:])  # the crossing answer and those still in flight
    print(f"RUN_MAX_TOKENS={budget}: counted {finished.tokens}, overshoot {overshoot} tokens "
          f"(bound: in flight {in_flight}, MAX_WORKERS x largest request {MAX_WORKERS * max(usage)})")
    assert 0 < overshoot <= in_flight <= MAX_WORKERS * max(usage)


def test_run_cost_budget_stops_the_run(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    fake = fake_llm(budget_script())
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"fake-planner": [1000.0, 1000.0], "fake-worker": [1000.0, 1000.0]}))
    budget = 5.0  # USD: 5,000 tokens at $1,000 per million

    code = run_inprocess(tmp_path, target, fake, RUN_MAX_COST_USD=str(budget), LLM_PRICES_FILE=str(prices),
                         MAX_WORKERS=str(MAX_WORKERS), CHECK_COMMANDS="none")

    events, crossing = check_run_stopped_by_budget(tmp_path, target, fake, code, "RUN_MAX_COST_USD")
    finished = events[-1]
    usage = of(events, LLMUsage)
    assert all(e.cost_usd > 0 for e in usage)
    assert finished.cost_usd > budget
    assert abs(finished.cost_usd - finished.tokens / 1000) < 1e-3
    assert abs(finished.cost_usd - sum(e.cost_usd for e in usage)) < 1e-3
    assert sum(e.cost_usd for e in usage[:crossing]) < budget
    assert not [e for e in of(events, RunWarning) if "no price known" in e.message]


# -- (d) unknown prices, at the router ----------------------------------------------------------

async def test_unknown_model_price_warns_once_naming_the_model(tmp_path: Path, fake_llm) -> None:
    fake = fake_llm(lambda turn: Reply(content="ok"))
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"fake-planner": [1.0, 2.0]}))  # the worker model has no price
    events: list[Event] = []
    ep = OpenAICompatEndpoint(name="only", base_url=fake.base_url, api_key="sk-test")
    models = {"planner": "fake-planner", "worker": "fake-worker", "subplanner": "fake-planner",
              "reconciler": "fake-planner"}
    r = Router([(ep, 1.0)], models, events.append, prices=PriceTable(prices))  # type: ignore[arg-type]
    try:
        for _ in range(3):
            await r.complete("worker", [{"role": "user", "content": "w"}], task_id="t1")
            await r.complete("planner", [{"role": "user", "content": "p"}])
    finally:
        await r.aclose()
    warnings = of(events, RunWarning)
    assert len(warnings) == 1, [w.message for w in warnings]
    assert "'fake-worker'" in warnings[0].message and "LLM_PRICES_FILE" in warnings[0].message
    usage = of(events, LLMUsage)
    assert all(e.cost_usd == 0 for e in usage if e.role == "worker")
    assert all(e.cost_usd > 0 for e in usage if e.role == "planner")
