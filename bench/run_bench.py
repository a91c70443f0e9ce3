"""Benchmark of a whole run at scale (issue 9): many tasks, many workers, a slow model.

Run: ``.venv/bin/python bench/run_bench.py [--quick] [--tasks-dir disk|shm|both] [--repeat N]``.
Prints ONE JSON object on stdout; progress goes to stderr. Everything lives in a temporary
directory on the work disk (and, for ``shm``, one on /dev/shm), removed at the end.

The run is the real thing end to end, in three processes:

- **the fake model** (this script's ``_fake`` mode, a child process): `FakeLLM` over real
  HTTP on loopback, every reply held back ``--delay`` seconds (1 s). The planner's first
  answer holds all N tasks (``MAX_TASKS_PER_SPRINT=N``), later answers ``"tasks": []``. A
  worker's five requests, by turn (the count of assistant messages so far): ``write``
  ``work/<id>/notes.md``; ``read`` it; ``write`` ``work/<id>/result.txt``; ``bash`` (``grep``
  and ``wc`` under bubblewrap); ``handoff`` complete. Before the run, 100 (or MAX_WORKERS)
  requests are sent at once to check that the fake answers them all in about one delay.
- **the orchestrator** (this script's ``_orchestrate`` mode, a child process):
  `longshot.cli.execute` with a `Config` from the environment, exactly what ``longshot
  "<request>"`` runs (plain output, redirected to a file), against a bare target repository
  made by `make_remote`; the local sandbox provider with bubblewrap; the merge queue and the
  state writer. ``CHECK_COMMANDS=none``: there is no meaningful check for this work, so the
  gate (``MERGE_GATE=auto``) has nothing to run and queued changes land unchecked, stacked
  in batches of up to ``MERGE_BATCH``. It reports its own ``getrusage(RUSAGE_SELF)`` (CPU, peak RSS) and
  ``RUSAGE_CHILDREN`` (the git and bubblewrap processes it waited for).
- **this process**: prepares, starts both, and reads the run's NDJSON log (typed events,
  never text) for the figures.

Figures: makespan from ``run.started`` to ``run.finished`` and to the last
``merge.landed``; the lower bound ``N x 5 x delay / MAX_WORKERS``; their ratio; the
orchestrator's CPU per task (self) and its children's; peak RSS; state writes (count and
total seconds from ``state.saved`` events, their share of the makespan, and, measured alone
after the run on its final document, the CPU one write costs, times the count, as a share
of the run's CPU); landings per second and merge batches; and per task where the time went
(``worker_phases_s``: the sandbox opening, the model, the tools, the harness, the snapshot
and handoff; then the merge queue).

What bounds the makespan: ``machine_cpu`` is how busy the CPUs the run could use were while it
ran (from /proc/stat; everything on them counts), and ``cpu_floor`` sets the CPU the run needed
(orchestrator, its children and the fake model) against the bound: ``excess_s`` is the
makespan minus the bound, and ``lockstep_ratio`` is (bound + CPU / cores) / bound, the ratio
if every wave of workers did its CPU work in step (all answers come back together after
``--delay``) and none of it overlapped a wait for the model. ``--cpus N`` runs everything on
N CPUs: if the excess grows as 1 / N, the excess is CPU, and the cores a target needs follow.

Diagnosis: ``PYTHONASYNCIODEBUG=1`` (passed to the orchestrator: asyncio logs callbacks that
block the loop), ``--git-trace`` counts and times git processes by command (trace2),
``--profile PREFIX`` samples the orchestrator with py-spy, ``--keep`` keeps the directories.
With ``PYTHONPATH=<another checkout>/src`` the orchestrator runs that code (e.g. an older
commit, to measure before and after with the same script).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import SMOKE_HELP, machine, stats

SCRIPT = Path(__file__).resolve()
MODELS = {"fake-planner": "planner", "fake-worker": "worker", "fake-reconciler": "reconciler",
          "fake-subplanner": "subplanner", "fake-probe": "reconciler"}
REQUEST = "Write the notes and results of every item (run_bench)"
STEPS = 5


def log(msg: str) -> None:
    print(f"[run_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the fake model (child process) -------------------------------------------------------

def task_id(n: int) -> str:
    return f"task-{n:04d}"


def fake_script(n_tasks: int, delay: float) -> Any:
    from longshot.testing.fake_script import Reply, ScriptExhausted, ToolCallSpec, Turn

    tasks = [{"id": task_id(n), "description": f"Write the notes and the result of item {n}.",
              "scope": [f"work/{task_id(n)}/notes.md", f"work/{task_id(n)}/result.txt"],
              "acceptance": "Both files exist; the result counts the notes' items."} for n in range(1, n_tasks + 1)]
    plan = json.dumps({"scratchpad": f"{n_tasks} independent items", "tasks": tasks})
    done = json.dumps({"scratchpad": "all planned", "tasks": []})

    def call(name: str, **arguments: Any) -> Reply:
        return Reply(tool_calls=[ToolCallSpec(name, arguments)], delay=delay)

    def play(turn: Turn) -> Reply:
        if turn.role == "planner":
            return Reply(content=plan if turn.turn == 0 else done, delay=delay)
        if turn.model == "fake-probe":
            return Reply(content="pong", delay=delay)
        if turn.role != "worker" or turn.task_id is None:
            raise ScriptExhausted(turn, "only the planner and workers are scripted")
        d = f"work/{turn.task_id}"
        steps = [
            lambda: call("write", path=f"{d}/notes.md", content="".join(f"- item {i}\n" for i in range(20))),
            lambda: call("read", path=f"{d}/notes.md"),
            lambda: call("write", path=f"{d}/result.txt", content=f"{turn.task_id}: 20 items\n"),
            lambda: call("bash", command=f"grep -c item {d}/notes.md && wc -l {d}/notes.md {d}/result.txt"),
            lambda: call("handoff", status="complete", summary=f"notes and result of {turn.task_id} written"),
        ]
        if turn.turn >= len(steps):
            raise ScriptExhausted(turn, f"{len(steps)} replies scripted")
        return steps[turn.turn]()

    return play


def serve_fake(n_tasks: int, delay: float) -> None:
    """Serve until stdin closes; print the base URL first and the fake's figures last."""
    from longshot.testing.fake_llm import FakeLLM

    fake = FakeLLM(fake_script(n_tasks, delay), models=MODELS).start()
    print(json.dumps({"base_url": fake.base_url}), flush=True)
    sys.stdin.read()
    records = fake.requests
    fake.stop()
    by_role: dict[str, int] = {}
    for r in records:
        key = "probe" if r.model == "fake-probe" else str(r.role)
        by_role[key] = by_role.get(key, 0) + 1
    print(json.dumps({"requests": by_role, "peak_in_flight": fake.peak_in_flight(), "errors": fake.errors[:5],
                      "error_count": len(fake.errors), "disconnects": len(fake.disconnects)}), flush=True)


