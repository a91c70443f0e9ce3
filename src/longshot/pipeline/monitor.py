"""The monitor: the run's figures every HEALTH_CHECK_INTERVAL, and stuck workers ended.

It is a sink on the event bus: any event about a running task that shows it is doing
something (a tool call finished, a command printed output, a model answer or a retry)
counts as progress. A worker with no progress for ``stuck_after`` seconds is flagged
(`WorkerStuck`) and ended like a timeout, so its work is salvaged onto its branch and it
hands off ``partial``. A long command that keeps printing is progress, so it is left alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from longshot.budget import RunBudget
from longshot.events import Emit, Event, Metrics, WorkerStuck
from longshot.pipeline.dispatch import TaskRunner
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.schedule import Scheduler
from longshot.types import DONE, TaskStatus

PROGRESS = frozenset({"worker.step", "worker.output", "llm.usage", "llm.retry"})


class Monitor:
    def __init__(self, scheduler: Scheduler, runner: TaskRunner, merge_queue: MergeQueue, budget: RunBudget,
                 emit: Emit, *, interval: float, stuck_after: float, max_workers: int,
                 busy: Callable[[], int] | None = None) -> None:
        self.scheduler = scheduler
        self.runner = runner
        self.merge_queue = merge_queue
        self.budget = budget
        self.emit = emit
        self.interval = interval
        self.stuck_after = stuck_after
        self.max_workers = max_workers
        self.busy = busy or (lambda: len(runner.started))
        """Worker slots in use (workers and subplanners alike, as MAX_WORKERS counts them)."""
        self.started = time.monotonic()
        self.last: dict[str, float] = {}
        """Task id -> when it last showed progress (monotonic)."""
        self.stuck: set[tuple[str, float]] = set()

    def __call__(self, event: Event) -> None:
        if event.task_id is not None and event.type in PROGRESS:
            self.last[event.task_id] = time.monotonic()

    async def run(self) -> None:
        """Tick forever (cancelled when the run ends)."""
        while True:
            await asyncio.sleep(self.interval)
            self.tick()

    def tick(self) -> None:
        self.end_stuck()
        self.emit(self.metrics())

    def end_stuck(self) -> list[str]:
        """End every worker silent for longer than ``stuck_after``; return their task ids."""
        now = time.monotonic()
        ended = []
        for task_id, started in list(self.runner.started.items()):
            silent = now - max(started, self.last.get(task_id, 0.0))
            if silent <= self.stuck_after or (task_id, started) in self.stuck:
                continue
            self.stuck.add((task_id, started))
            self.emit(WorkerStuck(task_id=task_id, silent_s=round(silent, 1)))
            why = (f"stuck: no progress for {silent:.0f}s (WORKER_STUCK_AFTER={self.stuck_after:g}); "
                   "ended, and its work so far salvaged")
            if self.runner.end(task_id, why):
                ended.append(task_id)
        return ended

    def metrics(self) -> Metrics:
        tasks = list(self.scheduler.tasks.values())

        def count(*statuses: TaskStatus) -> int:
            return sum(t.status in statuses for t in tasks)

        hours = max(1e-9, (time.monotonic() - self.started) / 3600)
        stats = self.merge_queue.stats
        attempts = stats.landed + stats.failed
        landed = count(TaskStatus.LANDED)
        ended = count(*DONE, TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.PARTIAL)
        return Metrics(
            workers_active=self.busy(), workers_total=self.max_workers,
            pending=count(TaskStatus.PENDING), done=count(*DONE), failed=count(TaskStatus.FAILED, TaskStatus.BLOCKED),
            landed=landed, landed_per_hour=round(stats.landed / hours, 1), tasks_per_hour=round(ended / hours, 1),
            merge_success_rate=round(stats.landed / attempts, 3) if attempts else 1.0,
            queue_depth=self.merge_queue.depth, tokens=self.budget.tokens, cost_usd=round(self.budget.cost_usd, 6))
