"""The monitor's parts on their own: which events count as progress, a silent worker ended
once (its work salvaged, the setting named), one that just showed progress left alone, and
the figures of a `Metrics` event from real tasks, merge results and spend. Workers run in real
local sandboxes through the real `TaskRunner`; the harness is a small fake of its protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from longshot.budget import RunBudget
from longshot.events import (
    HandoffReceived, LLMRetry, LLMUsage, MemorySink, Metrics, TaskCreated, WorkerOutput, WorkerStep, WorkerStuck,
)
from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.pipeline.dispatch import TaskRunner
from longshot.pipeline.merge import MergeQueue
from longshot.pipeline.monitor import Monitor
from longshot.pipeline.schedule import Scheduler
from longshot.sandboxes.base import Sandbox
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.types import Handoff, MergeResult, Task, TaskStatus

from stagekit import open_hub

SILENT_FOR = 0.5
"""How long the fake worker's command prints nothing (the silence the monitor measures)."""


class QuietWorker:
    """Writes a file, runs a command that prints nothing, says so, then waits to be ended."""

    def __init__(self) -> None:
        self.quiet = asyncio.Event()

    async def run(self, task: Task, sandbox: Sandbox) -> HarnessResult:
        await sandbox.write_file("work.txt", b"half done\n")
        await sandbox.exec(f"sleep {SILENT_FOR}", 30)
        self.quiet.set()
        await asyncio.Event().wait()  # until the monitor ends it
        raise AssertionError("not reached")