def probe(base_url: str, n: int) -> dict[str, Any]:
    """``n`` requests at once; each should take about one delay."""
    durations: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        body = json.dumps({"model": "fake-probe", "messages": [{"role": "user", "content": f"probe {i}"}]}).encode()
        req = urllib.request.Request(f"{base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
            with lock:
                durations.append(time.monotonic() - started)
        except OSError as e:
            with lock:
                failures.append(repr(e))

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"concurrent": n, "answered": len(durations), "failures": failures[:3],
            "wall_s": round(time.monotonic() - started, 3), "per_request_s": stats(durations) if durations else {}}


# -- the orchestrator (child process) -----------------------------------------------------

def orchestrate(usage_path: Path, request: str) -> None:
    """`longshot.cli.execute` as ``longshot "<request>"`` runs it; then this process's rusage."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    from longshot.cli import execute
    from longshot.config import load_config

    imported = resource.getrusage(resource.RUSAGE_SELF)
    code = execute(load_config(), request)
    after, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = lambda r: r.ru_utime + r.ru_stime  # noqa: E731
    usage_path.write_text(json.dumps({
        "exit_code": code, "cpu_self_s": round(cpu(after) - cpu(imported), 3),
        "cpu_user_s": round(after.ru_utime - imported.ru_utime, 3), "cpu_sys_s": round(after.ru_stime - imported.ru_stime, 3),
        "cpu_imports_s": round(cpu(imported) - cpu(before), 3), "cpu_children_s": round(cpu(children), 3),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "voluntary_switches": after.ru_nvcsw, "involuntary_switches": after.ru_nivcsw,
    }))


# -- one run --------------------------------------------------------------------------------

def one_run(base: Path, *, n_tasks: int, workers: int, delay: float, tasks_dir: Path | None,
            files: int, profile: Path | None = None, git_trace: bool = False) -> dict[str, Any]:
    from longshot.testing.repos import make_remote

    base.mkdir(parents=True)
    repo_files = {"README.md": "# items\n", "work/.keep": ""}
    repo_files.update({f"src/mod{i}.py": f"VALUE = {i}\n" for i in range(files)})
    remote = make_remote(base, repo_files)
    prices = base / "prices.json"
    prices.write_text(json.dumps({name: [0.4, 1.6] for name in MODELS}))
    home = base / "home"
    home.mkdir()
    trace = base / "trace2"
    if git_trace:  # every git process the orchestrator starts logs its argv and wall time (trace2, global config)
        trace.mkdir()
        (home / ".gitconfig").write_text(f"[trace2]\n\teventTarget = {trace}\n")
    fake = subprocess.Popen([sys.executable, str(SCRIPT), "_fake", str(n_tasks), str(delay)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=base)
    try:
        assert fake.stdout is not None and fake.stdin is not None
        base_url = json.loads(fake.stdout.readline())["base_url"]
        log(f"fake model at {base_url}; probing {workers} concurrent requests")
        probed = probe(base_url, workers)
        log(f"probe: {probed['answered']}/{workers} answered in {probed['wall_s']} s")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
               "GIT_REPO_URL": str(remote), "LLM_BASE_URL": base_url, "LLM_API_KEY": "sk-bench",
               "LLM_MODEL": "fake-worker", "PLANNER_MODEL": "fake-planner", "WORKER_MODEL": "fake-worker",
               "SUBPLANNER_MODEL": "fake-subplanner", "RECONCILER_MODEL": "fake-reconciler",
               "MAX_WORKERS": str(workers), "MAX_TASKS_PER_SPRINT": str(n_tasks),
               "LLM_MAX_CONCURRENCY": str(workers + 4), "CHECK_COMMANDS": "none", "LLM_PRICES_FILE": str(prices),
               "LONGSHOT_WORK_DIR": str(base / "work"), "LONGSHOT_LOG_DIR": str(base / "logs")}
        if tasks_dir is not None:
            env["SANDBOX_TASKS_DIR"] = str(tasks_dir)
        if os.environ.get("PYTHONASYNCIODEBUG"):  # diagnosis: asyncio logs callbacks that block the loop > 100 ms
            env["PYTHONASYNCIODEBUG"] = "1"
        if os.environ.get("PYTHONPATH"):  # to measure another checkout's src/ with this script
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        usage_path = base / "usage.json"
        log(f"run: {n_tasks} tasks, MAX_WORKERS={workers}, delay {delay:g} s, tasks dir {tasks_dir or 'work disk'}")
        started, ticks_before = time.monotonic(), cpu_ticks()
        with (base / "orchestrator.out").open("w") as out:
            argv = [sys.executable, str(SCRIPT), "_orchestrate", str(usage_path), REQUEST]
            if profile is not None:  # sampled by py-spy (its parent), only threads holding the GIL: Python CPU
                argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "200", "--gil",
                        "--output", str(profile), "--", *argv]
            orch = subprocess.Popen(argv, env=env, cwd=base, stdout=out, stderr=subprocess.STDOUT)
            _, status, _ = os.wait4(orch.pid, 0)
            orch.returncode = os.waitstatus_to_exitcode(status)
        wall, ticks = time.monotonic() - started, cpu_ticks()
        fake.stdin.close()
        fake_stats = json.loads(fake.stdout.readline() or "{}")
        _, _, fake_usage = os.wait4(fake.pid, 0)
        fake.returncode = 0
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()
    if orch.returncode != 0 or not usage_path.exists():
        tail = (base / "orchestrator.out").read_text()[-3000:]
        raise RuntimeError(f"the orchestrator exited {orch.returncode}:\n{tail}")
    usage = json.loads(usage_path.read_text())
    logs = sorted((base / "logs").glob("run-*.ndjson"))
    figures = analyse(logs[-1], n_tasks=n_tasks, workers=workers, delay=delay)
    figures.update(
        process_wall_s=round(wall, 3), orchestrator=usage,
        cpu_self_per_task_ms=round(usage["cpu_self_s"] * 1000 / n_tasks, 1),
        cpu_children_per_task_ms=round(usage["cpu_children_s"] * 1000 / n_tasks, 1),
        fake_model={**fake_stats, "probe": probed,
                    "cpu_s": round(fake_usage.ru_utime + fake_usage.ru_stime, 3)},
        output_lines=sum(1 for _ in (base / "orchestrator.out").open()),
        machine_cpu=machine_busy(ticks_before, ticks, wall),
    )
    cpu_all = usage["cpu_self_s"] + usage["cpu_children_s"] + figures["fake_model"]["cpu_s"]
    cores = len(os.sched_getaffinity(0))
    bound = figures["makespan"]["lower_bound_s"]
    figures["cpu_floor"] = {  # what the CPU the run needed allows on this many cores (see the module docstring)
        "cores": cores, "cpu_s_all": round(cpu_all, 2), "excess_s": round(figures["makespan"]["to_run_finished_s"] - bound, 2),
        "lockstep_ratio": round((bound + cpu_all / cores) / bound, 3),
    }
    if git_trace:
        figures["git_processes"] = git_processes(trace, n_tasks)
    figures["state_writes"].update(asyncio.run(state_write_cost(base, figures)))
    figures["met"] = {
        "makespan_ratio_le_1.10": figures["makespan"]["ratio"] <= 1.10,
        "cpu_self_per_task_le_50ms": figures["cpu_self_per_task_ms"] <= 50,
        "peak_rss_le_300mb": usage["peak_rss_mb"] <= 300,
    }
    return figures


STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_ticks() -> dict[int, list[int]]:
    """Per CPU this process may run on: its clock ticks since boot by kind (``STAT_FIELDS``), from /proc/stat."""
    mine, found = os.sched_getaffinity(0), {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in mine:
            found[int(name[3:])] = [int(x) for x in fields[:len(STAT_FIELDS)]]
    return found


def machine_busy(before: dict[int, list[int]], after: dict[int, list[int]], wall: float) -> dict[str, Any]:
    """How the CPUs the run could use spent its wall time (everything on them: the run, the fake
    model, the kernel's work for them, anything else the machine ran; ``steal`` is time the
    hypervisor gave to other machines), and the CPU seconds busy in all (steal not counted)."""
    spent = [sum(after[c][k] - before[c][k] for c in after) for k in range(len(STAT_FIELDS))]
    total = max(1, sum(spent))
    kinds = dict(zip(STAT_FIELDS, spent))
    busy = total - kinds["idle"] - kinds["iowait"] - kinds["steal"]
    return {"cores": len(after), "busy_share": round(busy / total, 3),
            "busy_cpu_s": round(busy / os.sysconf("SC_CLK_TCK"), 2), "wall_s": round(wall, 2),
            "shares": {k: round(v / total, 3) for k, v in kinds.items()}}


def analyse(path: Path, *, n_tasks: int, workers: int, delay: float) -> dict[str, Any]:
    """The figures of one run, from its typed events."""
    from longshot.events import (HandoffReceived, LLMUsage, MergeBatch, MergeLanded, RunFinished, RunStarted,
                                 StateSaved, TaskStatusChanged, read_events)

    events = list(read_events(path))
    start = next(e for e in events if isinstance(e, RunStarted)).ts
    finished = next(e for e in events if isinstance(e, RunFinished))
    landed = [e for e in events if isinstance(e, MergeLanded)]
    saved = [e for e in events if isinstance(e, StateSaved)]
    batches = [e for e in events if isinstance(e, MergeBatch)]
    usage = [e for e in events if isinstance(e, LLMUsage)]
    running: dict[str, float] = {}
    handed: dict[str, float] = {}
    for e in events:
        if isinstance(e, TaskStatusChanged) and e.task_id and e.after == "running":
            running.setdefault(e.task_id, e.ts)
        elif isinstance(e, HandoffReceived) and e.task_id:
            handed[e.task_id] = e.ts
    model_s: dict[str, float] = {}
    requests: dict[str, int] = {}
    for e in usage:
        if e.task_id:
            model_s[e.task_id] = model_s.get(e.task_id, 0.0) + e.duration_ms / 1000
        requests[e.role] = requests.get(e.role, 0) + 1
    phases = worker_phases(events, running, handed)
    land_ts = {e.task_id: e.ts for e in landed if e.task_id}
    planned = min(running.values()) if running else start
    worker_s = [handed[t] - running[t] for t in handed if t in running]
    other_s = [handed[t] - running[t] - model_s.get(t, 0.0) for t in handed if t in running]
    merge_s = [land_ts[t] - handed[t] for t in land_ts if t in handed]
    first_land = min(land_ts.values()) if land_ts else start
    last_land = max(land_ts.values()) if land_ts else start
    makespan = finished.ts - start
    bound = n_tasks * STEPS * delay / workers
    state_s = sum(e.seconds for e in saved)
    busy = sum(worker_s)
    return {
        "exit_code": finished.exit_code, "landed": len(land_ts), "failed": len(finished.failed),
        "makespan": {
            "to_run_finished_s": round(makespan, 3), "to_last_landing_s": round(last_land - start, 3),
            "lower_bound_s": round(bound, 3), "ratio": round(makespan / bound, 3),
            "ratio_to_last_landing": round((last_land - start) / bound, 3),
            "start_to_first_dispatch_s": round(planned - start, 3),
            "last_landing_to_finished_s": round(finished.ts - last_land, 3),
        },
        "model_requests": requests, "requests_per_task": round(requests.get("worker", 0) / max(1, n_tasks), 2),
        "mean_active_workers": round(busy / max(1e-9, max(handed.values(), default=start) - planned), 1),
        "landings_per_s": round(len(land_ts) / max(1e-9, last_land - first_land), 2),
        "merge_batches": {"count": len(batches), "landed_in_batches": sum(b.size for b in batches if b.ok),
                          "largest": max((b.size for b in batches), default=0)},
        "per_task_s": {
            "worker": stats(worker_s) if worker_s else {},
            "model": stats(list(model_s.values())) if model_s else {},
            "worker_minus_model": stats(other_s) if other_s else {},
            "handoff_to_landed": stats(merge_s) if merge_s else {},
        },
        "worker_phases_s": {name: stats(values) for name, values in phases.items() if values},
        "state_writes": {"count": len(saved), "total_s": round(state_s, 3),
                         "share_of_makespan": round(state_s / makespan, 4),
                         "per_write_s": stats([e.seconds for e in saved]) if saved else {},
                         "largest_document_kb": round(max((e.bytes for e in saved), default=0) / 1024, 1)},
        "events": len(events),
    }


async def state_write_cost(base: Path, figures: dict[str, Any], repeat: int = 5) -> dict[str, Any]:
    """What one state write of the run's final document costs on its own, serially, after the
    run: wall, this process's CPU (capture is free here: the document is ready) and its git
    processes' CPU; times the run's writes, the CPU all of them took at most (the document
    grows during the run), as a share of the orchestrator's CPU (self and children)."""
    from longshot.crash import CrashPoints
    from longshot.hub import Hub
    from longshot.pipeline.state import StateStore

    hub_path = next((base / "work").glob("hub-*[!k]"))
    hub = Hub(hub_path, str(base / "target.git"), "main", ("Longshot", "longshot@localhost"))
    store = StateStore(hub, lambda e: None, CrashPoints())
    state = await store.load()
    if state is None:
        return {}
    walls, selfs, kids = [], [], []
    for i in range(repeat):
        store.mark(f"bench {i}")
        s0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        await store.flush(lambda: state)
        s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(time.perf_counter() - w0)
        selfs.append((s1.ru_utime + s1.ru_stime) - (s0.ru_utime + s0.ru_stime))
        kids.append((c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime))
    cpu = stats(selfs)["median"] + stats(kids)["median"]
    writes = figures["state_writes"]["count"]
    run_cpu = figures["orchestrator"]["cpu_self_s"] + figures["orchestrator"]["cpu_children_s"]
    return {"alone_final_document": {"wall_s": stats(walls)["median"], "self_cpu_s": stats(selfs)["median"],
                                     "children_cpu_s": stats(kids)["median"]},
            "cpu_s_at_most": round(cpu * writes, 2), "cpu_share_at_most": round(cpu * writes / run_cpu, 4)}


