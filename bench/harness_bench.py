"""Benchmark of the built-in harness (issue 5): overhead per step, memory per idle conversation.

Run: ``.venv/bin/python bench/harness_bench.py [--quick]``. Prints ONE JSON object on
stdout; progress goes to stderr. Everything happens in a temporary directory that is
removed at the end. Target: harness overhead per step (excluding model latency and
command time) under 5 ms median.

What is measured:

1. ``per_step``: `BuiltinHarness.run(task, sandbox)` in a real `LocalSandboxProvider`
   sandbox, driven by an in-process `ChatModel` (``ScriptedModel``) that answers at once
   with pre-built completions: N tool steps alternating ``write`` and ``read`` of one file
   (file tools run in-process through ``write_file`` / ``read_file``; no command runs),
   then ``handoff``. The completions are built before the run, so their construction is
   not counted. ``complete`` timestamps its entry and its return; the time from one
   return to the next entry is one step of harness work: appending the answer, parsing
   the call (twice: harness and ToolBox), the file operation (a thread hop plus the I/O),
   the event (Bus + NdjsonSink to a file, as the CLI always has), the loop guard, and the
   context check ``estimate_tokens(messages)`` before the next request. Anything done
   inside ``complete`` (the bench's own instrumentation) is outside that window.
   Variants: small file (about 200 bytes) with isolation "none" and "bubblewrap" (same
   code path: no command runs, the provider only changes ``exec``), and a "typical" one
   where each read returns and each write sends about 2 KB, so the conversation grows
   about 20x faster (and may reach the compaction threshold of the default window).
   Reported: wall time per step ((whole run - time inside ``complete``) / N, so the bench's
   own instrumentation is excluded), median and p95 of the per-step times, the steps where
   a compaction happened,
   first 20 vs last 20 steps, and the cost of ``estimate_tokens`` on the conversation as
   it stood at each step (timed inside ``complete``, so not double-counted).
2. ``components_us``: the pieces of one step timed one by one (microseconds), plus
   ``estimate_tokens`` on a conversation of the final size and ``tool_schemas`` (which
   the harness computes once, in ``__init__``: checked by identity on every request).
3. ``profile``: cProfile of one run of the typical variant, top functions by own time.
4. ``memory_per_idle_conversation``: K conversations built as a worker's ``_Run`` holds
   them (system prompt and task rendered per run, then 30 steps of assistant tool call
   + tool result of about 2 KB each, appended through the harness's own ``record``),
   measured with tracemalloc one at a time (after a gc), plus RSS growth over all K.

Percentiles use linear interpolation between closest ranks.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from longshot.capture import cap_text
from longshot.events import Bus, NdjsonSink, RunWarning, WorkerStep
from longshot.harnesses.builtin import BuiltinHarness, _brief, _Run
from longshot.llm.base import Completion, Message, ToolCall, Usage
from longshot.prompts import Prompts
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote
from longshot.tools.context import LoopGuard, estimate_tokens
from longshot.tools.toolbox import WORKER_TOOLS, ToolBox, parse_call, tool_schemas
from longshot.types import Task
from common import SMOKE_HELP, machine, percentile, stats

BRANCH = "longshot/hbench"
TASK_PREFIX = "hbench"
EDGE = 20  # steps compared at the start and at the end of a run


def log(msg: str) -> None:
    print(f"[harness_bench] {msg}", file=sys.stderr, flush=True)


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


# -- fixtures ------------------------------------------------------------------------


def make_hub(tmp: Path) -> tuple[Path, str]:
    files = {"README.md": "# bench target\n", "notes/small.txt": "hello\n",
             **{f"src/pkg/mod{i}.py": f"VALUE = {i}\n" for i in range(20)}}
    remote = make_remote(tmp, files, name="target.git")
    hub = tmp / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp)
    return hub, git("rev-parse", "refs/heads/main", cwd=hub)


def make_task(i: int = 0) -> Task:
    return Task(id=f"{TASK_PREFIX}-{i}", branch=BRANCH,
                description="Refactor the configuration loader so that every option is validated once, "
                            "at start-up, and report unknown keys with the closest known name.",
                scope=["src/pkg/config.py", "tests/test_config.py"],
                acceptance="The tests pass and an unknown key fails with a suggestion.")


def file_text(step: int, size: int) -> str:
    """About ``size`` bytes of code-like text, different at every step."""
    lines, total, n = [], 0, 0
    while total < size:
        line = f"def function_{step}_{n}(value: int) -> int:  # step {step} line {n}"
        lines.append(line)
        total += len(line) + 1
        n += 1
    return "\n".join(lines) + "\n"


def script(n_steps: int, size: int) -> list[Completion]:
    """N tool-call completions (write, read, write, read ...) and a handoff, built up front."""
    out = []
    for i in range(n_steps):
        if i % 2 == 0:
            call = ToolCall(id=f"call_{i}", name="write",
                            arguments=json.dumps({"path": "work/file.py", "content": file_text(i, size)}))
        else:
            call = ToolCall(id=f"call_{i}", name="read", arguments=json.dumps({"path": "work/file.py"}))
        out.append(Completion(content="", tool_calls=[call], finish_reason="tool_calls",
                              usage=Usage(prompt_tokens=1000 + 50 * i, completion_tokens=40), model="scripted"))
    out.append(Completion(content="Done.", finish_reason="tool_calls", model="scripted", tool_calls=[
        ToolCall(id="call_end", name="handoff", arguments=json.dumps(
            {"status": "complete", "summary": "benchmark run finished", "concerns": [], "suggestions": []}))]))
    return out


class ScriptedModel:
    """A ChatModel that answers instantly from a script and timestamps every request."""

    def __init__(self, completions: list[Completion], *, measure_estimate: bool = True) -> None:
        self.completions = completions
        self.measure_estimate = measure_estimate
        self.enter: list[float] = []
        self.leave: list[float] = []
        self.estimate_us: list[float] = []
        self.payload_chars: list[int] = []
        self.tools_ids: set[int] = set()
        self.messages: list[Message] | None = None
        self.early: list[Message] | None = None
        self.lengths: list[int] = []

    async def complete(self, role: str, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       *, task_id: str | None = None) -> Completion:
        t = time.perf_counter()
        self.enter.append(t)
        i = len(self.enter) - 1
        self.tools_ids.add(id(tools))
        self.messages = messages
        self.lengths.append(len(messages))
        if i == 3:
            self.early = [dict(m) for m in messages]
        if self.measure_estimate:  # the harness's own context check, repeated here to time it in isolation
            t0 = time.perf_counter()
            est = estimate_tokens(messages)
            self.estimate_us.append((time.perf_counter() - t0) * 1e6)
            self.payload_chars.append(est * 4)
        answer = self.completions[i]
        self.leave.append(time.perf_counter())
        return answer

    async def aclose(self) -> None:
        return None


# -- 1. per step -----------------------------------------------------------------------


async def one_run(provider: LocalSandboxProvider, hub: Path, base: str, n_steps: int, size: int,
                  events_file: Path, run_no: int, profile: cProfile.Profile | None = None) -> dict[str, Any]:
    model = ScriptedModel(script(n_steps, size), measure_estimate=profile is None)
    sink = NdjsonSink.open(events_file)
    warnings: list[str] = []

    def keep_warnings(event: Any) -> None:
        if isinstance(event, RunWarning):
            warnings.append(event.message)

    bus = Bus("run-hbench", [sink, keep_warnings])
    harness = BuiltinHarness(model, Prompts(), bus.emit, max_steps=n_steps + 5, model_name="gpt-4o")
    task = make_task(run_no)
    spec = SandboxSpec(task_id=f"{TASK_PREFIX}-{run_no}", branch=BRANCH, base_commit=base, hub=hub)
    try:
        async with provider.open(spec) as sandbox:
            if profile is not None:
                profile.enable()
            t0 = time.perf_counter()
            result = await harness.run(task, sandbox)
            t1 = time.perf_counter()
            if profile is not None:
                profile.disable()
    finally:
        sink.close()
    if result.status != "complete" or result.steps != n_steps + 1:
        raise RuntimeError(f"unexpected result: {result}")
    per_step = [(model.enter[i + 1] - model.leave[i]) * 1000 for i in range(n_steps)]
    in_model = sum(b - a for a, b in zip(model.enter, model.leave))
    compacted = [i for i in range(n_steps) if model.lengths[i + 1] < model.lengths[i]]
    return {
        "total_ms": (t1 - t0) * 1000, "harness_ms": (t1 - t0 - in_model) * 1000, "per_step_ms": per_step,
        "compaction_steps": compacted, "compaction_step_ms": [per_step[i] for i in compacted],
        "early": model.early,
        "setup_ms": (model.enter[0] - t0) * 1000, "finish_ms": (t1 - model.leave[-1]) * 1000,
        "estimate_us": model.estimate_us[1:], "payload_chars": model.payload_chars,
        "schemas_objects_seen": len(model.tools_ids), "compactions": len(warnings),
        "messages": model.messages, "n_steps": n_steps,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    n = runs[0]["n_steps"]
    steps = [x for r in runs for x in r["per_step_ms"]]
    first = [x for r in runs for x in r["per_step_ms"][:EDGE]]
    last = [x for r in runs for x in r["per_step_ms"][-EDGE:]]
    est_first = [x for r in runs for x in r["estimate_us"][:EDGE]]
    est_last = [x for r in runs for x in r["estimate_us"][-EDGE:]]
    wall = [r["harness_ms"] / n for r in runs]
    chars = runs[0]["payload_chars"]
    out: dict[str, Any] = {
        "runs": len(runs), "steps_per_run": n,
        "wall_per_step_ms": {"what": "(whole run - time inside the fake model's complete) / N, per run",
                             "median_of_runs": round(statistics.median(wall), 3),
                             "each_run": [round(w, 3) for w in wall]},
        "mean_per_step_ms": round(statistics.mean(steps), 3),
        "per_step_ms": stats(steps),
        "first_20_steps_ms": stats(first), "last_20_steps_ms": stats(last),
        "estimate_tokens_us_first_20": stats(est_first, 1) if est_first else None,
        "estimate_tokens_us_last_20": stats(est_last, 1) if est_last else None,
        "conversation_json_chars": {"first_request": chars[0], "peak": max(chars), "last_request": chars[-1]}
        if chars else None,
        "setup_ms": stats([r["setup_ms"] for r in runs]),
        "handoff_finish_ms": stats([r["finish_ms"] for r in runs]),
        "compactions_per_run": [r["compactions"] for r in runs],
        "compaction_at_steps": runs[0]["compaction_steps"],
        "compaction_step_ms": [round(x, 3) for r in runs for x in r["compaction_step_ms"]],
        "tool_schemas_one_object_for_all_requests": all(r["schemas_objects_seen"] == 1 for r in runs),
    }
    if runs[0]["compaction_steps"]:  # the largest conversations: the 20 steps before the first compaction
        pre = [x for r in runs if r["compaction_steps"]
               for x in r["per_step_ms"][max(0, r["compaction_steps"][0] - EDGE):r["compaction_steps"][0]]]
        pre_est = [x for r in runs if r["compaction_steps"]
                   for x in r["estimate_us"][max(0, r["compaction_steps"][0] - EDGE):r["compaction_steps"][0]]]
        out["pre_compaction_20_steps_ms"] = stats(pre)
        if pre_est:
            out["estimate_tokens_us_pre_compaction_20"] = stats(pre_est, 1)
    if est_last:
        share = percentile(est_last, 50) / 1000 / max(percentile(last, 50), 1e-9)
        out["estimate_tokens_share_of_last_20_median"] = round(share, 3)
    return out


async def bench_steps(providers: dict[str, LocalSandboxProvider], hub: Path, base: str, tmp: Path,
                      n_steps: int, rounds: int) -> tuple[dict[str, Any], list[Message], list[Message]]:
    variants = {"small_file_none": ("none", 200), "small_file_bubblewrap": ("bubblewrap", 200),
                "typical_2kb_none": ("none", 2000)}
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in variants}
    run_no = 0
    for name, (iso, size) in variants.items():  # one warm-up each (imports, caches), not counted
        run_no += 1
        await one_run(providers[iso], hub, base, min(n_steps, 20), size, tmp / "events.ndjson", run_no)
    names = list(variants)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:  # rotating order
            iso, size = variants[name]
            run_no += 1
            results[name].append(await one_run(providers[iso], hub, base, n_steps, size,
                                               tmp / "events.ndjson", run_no))
        log(f"per-step: round {r + 1}/{rounds}")
    final = results["typical_2kb_none"][-1]["messages"]
    early = results["typical_2kb_none"][-1]["early"]
    out = {name: summarize(rs) | {"isolation": variants[name][0], "file_bytes": variants[name][1]}
           for name, rs in results.items()}
    return out, final, early


# -- 2. components ----------------------------------------------------------------------


def time_us(fn: Any, reps: int) -> float:
    """Median of 5 batches, per call, in microseconds."""
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        batches.append((time.perf_counter() - t0) / reps * 1e6)
    return round(statistics.median(batches), 2)


async def atime_us(fn: Any, reps: int) -> float:
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            await fn()
        batches.append((time.perf_counter() - t0) / reps * 1e6)
    return round(statistics.median(batches), 2)


async def bench_components(provider: LocalSandboxProvider, hub: Path, base: str, tmp: Path,
                           final: list[Message], early: list[Message], quick: bool | str) -> dict[str, Any]:
    reps = 10 if quick == "smoke" else 200 if quick else 1000
    write_args = json.dumps({"path": "work/file.py", "content": file_text(1, 2000)})
    read_args = json.dumps({"path": "work/file.py"})
    completion = script(2, 2000)[0]
    sink = NdjsonSink.open(tmp / "events-components.ndjson")
    bus = Bus("run-hbench", [sink])
    guard = LoopGuard(4)
    prompts = Prompts()
    task = make_task()
    small = early
    out: dict[str, Any] = {}
    try:
        out["parse_call_write_2kb"] = time_us(lambda: parse_call(WORKER_TOOLS, "write", write_args), reps)
        out["parse_call_read"] = time_us(lambda: parse_call(WORKER_TOOLS, "read", read_args), reps)
        out["completion_as_message"] = time_us(completion.as_message, reps)
        out["brief"] = time_us(lambda: _brief(write_args), reps)
        out["cap_text_2kb"] = time_us(lambda: cap_text(write_args, 20_000), reps)
        out["worker_step_event_bus_ndjson"] = time_us(
            lambda: bus.emit(WorkerStep(task_id="t", step=1, tool="read", ok=True, detail="work/file.py")), reps)
        out["loop_guard_seen_2kb"] = time_us(lambda: guard.seen("write", write_args, "wrote 2000 characters"), reps)
        out["estimate_tokens_first_request"] = {"messages": len(small), "json_chars": len(json.dumps(small)),
                                                "us": time_us(lambda: estimate_tokens(small), reps)}
        out["estimate_tokens_final_conversation_after_compaction"] = {
            "messages": len(final), "json_chars": len(json.dumps(final, ensure_ascii=False)),
            "us": time_us(lambda: estimate_tokens(final), max(20, reps // 10))}
        out["tool_schemas_once_per_harness"] = time_us(lambda: tool_schemas(WORKER_TOOLS), max(20, reps // 10))
        out["prompts_render_worker_and_task_once_per_run"] = time_us(
            lambda: (prompts.render("worker"), prompts.render("worker_task", task=task)), max(20, reps // 10))
        spec = SandboxSpec(task_id=f"{TASK_PREFIX}-components", branch=BRANCH, base_commit=base, hub=hub)
        async with provider.open(spec) as sandbox:
            data = file_text(1, 2000).encode()
            await sandbox.write_file("work/file.py", data)
            box = ToolBox(sandbox)
            out["sandbox_write_file_2kb"] = await atime_us(lambda: sandbox.write_file("work/file.py", data), reps)
            out["sandbox_read_file_2kb"] = await atime_us(lambda: sandbox.read_file("work/file.py"), reps)
            out["toolbox_call_write_2kb"] = await atime_us(lambda: box.call("write", write_args), reps)
            out["toolbox_call_read_2kb"] = await atime_us(lambda: box.call("read", read_args), reps)
            out["asyncio_to_thread_noop"] = await atime_us(lambda: asyncio.to_thread(lambda: None), reps)
    finally:
        sink.close()
    out["estimate_tokens_at_compaction_threshold"] = threshold_costs(final, reps)
    return out


def threshold_costs(final: list[Message], reps: int) -> dict[str, Any]:
    """``estimate_tokens`` on a conversation just under the compaction threshold (0.8 of the
    window, about 4 chars per token) for a few window sizes: the per-step worst case before a
    compaction, paid on every request once a conversation gets there."""
    pairs = [m for m in final[2:] if m.get("role") in ("assistant", "tool")]
    out: dict[str, Any] = {}
    for name, window in (("gpt-4o", 128_000), ("claude/o3 200k", 200_000), ("gpt-5", 400_000),
                         ("gpt-4.1", 1_047_576)):
        limit = int(0.8 * window) * 4
        conv, i = list(final[:2]), 0
        size = len(json.dumps(conv, ensure_ascii=False))
        while size < limit - 6000:
            msg = dict(pairs[i % len(pairs)])
            conv.append(msg)
            size += len(json.dumps(msg, ensure_ascii=False)) + 2
            i += 1
        chars = len(json.dumps(conv, ensure_ascii=False))
        out[name] = {"window_tokens": window, "messages": len(conv), "json_chars": chars,
                     "ms": round(time_us(lambda c=conv: estimate_tokens(c), max(5, reps // 100)) / 1000, 3)}
    return out


# -- 3. profile -------------------------------------------------------------------------


async def bench_profile(provider: LocalSandboxProvider, hub: Path, base: str, tmp: Path,
                        n_steps: int) -> dict[str, Any]:
    prof = cProfile.Profile()
    r = await one_run(provider, hub, base, n_steps, 2000, tmp / "events-profile.ndjson", 9999, profile=prof)
    stream = io.StringIO()
    st = pstats.Stats(prof, stream=stream)
    total = st.total_tt  # type: ignore[attr-defined]
    rows = []
    for (file, line, fn), (cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{Path(file).name}:{line}({fn})"))
    rows.sort(reverse=True)
    top = [{"function": name, "own_ms": round(tt * 1000, 2), "cumulative_ms": round(ct * 1000, 2), "calls": nc}
           for tt, ct, nc, name in rows[:12]]

    def cum(fn_name: str) -> float:
        return round(sum(ct for (f, _, fn), (_, _, _, ct, _) in st.stats.items()  # type: ignore[attr-defined]
                         if fn == fn_name and "longshot" in f) * 1000, 2)

    return {"variant": "typical_2kb_none", "steps": n_steps, "profiled_total_ms": round(total * 1000, 2),
            "wall_ms_under_profiler": round(r["total_ms"], 2),
            "cumulative_ms": {k: cum(k) for k in ("estimate_tokens", "run_call", "call", "record", "parse_call",
                                                 "seen", "as_message", "compact", "emit")},
            "top_own_time": top}


# -- 4. memory ----------------------------------------------------------------------------


class _NoSandbox:
    """The _Run's ToolBox needs a sandbox object; an idle conversation never uses it."""