class Rig:
    def __init__(self, tmp_path: Path, hub: Hub, *, stuck_after: float, busy: int | None = None) -> None:
        self.sink = MemorySink()
        self.hub = hub
        self.harness = QuietWorker()
        provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(tasks_dir=tmp_path / "tasks"))
        self.runner = TaskRunner(hub, provider, self.harness, self.sink, timeout=120)
        self.scheduler = Scheduler(self.sink)
        self.merges = MergeQueue(hub, "merge", self.sink)
        self.budget = RunBudget()
        self.monitor = Monitor(self.scheduler, self.runner, self.merges, self.budget, self.sink, interval=0.01,
                               stuck_after=stuck_after, max_workers=7, busy=None if busy is None else (lambda: busy))

    async def quiet_worker(self, task: Task) -> asyncio.Task[Handoff]:
        running = asyncio.create_task(self.runner.run(task))
        quiet = asyncio.create_task(self.harness.quiet.wait())
        await asyncio.wait([running, quiet], return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()  # the worker failed to start: show why
        return running


def task(task_id: str, status: TaskStatus = TaskStatus.PENDING) -> Task:
    return Task(id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}", status=status)


@pytest.fixture
async def hub(tmp_path: Path) -> Hub:
    return await open_hub(tmp_path, {"README.md": "r\n"})


async def test_only_progress_events_about_a_task_are_recorded(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=60)
    rig.monitor(WorkerStep(task_id="a", step=1, tool="bash", ok=True))
    rig.monitor(WorkerOutput(task_id="b", bytes=10))
    rig.monitor(LLMUsage(task_id="c", role="worker", model="m"))
    rig.monitor(LLMRetry(task_id="d", role="worker", endpoint="e", attempt=1, error="500"))
    rig.monitor(LLMUsage(role="planner", model="m"))  # no task
    rig.monitor(TaskCreated(task_id="e", description="x", branch="worker/e"))  # not progress
    rig.monitor(WorkerStuck(task_id="f", silent_s=3.0))  # being flagged is not progress
    assert set(rig.monitor.last) == {"a", "b", "c", "d"}


async def test_a_silent_worker_is_flagged_once_ended_and_its_work_salvaged(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=SILENT_FOR / 5)
    running = await rig.quiet_worker(task("quiet"))
    rig.monitor(WorkerOutput(task_id="other", bytes=1))  # another task's progress does not count for it
    assert rig.monitor.end_stuck() == ["quiet"]
    assert rig.monitor.end_stuck() == []  # ending takes a moment: it is not flagged again meanwhile
    [stuck] = rig.sink.of_type(WorkerStuck)
    assert stuck.task_id == "quiet" and stuck.silent_s >= SILENT_FOR
    handoff = await running
    assert handoff.status == "partial"
    assert f"WORKER_STUCK_AFTER={SILENT_FOR / 5:g}" in handoff.summary and "salvaged" in handoff.summary
    assert handoff.commit is not None and "work.txt" in handoff.files_changed
    assert await hub.show(handoff.commit, "work.txt") == "half done\n"
    assert rig.runner.started == {} and rig.monitor.end_stuck() == []


async def test_a_tick_ends_stuck_workers_then_reports(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=SILENT_FOR / 5)
    running = await rig.quiet_worker(task("quiet"))
    rig.monitor.tick()
    assert [type(e) for e in rig.sink.events if isinstance(e, (WorkerStuck, Metrics))] == [WorkerStuck, Metrics]
    assert (await running).status == "partial"


async def test_a_worker_that_just_showed_progress_is_left_alone(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=SILENT_FOR / 5)
    running = await rig.quiet_worker(task("busy"))
    rig.monitor(WorkerOutput(task_id="busy", bytes=1))  # its command printed just now
    assert rig.monitor.end_stuck() == []
    assert rig.sink.of_type(WorkerStuck) == [] and not running.done()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_worker_within_its_allowance_is_not_ended_and_tick_still_reports(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=3600)
    running = await rig.quiet_worker(task("slow"))
    rig.monitor.tick()
    assert rig.sink.of_type(WorkerStuck) == []
    [metrics] = rig.sink.of_type(Metrics)
    assert metrics.workers_active == 1  # by default, the workers the runner has started
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert rig.sink.of_type(HandoffReceived) == []


async def test_metrics_count_tasks_by_status_merges_and_spend(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=60, busy=3)
    statuses = [TaskStatus.PENDING, TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.LANDED,
                TaskStatus.LANDED, TaskStatus.UNCHANGED, TaskStatus.SUPERSEDED, TaskStatus.COMPLETED,
                TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.PARTIAL, TaskStatus.CANCELLED,
                TaskStatus.DECOMPOSED]
    for n, status in enumerate(statuses):
        rig.scheduler.add(task(f"t{n}", status))
    for landed, already in [(True, False), (True, False), (False, False), (False, True)]:
        rig.merges.stats.record(MergeResult(task_id="x", landed=landed, already_landed=already))
    rig.merges.submit(task("queued"), "0" * 40)
    rig.budget.add("worker", "t4", 1200, 0.0123456789)
    rig.budget.add("planner", None, 300, 0.001)
    m = rig.monitor.metrics()
    assert (m.workers_active, m.workers_total) == (3, 7)
    assert (m.pending, m.done, m.failed, m.landed) == (2, 5, 2, 2)
    assert m.merge_success_rate == round(2 / 3, 3)  # an already-landed change is neither
    assert m.queue_depth == 1
    assert m.tokens == 1500 and m.cost_usd == round(0.0133456789, 6)
    assert m.landed_per_hour > 0 and m.tasks_per_hour >= m.landed_per_hour


async def test_metrics_of_an_empty_run_are_zero_with_a_perfect_merge_rate(tmp_path: Path, hub: Hub) -> None:
    m = Rig(tmp_path, hub, stuck_after=60).monitor.metrics()
    assert (m.workers_active, m.pending, m.done, m.failed, m.landed, m.queue_depth, m.tokens) == (0, 0, 0, 0, 0, 0, 0)
    assert m.merge_success_rate == 1.0 and m.landed_per_hour == 0.0 and m.tasks_per_hour == 0.0


async def test_run_ticks_until_cancelled(tmp_path: Path, hub: Hub) -> None:
    rig = Rig(tmp_path, hub, stuck_after=60)
    ticking = asyncio.create_task(rig.monitor.run())
    async with asyncio.timeout(60):
        while len(rig.sink.of_type(Metrics)) < 3:
            await asyncio.sleep(rig.monitor.interval)
    ticking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticking
    assert len(rig.sink.of_type(Metrics)) >= 3