def git_processes(trace: Path, n_tasks: int) -> dict[str, Any]:
    """Git processes by command (the first non-option argument), from trace2 event files."""
    by: dict[str, list[float]] = {}
    for f in trace.iterdir():
        name, seconds, state = "?", 0.0, False
        for line in f.read_text(errors="replace").splitlines():
            event = json.loads(line)
            if event.get("event") == "cmd_name":
                name = event.get("name", "?")
            elif event.get("event") == "exit":
                seconds = event.get("t_abs", 0.0)
            elif event.get("event") == "start":
                argv = event.get("argv", [])
                state = any("refs/longshot/state" in a for a in argv)
        name = f"{name} (state)" if name == "push" and state else name
        by.setdefault(name, []).append(seconds)
    rows = sorted(by.items(), key=lambda kv: -sum(kv[1]))
    return {"total": sum(len(v) for v in by.values()), "per_task": round(sum(len(v) for v in by.values()) / n_tasks, 1),
            "wall_s_total": round(sum(sum(v) for v in by.values()), 2),
            "by_command": {k: {"count": len(v), "wall_s": round(sum(v), 2), "ms_each": round(1000 * sum(v) / len(v), 1)}
                           for k, v in rows}}


def worker_phases(events: list[Any], running: dict[str, float], handed: dict[str, float]) -> dict[str, list[float]]:
    """Where a worker's time goes, per task, from its events: ``open`` (dispatched to its first
    model request sent: the sandbox), ``model`` (requests in flight), ``tools`` (an answer to its
    tool's result), ``loop`` (a tool's result to the next request sent: the harness and the event
    loop), ``close`` (the handoff tool to the handoff recorded: snapshot, sandbox removal, figures)."""
    from longshot.events import LLMUsage, WorkerStep

    timeline: dict[str, list[tuple[str, float, float]]] = {}
    for e in events:
        if isinstance(e, LLMUsage) and e.task_id in running and e.role == "worker":
            timeline.setdefault(e.task_id, []).append(("usage", e.ts, e.duration_ms / 1000))
        elif isinstance(e, WorkerStep) and e.task_id in running:
            timeline.setdefault(e.task_id, []).append(("step", e.ts, 0.0))
    phases: dict[str, list[float]] = {"open": [], "model": [], "tools": [], "loop": [], "close": []}
    for task, items in timeline.items():
        if task not in handed:
            continue
        tally = dict.fromkeys(phases, 0.0)
        last = running[task]
        for kind, ts, duration in items:
            if kind == "usage":
                tally["open" if last == running[task] else "loop"] += ts - duration - last
                tally["model"] += duration
            else:
                tally["tools"] += ts - last
            last = ts
        tally["close"] = handed[task] - last
        for name, value in tally.items():
            phases[name].append(value)
    return phases