def tool_result_2kb(conv: int, step: int) -> str:
    """A read result in ToolBox's format (numbered lines), about 2 KB, unique per conversation and step."""
    lines = file_text(conv * 1000 + step, 1700).splitlines()
    return "\n".join(f"{i + 1:>6}\t{line}" for i, line in enumerate(lines))


def build_conversation(harness: BuiltinHarness, k: int, steps: int) -> _Run:
    run = _Run(harness, make_task(k), ToolBox(_NoSandbox()))  # type: ignore[arg-type]
    for s in range(1, steps + 1):
        run.step = s
        call = ToolCall(id=f"call_{k}_{s}", name="read", arguments=json.dumps({"path": f"src/pkg/mod{s}.py"}))
        completion = Completion(content="" if s > 1 else "Plan: read the loader, then change it.",
                                tool_calls=[call], finish_reason="tool_calls")
        run.messages.append(completion.as_message())
        run.record(call, True, tool_result_2kb(k, s), _brief(call.arguments))
    return run


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        size += sum(deep_size(x, seen) for x in obj)
    return size


def bench_memory(k: int, steps: int) -> dict[str, Any]:
    harness = BuiltinHarness(ScriptedModel([]), Prompts(), lambda e: None, model_name="gpt-4o")
    build_conversation(harness, 10_000, steps)  # warm-up: caches, interned names
    kept: list[_Run] = []
    per_kb: list[float] = []
    gc.collect()
    rss0 = rss_kb()
    tracemalloc.start()
    for i in range(k):
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        kept.append(build_conversation(harness, i, steps))
        gc.collect()
        per_kb.append((tracemalloc.get_traced_memory()[0] - before) / 1024)
    tracemalloc.stop()
    gc.collect()
    rss1 = rss_kb()
    sample = kept[0].messages
    payload = len(json.dumps(sample, ensure_ascii=False))
    messages_kb = [deep_size(r.messages) / 1024 for r in kept]
    return {
        "conversations": k, "steps_each": steps, "messages_each": len(sample),
        "tool_result_chars": len(sample[3]["content"]),
        "json_payload_kb_each": round(payload / 1024, 1),
        "tracemalloc_kb_per_conversation": stats(per_kb, 1),
        "messages_deep_getsizeof_kb": stats(messages_kb, 1),
        "rss_growth_kb_per_conversation": round((rss1 - rss0) / k, 1),
        "rss_growth_note": "RSS measured with tracemalloc on (its bookkeeping inflates RSS); "
                           "tracemalloc_kb_per_conversation is the precise figure",
    }


