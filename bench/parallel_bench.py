"""Benchmark of optimistic concurrency (issue 16): SCOPE_OVERLAP=hold against the default.

Run: ``.venv/bin/python bench/parallel_bench.py [--quick] [--tasks N] [--workers W] [--delay S]``.
Prints ONE JSON object on stdout; the runs' own output goes to stderr.

The target is shaped like a real library: ``pkg/`` holds N/3 modules of six stub functions
(``raise NotImplementedError``) and ``pkg/INDEX.txt``, an index of implemented functions,
one name per line. N tasks (24) each implement two functions of one module (so three tasks
share every module) and append their names to the index; each task's scope names its module
and the index, and marks the index a line-set (``"union_merge"``). The scripted model (the
fake, over real HTTP) answers every request after a fixed delay (0.5 s); a worker reads its
module, edits its two functions, appends to the index with ``bash`` (under bubblewrap) and
hands off. A worker told of a predicted conflict calls ``merge_tip`` and resolves any
markers; a conflict-fix task resolves its markers the same way. ``MAX_WORKERS=8``,
``CHECK_COMMANDS=none`` (the figures are about scheduling, not checks).

The same run is made twice in one invocation, with ``SCOPE_OVERLAP=hold`` and with the
default (``allow``), each through `longshot.cli.execute` (what ``longshot "<request>"``
runs) in this process, against a fresh bare repository. Figures come from the runs' NDJSON
logs (typed events): busy workers over time (a worker is busy from its task's ``running``
to its ``handoff.received``; peak, and the time-weighted mean from the first start to the
last handoff), makespan (``run.started`` to the last ``merge.landed``, and to
``run.finished``), conflicts predicted, conflicts at landing, conflict-fix tasks, landings,
and two checks read from git: every task landed exactly once (``Longshot-Task`` trailers on
the target, a conflict fix counting for the task it carries on) and the final tree equals
the expected one. Targets: peak busy = 8, mean >= 6; makespan (default) <= 0.35 x hold;
conflict-fix tasks <= 10% of N.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SMOKE_HELP, machine  # noqa: E402

from longshot.config import load_config  # noqa: E402
from longshot.events import (  # noqa: E402
    ConflictPredicted, Event, HandoffReceived, MergeFailed, MergeLanded, RunFinished, RunStarted, TaskCreated,
    TaskStatusChanged, read_events,
)
from longshot.testing.fake_llm import FakeLLM  # noqa: E402
from longshot.testing.fake_script import Reply, ToolCallSpec, Turn  # noqa: E402
from longshot.testing.repos import git, make_remote  # noqa: E402

FUNCS = 6
PER_TASK = 2
MODELS = {"fake-planner": "planner", "fake-worker": "worker", "fake-reconciler": "reconciler",
          "fake-subplanner": "subplanner"}
UNMARK = r"sed -i -e '/^<<<<<<< /d' -e '/^=======$/d' -e '/^>>>>>>> /d' "


def module_text(m: int, done: set[int]) -> str:
    parts = []
    for j in range(FUNCS):
        body = f"return {m * 100 + j}" if j in done else f'raise NotImplementedError("f{j}")'
        parts.append(f'def f{j}():\n    """Function {j} of module m{m}."""\n    {body}\n')
    return "\n\n".join(parts)


def plan(n: int) -> list[dict[str, Any]]:
    return [{"id": f"t{i:02d}", "description": f"Implement f{PER_TASK * (i % 3)} and f{PER_TASK * (i % 3) + 1} of "
             f"pkg/m{i // 3}.py and add their names to pkg/INDEX.txt.", "scope": [f"pkg/m{i // 3}.py", "pkg/INDEX.txt"],
             "union_merge": ["pkg/INDEX.txt"], "acceptance": "the two functions return their values"}
            for i in range(n)]


def call(name: str, delay: float, **arguments: Any) -> Reply:
    return Reply(tool_calls=[ToolCallSpec(name, arguments)], delay=delay)


def script(n: int, delay: float) -> Any:
    """The fake model: the planner plans everything at once, then says nothing more; workers
    do their two edits and the append, and follow warnings and conflict-fix tasks."""

    def play(turn: Turn) -> Reply:
        if turn.role != "worker":
            body = {"scratchpad": "all planned", "tasks": plan(n) if turn.turn == 0 and turn.role == "planner" else []}
            return Reply(content=json.dumps(body), delay=delay)
        said = [str(m.get("content")) for m in turn.messages if m.get("role") in ("user", "tool")]
        task = turn.task_id or ""
        if task.endswith("-conflict-fix"):
            steps = [call("bash", delay, command=UNMARK + "pkg/*.py pkg/INDEX.txt"),
                     call("handoff", delay, status="complete", summary="markers resolved")]
            return steps[min(turn.turn, 1)]
        if said and said[-1].startswith("CONFLICT PREDICTED"):
            return call("merge_tip", delay)
        if said and said[-1].startswith("Merged the target branch") and "CONFLICTS in" in said[-1]:
            return call("bash", delay, command=UNMARK + "pkg/*.py pkg/INDEX.txt")
        i = int(task[1:])
        m, first = i // 3, PER_TASK * (i % 3)
        steps = [call("read", delay, path=f"pkg/m{m}.py")]
        steps += [call("edit", delay, path=f"pkg/m{m}.py", old_text=f'raise NotImplementedError("f{j}")',
                       new_text=f"return {m * 100 + j}") for j in (first, first + 1)]
        steps.append(call("bash", delay, command=f"echo 'm{m}.f{first} m{m}.f{first + 1}' >> pkg/INDEX.txt"))
        steps.append(call("handoff", delay, status="complete", summary=f"implemented m{m}.f{first}, f{first + 1}"))
        done = sum(1 for s in said if s.startswith(("edited", "exit code", "     1\t")))
        return steps[min(done, len(steps) - 1)]

    return play


def target_files(n: int) -> dict[str, str]:
    files = {f"pkg/m{m}.py": module_text(m, set()) for m in range((n + 2) // 3)}
    files["pkg/__init__.py"] = '"""A library built in parallel."""\n'
    files["pkg/INDEX.txt"] = "# implemented functions, one line per task\n"
    files["README.md"] = "# pkg\n"
    return files


def expected(n: int) -> tuple[dict[str, str], set[str]]:
    done: dict[int, set[int]] = {}
    lines = {"# implemented functions, one line per task"}
    for i in range(n):
        m, first = i // 3, PER_TASK * (i % 3)
        done.setdefault(m, set()).update({first, first + 1})
        lines.add(f"m{m}.f{first} m{m}.f{first + 1}")
    return {f"pkg/m{m}.py": module_text(m, d) for m, d in done.items()}, lines


def one_run(mode: str, n: int, workers: int, delay: float, root: Path) -> dict[str, Any]:
    from longshot.cli import execute

    work = root / mode
    work.mkdir(parents=True)
    remote = make_remote(work, target_files(n))
    with FakeLLM(script(n, delay), models=MODELS) as fake:
        env = {"GIT_REPO_URL": str(remote), "LLM_BASE_URL": fake.base_url, "LLM_API_KEY": "sk-bench",
               "LLM_MODEL": "fake-worker", "PLANNER_MODEL": "fake-planner", "WORKER_MODEL": "fake-worker",
               "SUBPLANNER_MODEL": "fake-subplanner", "RECONCILER_MODEL": "fake-reconciler",
               "LONGSHOT_WORK_DIR": str(work / "work"), "LONGSHOT_LOG_DIR": str(work / "logs"),
               "CHECK_COMMANDS": "none", "MAX_WORKERS": str(workers), "SCOPE_OVERLAP": mode,
               "MAX_TASKS_PER_SPRINT": str(max(50, n)), "HEALTH_CHECK_INTERVAL": "2"}
        config = load_config(env, env_file=None)
        with contextlib.redirect_stdout(sys.stderr):
            code = execute(config, "Implement the library's functions and keep its index")
    events = list(read_events(sorted((work / "logs").glob("run-*.ndjson"))[-1]))
    return {"exit_code": code, **figures(events, n), **checks(remote, n)}


def figures(events: list[Event], n: int) -> dict[str, Any]:
    start = next(e.ts for e in events if isinstance(e, RunStarted))
    changes: list[tuple[float, int]] = []
    for e in events:
        if isinstance(e, TaskStatusChanged) and e.after == "running":
            changes.append((e.ts, 1))
        elif isinstance(e, HandoffReceived):
            changes.append((e.ts, -1))
    changes.sort()
    busy = peak = 0
    area = 0.0
    for (t0, delta), (t1, _) in zip(changes, changes[1:] + [changes[-1]]):
        busy += delta
        peak = max(peak, busy)
        area += busy * (t1 - t0)
    window = changes[-1][0] - changes[0][0] if changes else 0.0
    landed = [e for e in events if isinstance(e, MergeLanded)]
    finished = next(e.ts for e in events if isinstance(e, RunFinished))
    return {
        "peak_busy_workers": peak, "mean_busy_workers": round(area / window, 2) if window else 0.0,
        "makespan_s": round(max(e.ts for e in landed) - start, 2) if landed else None,
        "run_s": round(finished - start, 2),
        "conflicts_predicted": sum(isinstance(e, ConflictPredicted) for e in events),
        "conflicts_at_landing": sum(isinstance(e, MergeFailed) and bool(e.conflicts) for e in events),
        "conflict_fix_tasks": sum(isinstance(e, TaskCreated) and e.kind == "conflict-fix" for e in events),
        "landings": len(landed),
    }


def checks(remote: Path, n: int) -> dict[str, Any]:
    log = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=%x2C)", "main", cwd=remote)
    counts: dict[str, int] = {}
    for value in filter(None, (v.strip() for line in log.splitlines() for v in line.split(","))):
        task = value.removesuffix("-conflict-fix")
        counts[task] = counts.get(task, 0) + 1
    wanted_files, wanted_lines = expected(n)
    tree_ok = all(git("show", f"main:{p}", cwd=remote) == text.rstrip("\n") for p, text in wanted_files.items())
    index = set(git("show", "main:pkg/INDEX.txt", cwd=remote).splitlines())
    return {"every_task_landed_once": sorted(counts) == [f"t{i:02d}" for i in range(n)] and set(counts.values()) == {1},
            "final_tree_as_expected": tree_ok and index == wanted_lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=24)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds before every model answer")
    parser.add_argument("--quick", action="store_true", help="6 tasks, 3 workers, 0.1 s: a check that it works")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.quick or args.smoke:
        args.tasks, args.workers, args.delay = 6, 3, 0.1
    root = Path(tempfile.mkdtemp(prefix="longshot-parallel-bench-"))
    try:
        started = time.monotonic()
        runs = {mode: one_run(mode, args.tasks, args.workers, args.delay, root) for mode in ("hold", "allow")}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    hold, allow = runs["hold"], runs["allow"]
    ratio = round(allow["makespan_s"] / hold["makespan_s"], 3) if hold["makespan_s"] and allow["makespan_s"] else None
    result = {
        "benchmark": "parallel", "tasks": args.tasks, "max_workers": args.workers, "model_delay_s": args.delay,
        "quick": bool(args.quick or args.smoke), "hold": hold, "default": allow, "makespan_ratio_default_over_hold": ratio,
        "targets": {"peak_busy_is_max_workers": allow["peak_busy_workers"] == args.workers,
                    "mean_busy_at_least_6_of_8": allow["mean_busy_workers"] >= 0.75 * args.workers,
                    "makespan_ratio_at_most_0.35": ratio is not None and ratio <= 0.35,
                    "conflict_fixes_at_most_10pct": allow["conflict_fix_tasks"] <= 0.1 * args.tasks},
        "bench_seconds": round(time.monotonic() - started, 1), "machine": machine(), "pid": os.getpid(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
