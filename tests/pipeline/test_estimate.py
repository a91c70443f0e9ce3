"""``--plan-only``'s estimate: history read from real run logs, the range it gives, and the
preview and end-of-run events it emits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from longshot.bus import NdjsonSink
from longshot.events import HandoffReceived, LLMUsage, MemorySink, PlanPreview, RunFinished, TaskCreated
from longshot.pipeline.estimate import (
    DEFAULT_PER_TASK, HISTORY_LOGS, INPUT_SHARE, MIN_HISTORY, OVERHEAD, estimate, preview, task_history,
)
from longshot.types import Handoff, Task


def write_log(path: Path, *events: object) -> None:
    sink = NdjsonSink.open(path)
    for event in events:
        sink(event)  # type: ignore[arg-type]


def usage(task_id: str | None, tokens: int, *, role: str = "worker") -> LLMUsage:
    return LLMUsage(task_id=task_id, role=role, model="m", prompt_tokens=tokens - tokens // 4,
                    completion_tokens=tokens // 4)


def handed_off(task_id: str) -> HandoffReceived:
    return HandoffReceived(task_id=task_id, handoff=Handoff(task_id=task_id, status="complete", summary="done"))


def test_history_counts_worker_tokens_of_finished_tasks_only(tmp_path: Path) -> None:
    write_log(tmp_path / "run-1.ndjson",
              usage("a", 1000), usage("a", 500),  # two requests of one task add up
              usage("a", 7000, role="planner"),  # not a worker's tokens
              usage("b", 2000),  # b never handed off: unfinished, not counted
              usage(None, 9000),  # no task
              handed_off("a"), handed_off("c"))  # c spent nothing: not counted
    assert task_history(tmp_path) == [1500]


def test_history_reads_only_the_newest_logs_and_ignores_other_files(tmp_path: Path) -> None:
    for n in range(HISTORY_LOGS + 2):
        write_log(tmp_path / f"run-{n:03d}.ndjson", usage(f"t{n}", 100 + n), handed_off(f"t{n}"))
    (tmp_path / "other.ndjson").write_text("not a run log\n")
    got = task_history(tmp_path)
    assert sorted(got) == [100 + n for n in range(2, HISTORY_LOGS + 2)]  # the two oldest are left out
    assert sorted(task_history(tmp_path, limit=1)) == [100 + HISTORY_LOGS + 1]


def test_history_survives_a_torn_last_line_and_an_empty_folder(tmp_path: Path) -> None:
    assert task_history(tmp_path) == []
    log = tmp_path / "run-1.ndjson"
    write_log(log, usage("a", 300), handed_off("a"))
    with log.open("a") as f:
        f.write('{"type": "llm.usage", "role": "wor')  # a crash mid-write
    assert task_history(tmp_path) == [300]


def test_without_enough_history_the_default_range_is_used_and_said() -> None:
    guess = estimate(4, [10, 20], None)
    low, high = DEFAULT_PER_TASK
    assert (guess.tokens_low, guess.tokens_high) == (int(4 * low * OVERHEAD), int(4 * high * OVERHEAD))
    assert "no history" in guess.basis and f"{low:,}" in guess.basis


def test_with_history_the_range_is_its_25th_to_90th_percentile() -> None:
    history = list(range(1000, 21000, 1000))  # 20 tasks: 1000 .. 20000
    assert len(history) >= MIN_HISTORY
    guess = estimate(1, list(reversed(history)), None)  # order does not matter
    assert guess.tokens_low == int(6000 * OVERHEAD)  # ordered[20 // 4]
    assert guess.tokens_high == int(19000 * OVERHEAD)  # ordered[int(20 * 0.9)]
    assert guess.basis.startswith("20 finished tasks")


def test_the_high_end_never_runs_past_the_largest_task() -> None:
    guess = estimate(1, [5, 5, 9], None)
    assert guess.tokens_high == int(9 * OVERHEAD)
    assert guess.tokens_low <= guess.tokens_high


def test_tokens_already_spent_are_added_to_both_ends_and_zero_tasks_cost_only_that() -> None:
    assert (estimate(0, [], None).tokens_low, estimate(0, [], None).tokens_high) == (0, 0)
    guess = estimate(0, [], (1.0, 2.0), spent=12_345)
    assert (guess.tokens_low, guess.tokens_high) == (12_345, 12_345)
    more = estimate(2, [], None, spent=1000)
    assert more.tokens_low == 1000 + int(2 * DEFAULT_PER_TASK[0] * OVERHEAD)


def test_no_price_means_no_cost_never_zero_dollars() -> None:
    guess = estimate(3, [], None)
    assert guess.cost_low_usd is None and guess.cost_high_usd is None
    assert "cost unknown" in guess.basis and "price" in guess.basis


def test_the_cost_uses_the_input_heavy_mix_of_the_worker_price() -> None:
    guess = estimate(1, [1_000_000] * MIN_HISTORY, (3.0, 15.0))
    per_token = (INPUT_SHARE * 3.0 + (1 - INPUT_SHARE) * 15.0) / 1_000_000
    assert guess.cost_low_usd == pytest.approx(round(guess.tokens_low * per_token, 4))
    assert guess.cost_high_usd == pytest.approx(round(guess.tokens_high * per_token, 4))
    free = estimate(1, [], (0.0, 0.0))
    assert free.cost_low_usd == 0.0  # a known price of zero is a cost of zero, not "unknown"


def test_preview_emits_the_plan_then_a_successful_end_that_says_how_to_go_on() -> None:
    sink = MemorySink()
    tasks = [Task(id="a", description="do a", scope=["a.py"], branch="w/a"),
             Task(id="b", description="do b", scope=["b.py", "c.py"], branch="w/b",
                  depends_on=["a"])]
    guess = estimate(len(tasks), [], (1.0, 1.0), spent=500)
    started = time.monotonic()
    code = preview(tasks, guess, sink, started=started, tokens=500, cost_usd=0.12345678)
    assert code == 0
    shown, finished = sink.events
    assert isinstance(shown, PlanPreview) and isinstance(finished, RunFinished)
    assert shown.tasks == [{"id": "a", "description": "do a", "scope": ["a.py"], "depends_on": []},
                           {"id": "b", "description": "do b", "scope": ["b.py", "c.py"], "depends_on": ["a"]}]
    assert (shown.tokens_low, shown.tokens_high, shown.cost_low_usd) == (guess.tokens_low, guess.tokens_high,
                                                                          guess.cost_low_usd)
    assert shown.basis == guess.basis
    assert finished.exit_code == 0 and finished.green is False
    assert finished.tokens == 500 and finished.cost_usd == 0.123457
    assert "2 tasks" in finished.summary and "--resume" in finished.summary and "--reset" in finished.summary


def test_preview_of_an_empty_plan_still_ends_the_run() -> None:
    sink = MemorySink()
    started = time.monotonic()
    code = preview([], estimate(0, [], None), sink, started=started, tokens=0, cost_usd=0.0)
    assert code == 0
    assert [type(e) for e in sink.events] == [PlanPreview, RunFinished]
    assert sink.of_type(PlanPreview)[0].tasks == [] and "0 tasks" in sink.events[-1].summary
    assert not sink.of_type(TaskCreated)
