"""Benchmark of the dashboard (issue 10): its CPU cost and frame times while replaying a busy run.

Run: ``.venv/bin/python bench/dashboard_bench.py [--quick] [--seconds N]``. Prints ONE JSON
object on stdout; progress goes to stderr. The synthetic log lives in a temporary
directory removed at the end.

Target (issue 10): replaying a synthetic run of 100 workers and 50 events per second, the
dashboard costs at most 10% of one core, and no frame comes later than 500 ms.

The synthetic run (seeded, so every run of the benchmark replays the same log): 100
worker slots kept busy for SECONDS (default 60; quick 20). Each task runs 20 to 60 s;
while it runs it reports a `worker.step` or an `llm.usage` about every 3.3 s (the first
task of each slot has 2 to 60 s left, so work lands from the start); its life
adds `task.created`, `task.status` (running, merging, landed), `handoff.received`,
`merge.gate`, `merge.landed` and `merge.health`; the planner thinks for 5 s every 30 s;
a warning every 10 s. That is about 50 events per second, counted and reported.

Measured, side by side in one process, each variant replaying the log at speed 1 (its
recorded pace) from a feeder thread, as ``longshot replay`` does:

- ``read_only``: the feeder alone, events into a no-op sink (reading and parsing the log);
- ``dashboard``: the feeder into a `Dashboard` drawing at 4 Hz (at most 200 events per
  frame) into a 200x60 true-colour terminal that writes to /dev/null, keys off.

For each: process CPU seconds (all threads) over wall seconds, as a percentage of one
core; for the dashboard also the drawing thread's own CPU, frame durations (fold + draw),
the largest gap between two frames drawn, and the most events folded into one frame.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from longshot.dashboard.screen import Dashboard
from longshot.dashboard.sources import ReplayClock, replay
from longshot.events import (
    Event, GateResult, HandoffReceived, LLMUsage, MergeHealth, MergeLanded, PlannerAnswered, PlannerRequested,
    RunFinished, RunStarted, RunWarning, TaskCreated, TaskStatusChanged, WorkerStep,
)
from longshot.types import Handoff, HandoffMetrics

from common import SMOKE_HELP, machine, stats

WORKERS = 100


def log(msg: str) -> None:
    print(f"[dashboard_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def synthetic_run(seconds: float, seed: int = 10) -> list[Event]:
    """A busy run: WORKERS slots kept full for ``seconds``, about 50 events per second."""
    rng = random.Random(seed)
    t0 = 1_800_000_000.0
    events: list[Event] = [RunStarted(ts=t0, run_id="bench", request="a synthetic busy run", repo="bench",
                                      target_branch="main", max_workers=WORKERS)]
    landed = 0
    for slot in range(WORKERS):
        start, n = t0 + rng.uniform(0, 2), 0
        while start < t0 + seconds:
            task = f"t{slot:03d}-{n}"
            n += 1
            end = start + rng.uniform(2 if n == 1 else 20, 60)  # the first tasks are already under way
            events += [TaskCreated(ts=start - 0.5, task_id=task, description=f"synthetic task {task} " * 3,
                                   branch=f"worker/{task}"),
                       TaskStatusChanged(ts=start, task_id=task, before="pending", after="running")]
            t, step = start + rng.uniform(0, 3.3), 0
            while t < min(end, t0 + seconds):
                step += 1
                if step % 2:
                    events.append(WorkerStep(ts=t, task_id=task, step=step, tool="bash", ok=rng.random() > 0.1,
                                             detail=f"python -m pytest tests/test_{task}.py -q"))
                else:
                    events.append(LLMUsage(ts=t, task_id=task, role="worker", model="m", prompt_tokens=3000,
                                           completion_tokens=300, cost_usd=0.001, duration_ms=900))
                t += rng.uniform(2.6, 4.0)
            if end < t0 + seconds:
                landed += 1
                metrics = HandoffMetrics(lines_added=40, lines_removed=3, tokens_used=3300 * step, tool_calls=step)
                events += [HandoffReceived(ts=end, task_id=task, handoff=Handoff(task_id=task, status="complete",
                                           summary="done", files_changed=["a.py", "b.py"], metrics=metrics)),
                           TaskStatusChanged(ts=end, task_id=task, before="running", after="merging"),
                           GateResult(ts=end + 0.8, task_id=task, commit="c" * 40, ok=True),
                           MergeLanded(ts=end + 1.0, task_id=task, commit="d" * 40, branch=f"worker/{task}",
                                       seconds_to_land=1.0),
                           MergeHealth(ts=end + 1.0, queue_depth=rng.randint(0, 5), landed=landed, failed=0,
                                       conflicts=0, flakes=0, p50_seconds_to_land=1.0, p95_seconds_to_land=2.0),
                           TaskStatusChanged(ts=end + 1.0, task_id=task, before="merging", after="landed")]
            start = end + 1.5
    for i, t in enumerate(range(0, int(seconds), 30)):
        events += [PlannerRequested(ts=t0 + t, iteration=i + 1), PlannerAnswered(ts=t0 + t + 5, iteration=i + 1, tasks=0)]
    events += [RunWarning(ts=t0 + t, message=f"synthetic warning at {t}s") for t in range(5, int(seconds), 10)]
    events.sort(key=lambda e: e.ts)
    events = [e for e in events if e.ts <= t0 + seconds]
    events.append(RunFinished(ts=t0 + seconds, exit_code=0, green=True, duration_s=seconds))
    return events


def measure(path: Path, *, draw: bool) -> dict[str, Any]:
    clock = ReplayClock(1.0)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
    dash = Dashboard(Console(file=devnull, force_terminal=True, width=200, height=60, color_system="truecolor"),
                     clock=clock, keys=False) if draw else None
    sink = dash if dash is not None else (lambda event: None)
    feeder = threading.Thread(target=replay, args=(path, sink), kwargs={"speed": 1.0, "clock": clock})
    cpu0, wall0 = time.process_time(), time.monotonic()
    feeder.start()
    draw_cpu = 0.0
    if dash is not None:
        t = time.thread_time()
        dash.run(until=lambda: not feeder.is_alive())
        draw_cpu = time.thread_time() - t
    feeder.join()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    devnull.close()
    result: dict[str, Any] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 3),
                              "cpu_percent_of_one_core": round(100 * cpu / wall, 2)}
    if dash is not None:
        drawn = [end for _, end, _ in dash.frames]
        gaps = [b - a for a, b in zip(drawn, drawn[1:])]
        result.update({
            "drawing_thread_cpu_percent_of_one_core": round(100 * draw_cpu / wall, 2),
            "frames": len(dash.frames),
            "frame_ms": stats([1000 * (end - start) for start, end, _ in dash.frames], 1),
            "max_gap_between_frames_ms": round(1000 * max(gaps), 1),
            "gaps_over_500_ms": sum(g > 0.5 for g in gaps),
            "max_events_in_one_frame": max(n for _, _, n in dash.frames),
            "tasks_at_end": len(dash.state.tasks), "landed_at_end": dash.state.merge_landed,
        })
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="a 20 s run instead of 60 s")
    ap.add_argument("--seconds", type=float, help="length of the synthetic run")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    seconds = args.seconds or (2.0 if args.smoke else 20.0 if args.quick else 60.0)
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="longshot-dash-bench-") as tmp:
        path = Path(tmp) / "run-bench.ndjson"
        events = synthetic_run(seconds)
        path.write_text("".join(e.model_dump_json() + "\n" for e in events))
        rate = len(events) / seconds
        log(f"synthetic run: {len(events)} events over {seconds:.0f}s ({rate:.1f}/s), {WORKERS} workers")
        log("variant read_only")
        read_only = measure(path, draw=False)
        log(f"  {read_only}")
        log("variant dashboard")
        dashboard = measure(path, draw=True)
        log(f"  {dashboard}")
    result = {
        "benchmark": "dashboard", "machine": machine(), "seconds": seconds, "workers": WORKERS,
        "events": len(events), "events_per_second": round(rate, 1), "variants": {"read_only": read_only, "dashboard": dashboard},
        "targets": {"cpu_percent_of_one_core_max": 10, "frame_gap_ms_max": 500},
        "met": {"cpu": dashboard["cpu_percent_of_one_core"] <= 10, "frames": dashboard["max_gap_between_frames_ms"] <= 500},
        "took_s": round(time.time() - start, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