# -- main -----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 tasks, MAX_WORKERS=20")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP + " (8 tasks, 4 workers, disk only)")
    parser.add_argument("--tasks", type=int, help="tasks (default 500; quick 100)")
    parser.add_argument("--workers", type=int, help="MAX_WORKERS (default 100; quick 20)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds the fake model holds each reply (default 1)")
    parser.add_argument("--files", type=int, default=50, help="files in the target repository besides README (default 50)")
    parser.add_argument("--tasks-dir", choices=("disk", "shm", "both"), default="both",
                        help="task checkouts on the work disk, on /dev/shm (SANDBOX_TASKS_DIR), or both (default)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant, interleaved (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories (for diagnosis)")
    parser.add_argument("--git-trace", action="store_true", help="count and time the git processes (trace2; for diagnosis, "
                                                                  "it costs time)")
    parser.add_argument("--cpus", type=int, help="run everything (this script, the fake model, the orchestrator and its "
                                                 "processes) on the first N of the CPUs it may use (sched_setaffinity)")
    parser.add_argument("--profile", type=Path, help="sample the orchestrator with py-spy into PREFIX-<variant>-<i>.txt "
                                                     "(collapsed stacks; its figures then include the sampling cost)")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cpus])  # inherited by every process started
    if args.smoke:
        args.tasks_dir, args.delay = "disk", min(args.delay, 0.05)
    n_tasks = args.tasks or (8 if args.smoke else 100 if args.quick else 500)
    workers = args.workers or (4 if args.smoke else 20 if args.quick else 100)
    variants = ["disk", "shm"] if args.tasks_dir == "both" else [args.tasks_dir]
    result: dict[str, Any] = {"benchmark": "run_bench", "machine": machine(), "tasks": n_tasks,
                              "max_workers": workers, "delay_s": args.delay, "requests_per_task": STEPS,
                              "repo_files": args.files + 2, "check_commands": "none (nothing to gate)", "runs": {}}
    work = Path(tempfile.mkdtemp(prefix="longshot-runbench-"))
    shm = Path(tempfile.mkdtemp(prefix="longshot-runbench-", dir="/dev/shm")) if "shm" in variants else None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for i in range(args.repeat):
            for variant in variants:
                tasks_dir = shm / f"tasks-{i}" if variant == "shm" and shm is not None else None
                log(f"run {i + 1}/{args.repeat}, {variant}; load average {os.getloadavg()[0]:.2f}")
                figures = one_run(work / f"{variant}-{i}", n_tasks=n_tasks, workers=workers, delay=args.delay,
                                  tasks_dir=tasks_dir, files=args.files,
                                  profile=Path(f"{args.profile}-{variant}-{i}.txt").resolve() if args.profile else None,
                                  git_trace=args.git_trace)
                figures["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
                result["runs"].setdefault(variant, []).append(figures)
                log(f"{variant}: makespan {figures['makespan']['to_run_finished_s']} s "
                    f"(ratio {figures['makespan']['ratio']}), CPU/task {figures['cpu_self_per_task_ms']} ms, "
                    f"peak RSS {figures['orchestrator']['peak_rss_mb']} MB, landed {figures['landed']}")
                if not args.keep:
                    shutil.rmtree(work / f"{variant}-{i}", ignore_errors=True)
        result["summary"] = {variant: summarise(runs) for variant, runs in result["runs"].items()}
    finally:
        if args.keep:
            log(f"kept {work}" + (f" and {shm}" if shm else ""))
        else:
            shutil.rmtree(work, ignore_errors=True)
        if shm is not None and not args.keep:
            shutil.rmtree(shm, ignore_errors=True)
    print(json.dumps(result, indent=2))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeated runs of one variant."""
    pick = lambda f: stats([f(r) for r in runs])["median"]  # noqa: E731
    return {"n": len(runs), "makespan_s": pick(lambda r: r["makespan"]["to_run_finished_s"]),
            "ratio": pick(lambda r: r["makespan"]["ratio"]),
            "ratio_to_last_landing": pick(lambda r: r["makespan"]["ratio_to_last_landing"]),
            "cpu_self_per_task_ms": pick(lambda r: r["cpu_self_per_task_ms"]),
            "cpu_children_per_task_ms": pick(lambda r: r["cpu_children_per_task_ms"]),
            "peak_rss_mb": pick(lambda r: r["orchestrator"]["peak_rss_mb"]),
            "state_share": pick(lambda r: r["state_writes"]["share_of_makespan"]),
            "state_cpu_share_at_most": pick(lambda r: r["state_writes"].get("cpu_share_at_most", float("nan"))),
            "landings_per_s": pick(lambda r: r["landings_per_s"]),
            "excess_s": pick(lambda r: r["cpu_floor"]["excess_s"]),
            "lockstep_ratio": pick(lambda r: r["cpu_floor"]["lockstep_ratio"]),
            "machine_busy_share": pick(lambda r: r["machine_cpu"]["busy_share"])}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_fake":
        serve_fake(int(sys.argv[2]), float(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_orchestrate":
        orchestrate(Path(sys.argv[2]), sys.argv[3])
    else:
        main()
