"""``--plan-only``: what running the recorded plan may cost, as a range, and the preview event.

The range per task comes from history when there is some (the tokens workers of earlier
runs in ``LONGSHOT_LOG_DIR`` spent per finished task: the 25th to 90th percentile), else
from `DEFAULT_PER_TASK`. Reconciler sweeps, follow-up planning and fixes add `OVERHEAD`.
The cost uses the worker model's price, with agent loops' typical mix of mostly input
tokens (`INPUT_SHARE`); no price, no cost (None), never $0.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from longshot.events import Emit, HandoffReceived, LLMUsage, PlanPreview, RunFinished, read_events
from longshot.types import Task

DEFAULT_PER_TASK = (60_000, 400_000)
OVERHEAD = 1.15
INPUT_SHARE = 0.9
HISTORY_LOGS = 10
MIN_HISTORY = 3


@dataclass(frozen=True)
class Estimate:
    tokens_low: int
    tokens_high: int
    cost_low_usd: float | None
    cost_high_usd: float | None
    basis: str


def task_history(log_dir: Path, limit: int = HISTORY_LOGS) -> list[int]:
    """Tokens that workers spent per finished task in the newest ``limit`` run logs."""
    spent: list[int] = []
    for log in sorted(log_dir.glob("run-*.ndjson"))[-limit:]:
        tokens: dict[str, int] = defaultdict(int)
        finished: set[str] = set()
        for event in read_events(log):
            if isinstance(event, LLMUsage) and event.role == "worker" and event.task_id:
                tokens[event.task_id] += event.prompt_tokens + event.completion_tokens
            elif isinstance(event, HandoffReceived) and event.task_id:
                finished.add(event.task_id)
        spent += [tokens[t] for t in finished if tokens.get(t)]
    return spent


def estimate(tasks: int, history: list[int], price: tuple[float, float] | None, spent: int = 0) -> Estimate:
    """The range for ``tasks`` tasks, plus the ``spent`` tokens planning took."""
    if len(history) >= MIN_HISTORY:
        ordered = sorted(history)
        low, high = ordered[len(ordered) // 4], ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        basis = f"{len(history)} finished tasks of earlier runs (25th to 90th percentile per task)"
    else:
        low, high = DEFAULT_PER_TASK
        basis = f"{low:,} to {high:,} tokens per task (no history of earlier runs in the log folder)"
    t_low, t_high = spent + int(tasks * low * OVERHEAD), spent + int(tasks * high * OVERHEAD)
    if price is None:
        return Estimate(t_low, t_high, None, None, basis + "; cost unknown: no price for the worker model")
    per_token = (INPUT_SHARE * price[0] + (1 - INPUT_SHARE) * price[1]) / 1_000_000
    return Estimate(t_low, t_high, round(t_low * per_token, 4), round(t_high * per_token, 4), basis)


def preview(tasks: Iterable[Task], guess: Estimate, emit: Emit, *, started: float, tokens: int, cost_usd: float) -> int:
    """Emit the plan and its estimate, then the end of this planning-only run; exit 0."""
    shown = [{"id": t.id, "description": t.description, "scope": list(t.scope), "depends_on": list(t.depends_on)}
             for t in tasks]
    emit(PlanPreview(tasks=shown, tokens_low=guess.tokens_low, tokens_high=guess.tokens_high,
                     cost_low_usd=guess.cost_low_usd, cost_high_usd=guess.cost_high_usd, basis=guess.basis))
    summary = (f"plan recorded: {len(shown)} tasks, no worker started. Run it with: longshot --resume "
               "(or start over with a new request and --reset)")
    emit(RunFinished(exit_code=0, green=False, summary=summary, duration_s=round(time.monotonic() - started, 3),
                     tokens=tokens, cost_usd=round(cost_usd, 6)))
    return 0