# -- main ----------------------------------------------------------------------------------


async def run(quick: bool | str, tmp: Path) -> dict[str, Any]:
    """``quick``: False, True or "smoke" (the smallest run through every part)."""
    smoke = quick == "smoke"
    n_steps = 5 if smoke else 50 if quick else 200
    rounds = 1 if quick else 5
    k = 5 if smoke else 50 if quick else 200
    t = time.perf_counter()
    hub, base = make_hub(tmp)
    log(f"hub ready in {time.perf_counter() - t:.1f}s")
    work = tmp / "work"
    providers = {"none": LocalSandboxProvider(work, LocalOptions(isolation="none")),
                 "bubblewrap": LocalSandboxProvider(work, LocalOptions())}
    result: dict[str, Any] = {"benchmark": "harness", "quick": quick, "machine": machine(),
                              "emit": "Bus + NdjsonSink to a file (what the CLI always has) + a warning counter",
                              "model_name_for_window": "gpt-4o (128000 tokens; compaction above 0.8 of it)"}
    log(f"1. per-step overhead: {n_steps} steps x {rounds} rounds x 3 variants")
    result["per_step"], final, early = await bench_steps(providers, hub, base, tmp, n_steps, rounds)
    log("2. components")
    result["components_us"] = await bench_components(providers["none"], hub, base, tmp, final, early, quick)
    log("3. profile")
    result["profile"] = await bench_profile(providers["none"], hub, base, tmp, n_steps)
    log(f"4. memory: {k} idle conversations of 30 steps")
    result["memory_per_idle_conversation"] = bench_memory(k, 30)
    med = result["per_step"]["small_file_none"]["per_step_ms"]["median"]
    med_typ = result["per_step"]["typical_2kb_none"]["per_step_ms"]["median"]
    result["targets"] = {
        "overhead_median_lt_5ms_small_file": {"measured": med, "target": 5, "met": med < 5},
        "overhead_median_lt_5ms_typical_2kb": {"measured": med_typ, "target": 5, "met": med_typ < 5},
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 steps, 1 round, 50 conversations")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="longshot-harness-bench-"))
    try:
        result = asyncio.run(run("smoke" if args.smoke else args.quick, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["temp_dir_removed"] = not tmp.exists()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
