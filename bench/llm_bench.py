"""Benchmark of the model router (issue 4): per-request overhead, and goodput under faults.

Run: ``.venv/bin/python bench/llm_bench.py [--quick]``. Prints ONE JSON object on stdout;
progress goes to stderr.

1. ``overhead``: ``Router.complete`` against an in-process endpoint (`InstantEndpoint`,
   a minimal implementation of the `longshot.llm.base.Endpoint` protocol defined here)
   that returns a canned `Completion` at once, so the time is the router's own: choice,
   bookkeeping, accounting, events. Sequential calls, each timed alone; without and with
   the request log (to a temporary file). Microseconds.
2. ``load``: REQUESTS chat requests from CALLERS concurrent callers through the router to
   FakeLLM servers on loopback (one endpoint per server, equal weights, production
   defaults for everything else: LLM_MAX_CONCURRENCY 64, LLM_ENDPOINT_REST 30 s,
   RETRY_POLICY as shipped). Each fake answers after REPLY_DELAY. Two runs side by side:
   ``clean`` (no faults) and ``faults`` where 30% of the answers, chosen by each server's
   request counter (positions 1, 8, 14 of every 20: 429 with Retry-After RETRY_AFTER;
   positions 4, 11, 17: 503), fail. Reported: failed calls (target 0), retry amplification
   = requests the servers received / REQUESTS (target <= 2.0), goodput = successful calls
   per second of wall time, the goodput ratio faults / clean (target >= 0.8), call latency
   percentiles, and what the router did (retries by error kind, rests, the cooldowns and
   backoff delays it chose) to say what dominates the time.

3. ``request_cpu``: CPU time of this process per request through one endpoint, against a
   FakeLLM server in a child process (its CPU is not counted), for the endpoint as shipped
   (``lean``: the request built once and sent through httpcore2's connection pool), the
   httpx2 client it keeps behind a proxy (``direct``: the HTTP library called directly, the
   previous implementation) and the openai SDK's request path before that (``sdk``:
   `SDKEndpoint` below), interleaved in rounds in one run (the order rotates each round), 20
   concurrent callers. Reported: median CPU microseconds per request of each, the ratio
   direct / sdk (issue 21's target <= 0.5, now met by lean / sdk) and lean / direct.

``--repeat N`` runs the clean and the fault load N times in one invocation (issue 21: 20),
each pair back to back, and reports failed calls, amplification and the goodput ratio of each
pair over all of them. ``--reply-delay`` sets REPLY_DELAY (default 0.02 s: on a small machine
that run is bound by the CPU of the client and the three fakes, and a CPU-bound run that sends
1.43 requests per call cannot reach more than 1 / 1.43 of the clean goodput; 0.2 s or more makes
it bound by the answers' latency, as a real model's is).

Percentiles use linear interpolation between closest ranks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from longshot.errors import RETRY_POLICY, LLMError, LLMRateLimited, LLMServerError
from longshot.events import EndpointHealth, Event, LLMRetry
from longshot.llm.base import Completion, Message, Usage
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.requestlog import RequestLog
from longshot.llm.router import Router
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.fake_script import Reply, Turn
from common import SMOKE_HELP, machine, stats

SCRIPT = Path(__file__).resolve()

MODELS: dict[str, str] = {"planner": "bench-planner", "worker": "bench-worker",
                          "subplanner": "bench-subplanner", "reconciler": "bench-reconciler"}
FAKE_MODELS = {v: k for k, v in MODELS.items()}
MESSAGES: list[Message] = [{"role": "system", "content": "You are a worker." * 20},
                           {"role": "user", "content": "Task ID: bench\nWrite the thing."}]
RATE_LIMITED = {1, 8, 14}  # of every 20 requests a server receives
SERVER_ERROR = {4, 11, 17}


def log(msg: str) -> None:
    print(f"[llm_bench] {msg}", file=sys.stderr, flush=True)


# -- 1. router overhead ------------------------------------------------------------------------

class InstantEndpoint:
    """An `Endpoint` that answers every request at once with the same completion."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._answer = Completion(content="ok", finish_reason="stop", model="bench-worker",
                                  usage=Usage(prompt_tokens=120, completion_tokens=30))

    async def send(self, model: str, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Completion:
        return self._answer

    async def aclose(self) -> None:
        return None


async def overhead(n: int, endpoints: int, request_log: Path | None) -> dict[str, Any]:
    sink: list[Event] = []
    eps = [(InstantEndpoint(f"e{i}"), float(i + 1)) for i in range(endpoints)]
    router = Router(eps, MODELS, sink.append,  # type: ignore[arg-type]
                    request_log=RequestLog(request_log, ["sk-secret"]) if request_log else None)
    for _ in range(200):  # warm-up
        await router.complete("worker", MESSAGES, task_id="bench")
    sink.clear()
    times: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        await router.complete("worker", MESSAGES, task_id="bench")
        times.append((clock() - t0) / 1000.0)
    await router.aclose()
    return {"endpoints": endpoints, "request_log": request_log is not None, "us": stats(times, 1),
            "events_per_call": round(len(sink) / n, 2)}


# -- 3. CPU per request: the direct HTTP path against the SDK's ---------------------------------

class SDKEndpoint:
    """The endpoint as it was before issue 21: the openai SDK's ``post`` with its response model."""

    def __init__(self, name: str, base_url: str) -> None:
        import openai
        from openai.types.chat import ChatCompletion

        self.name = name
        self._cast = ChatCompletion
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", timeout=60, max_retries=0)

    async def send(self, model: str, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Completion:
        body = {"model": model, "messages": messages, "max_tokens": 65536, "temperature": 0.7}
        resp = await self._client.post("/chat/completions", body=body, cast_to=self._cast)
        msg = resp.choices[0].message
        usage = Usage(prompt_tokens=resp.usage.prompt_tokens if resp.usage else 0,
                      completion_tokens=resp.usage.completion_tokens if resp.usage else 0)
        return Completion(content=msg.content, finish_reason=resp.choices[0].finish_reason, usage=usage,
                          model=resp.model or model)

    async def aclose(self) -> None:
        await self._client.close()


def serve_instant() -> None:
    """Child process: a FakeLLM answering every request at once, until stdin closes."""
    fake = FakeLLM(lambda turn: Reply(content="ok " * 20), models=FAKE_MODELS).start()
    print(json.dumps({"base_url": fake.base_url}), flush=True)
    sys.stdin.read()
    fake.stop()


async def cpu_per_request(endpoint: Any, requests: int, callers: int) -> float:
    """CPU microseconds of this process per request, ``callers`` requests in flight."""
    for _ in range(20):  # warm-up: connections open, code paths hot
        await endpoint.send("bench-worker", MESSAGES)
    left = [requests]

    async def caller() -> None:
        while left[0] > 0:
            left[0] -= 1
            await endpoint.send("bench-worker", MESSAGES)

    t0 = time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return (time.process_time() - t0) / requests * 1e6


VARIANTS = ("sdk", "direct", "lean")
"""The request paths compared by ``request_cpu``, oldest first."""


def variant(name: str, base_url: str) -> Any:
    """The endpoint of one request path of `VARIANTS`."""
    if name == "sdk":
        return SDKEndpoint("s", base_url)
    return OpenAICompatEndpoint(name=name, base_url=base_url, api_key="sk-bench", timeout=60,
                                transport="httpx2" if name == "direct" else "auto")


async def request_cpu(rounds: int, requests: int, callers: int = 20) -> dict[str, Any]:
    child = subprocess.Popen([sys.executable, str(SCRIPT), "_serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        base_url = json.loads(child.stdout.readline())["base_url"]
        samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for r in range(rounds):
            k = r % len(VARIANTS)
            for name in VARIANTS[k:] + VARIANTS[:k]:
                ep = variant(name, base_url)
                try:
                    samples[name].append(await cpu_per_request(ep, requests, callers))
                finally:
                    await ep.aclose()
        child.stdin.close()
    finally:
        child.wait(timeout=10)
    cpu = {name: stats(samples[name], 1) for name in VARIANTS}
    return {"rounds": rounds, "requests_per_round": requests, "callers": callers, "cpu_us_per_request": cpu,
            "ratio_direct_over_sdk": round(cpu["direct"]["median"] / cpu["sdk"]["median"], 3),
            "ratio_lean_over_sdk": round(cpu["lean"]["median"] / cpu["sdk"]["median"], 3),
            "ratio_lean_over_direct": round(cpu["lean"]["median"] / cpu["direct"]["median"], 3)}


# -- 2. goodput under faults --------------------------------------------------------------------

def server_script(kinds: frozenset[str], delay: float, retry_after: float) -> Any:
    """Answers by this server's request counter: 429s and/or 503s at fixed positions."""
    seen = {"n": 0}

    def play(turn: Turn) -> Reply:
        n = seen["n"]
        seen["n"] += 1
        if "429" in kinds and n % 20 in RATE_LIMITED:
            return Reply.error(429, "rate limited", retry_after=retry_after)
        if "5xx" in kinds and n % 20 in SERVER_ERROR:
            return Reply.error(503, "overloaded")
        return Reply(content="ok", delay=delay)

    return play


async def sample_states(router: Router, into: list[list[tuple[bool, bool, int, float]]], every: float = 0.01) -> None:
    """Every ``every`` seconds: per endpoint (in cooldown, resting, in flight, limit)."""
    while True:
        now = time.monotonic()
        into.append([(s.cooldown_until > now, s.rest_until > now, s.in_flight, s.limit) for s in router.states])
        await asyncio.sleep(every)


async def load(kinds: frozenset[str], *, requests: int, callers: int, servers: int, delay: float,
               retry_after: float, deadline: float) -> dict[str, Any]:
    fakes = [FakeLLM(server_script(kinds, delay, retry_after), models=FAKE_MODELS).start() for _ in range(servers)]
    events: list[tuple[float, Event]] = []
    eps = [(OpenAICompatEndpoint(name=f"s{i}", base_url=f.base_url, api_key="sk-bench", timeout=60), 1.0)
           for i, f in enumerate(fakes)]
    router = Router(eps, MODELS, lambda e: events.append((time.monotonic(), e)))  # type: ignore[arg-type]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    done_at: list[float] = []

    async def caller() -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.monotonic()
            try:
                await router.complete("worker", MESSAGES, task_id="bench")
                latencies.append(time.monotonic() - t0)
                done_at.append(time.monotonic())
            except LLMError as e:
                failures[type(e).__name__] += 1

    samples: list[list[tuple[bool, bool, int, float]]] = []
    sampler = asyncio.create_task(sample_states(router, samples))
    started = time.monotonic()
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(callers))), deadline)
    except TimeoutError:
        timed_out = True
    wall = time.monotonic() - started
    sampler.cancel()
    limits = [round(s.limit, 2) for s in router.states]
    await router.aclose()
    received = sum(f.count() for f in fakes)
    statuses = Counter(r.status for f in fakes for r in f.requests)
    for f in fakes:
        f.stop()

    retries = [e for _, e in events if isinstance(e, LLMRetry)]
    retry_kinds = Counter(e.error.split(":", 1)[0] for e in retries)
    rests = [(t, e) for t, e in events if isinstance(e, EndpointHealth) and not e.healthy]
    ok = len(latencies)
    # Throughput over time: successful calls per second in each tenth of the run.
    tenths = [0] * 10
    for t in done_at:
        tenths[min(9, int((t - started) / wall * 10))] += 1
    n_samples = max(1, len(samples))
    return {
        "faults": sorted(kinds),
        "timed_out": timed_out,
        "calls": requests,
        "succeeded": ok,
        "failed_calls": sum(failures.values()),
        "unfinished_calls": requests - ok - sum(failures.values()),  # only when the deadline hit
        "failures_by_kind": dict(failures),
        "wall_s": round(wall, 3),
        "goodput_rps": round(ok / wall, 2),
        "server_requests": received,
        "retry_amplification": round(received / requests, 3),
        "server_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "call_latency_s": stats(latencies, 3) if latencies else {},
        "retries_by_kind": dict(retry_kinds),
        "retry_delay_s": stats([e.delay_s for e in retries], 3) if retries else {},
        "endpoint_rests": len(rests),
        # From sampling the router's endpoint states every 10 ms:
        "share_of_time_in_429_cooldown_per_endpoint": round(
            sum(c for snap in samples for c, _, _, _ in snap) / (n_samples * servers), 3),
        "share_of_time_every_endpoint_blocked": round(
            sum(all(c or r for c, r, _, _ in snap) for snap in samples) / n_samples, 3),
        "mean_in_flight_total": round(sum(f for snap in samples for _, _, f, _ in snap) / n_samples, 2),
        "mean_limit_per_endpoint": round(sum(lim for snap in samples for _, _, _, lim in snap) / (n_samples * servers), 2),
        "final_limits": limits,
        "successes_per_tenth_of_run": tenths,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick or args.smoke
    n_over = 50 if args.smoke else 1000 if quick else 5000
    requests = 40 if args.smoke else 400 if quick else 2000
    callers = 5 if args.smoke else 20 if quick else 50
    cfg = {"servers": 3, "delay": args.reply_delay, "retry_after": 0.05}
    result: dict[str, Any] = {"bench": "llm_router", "quick": quick, "machine": machine()}

    log(f"overhead: {n_over} sequential calls against an in-process endpoint")
    with tempfile.TemporaryDirectory() as tmp:
        result["overhead"] = [
            await overhead(n_over, 1, None),
            await overhead(n_over, 3, None),
            await overhead(n_over, 3, Path(tmp) / "requests.ndjson"),
        ]

    result["load_config"] = {
        "requests": requests, "callers": callers, "servers": cfg["servers"], "reply_delay_s": cfg["delay"],
        "fault_share": (len(RATE_LIMITED) + len(SERVER_ERROR)) / 20, "retry_after_s": cfg["retry_after"],
        "max_concurrency": 64, "rest_seconds": 30.0,
        "retry_policy": {cls.__name__: {"max_attempts": p.max_attempts, "base_delay": p.base_delay}
                         for cls, p in RETRY_POLICY.items() if cls in (LLMRateLimited, LLMServerError)},
    }
    variants = {"clean": frozenset(), "faults": frozenset({"429", "5xx"})}
    if not args.no_ablation and not args.smoke:  # which fault kind costs the time: each alone (15% of answers)
        variants |= {"only_429": frozenset({"429"}), "only_5xx": frozenset({"5xx"})}
    runs = {}
    for name, kinds in variants.items():
        log(f"load {name}: {requests} requests, {callers} callers, faults {sorted(kinds)}")
        runs[name] = await load(kinds, requests=requests, callers=callers, servers=cfg["servers"],
                                delay=cfg["delay"], retry_after=cfg["retry_after"], deadline=args.deadline)
        log(f"  -> {runs[name]['wall_s']} s, {runs[name]['goodput_rps']} calls/s")
    result["load"] = runs
    clean, faulty = runs["clean"], runs["faults"]
    # Each repeat is a clean run and a faulty run back to back, and its ratio is of that pair:
    # on a shared machine the load drifts between runs more than faults change goodput.
    repeats, ratios = [faulty], [faulty["goodput_rps"] / clean["goodput_rps"]] if clean["goodput_rps"] else []
    for i in range(1, args.repeat):
        log(f"load clean + faults, repeat {i + 1} of {args.repeat}")
        pair = [await load(kinds, requests=requests, callers=callers, servers=cfg["servers"], delay=cfg["delay"],
                           retry_after=cfg["retry_after"], deadline=args.deadline)
                for kinds in (variants["clean"], variants["faults"])]
        repeats.append(pair[1])
        if pair[0]["goodput_rps"]:
            ratios.append(pair[1]["goodput_rps"] / pair[0]["goodput_rps"])
    result["fault_repeats"] = {
        "runs": len(repeats), "failed_calls": sum(r["failed_calls"] for r in repeats),
        "unfinished_calls": sum(r["unfinished_calls"] for r in repeats),
        "retry_amplification": stats([r["retry_amplification"] for r in repeats], 3),
        "goodput_ratio": stats(ratios, 3) if ratios else {},
        "longest_call_s": max(r["call_latency_s"].get("max", 0.0) for r in repeats),
    }
    log(f"request CPU: {args.cpu_rounds} rounds, the SDK, direct and lean paths")
    result["request_cpu"] = await request_cpu(2 if args.smoke else args.cpu_rounds,
                                              30 if args.smoke else 300 if quick else 1500)
    result["summary"] = {
        "overhead_median_us": result["overhead"][1]["us"]["median"],
        "overhead_p95_us": result["overhead"][1]["us"]["p95"],
        "failed_calls": faulty["failed_calls"],
        "retry_amplification": faulty["retry_amplification"],
        "goodput_clean_rps": clean["goodput_rps"],
        "goodput_faults_rps": faulty["goodput_rps"],
        "goodput_ratio": round(faulty["goodput_rps"] / clean["goodput_rps"], 3) if clean["goodput_rps"] else None,
        "goodput_ratio_only_429": round(runs["only_429"]["goodput_rps"] / clean["goodput_rps"], 3)
        if "only_429" in runs else None,
        "goodput_ratio_only_5xx": round(runs["only_5xx"]["goodput_rps"] / clean["goodput_rps"], 3)
        if "only_5xx" in runs else None,
        "request_cpu_us_sdk": result["request_cpu"]["cpu_us_per_request"]["sdk"]["median"],
        "request_cpu_us_direct": result["request_cpu"]["cpu_us_per_request"]["direct"]["median"],
        "request_cpu_us_lean": result["request_cpu"]["cpu_us_per_request"]["lean"]["median"],
        "request_cpu_ratio": result["request_cpu"]["ratio_lean_over_sdk"],
        "request_cpu_ratio_lean_over_direct": result["request_cpu"]["ratio_lean_over_direct"],
        "targets_met": {
            "failed_calls_0": result["fault_repeats"]["failed_calls"] == 0,
            "amplification_le_2": result["fault_repeats"]["retry_amplification"]["max"] <= 2.0,
            "goodput_ratio_ge_0.8": bool(ratios) and min(ratios) >= 0.8,
            "request_cpu_ratio_le_0.5": result["request_cpu"]["ratio_lean_over_sdk"] <= 0.5,
        },
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (overhead 1,000; load 400 from 20 callers)")
    parser.add_argument("--no-ablation", action="store_true", help="skip the 429-only and 5xx-only runs")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds each load run may take (default 900)")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    parser.add_argument("--repeat", type=int, default=1, help="fault-load runs in this invocation (issue 21: 20)")
    parser.add_argument("--reply-delay", type=float, default=0.02,
                        help="seconds each fake holds a successful answer (default 0.02: the run is CPU-bound on a small "
                             "machine; 0.2 or more makes it latency-bound, as a real model is)")
    parser.add_argument("--cpu-rounds", type=int, default=6, help="interleaved rounds of the request-CPU comparison")
    if sys.argv[1:2] == ["_serve"]:
        serve_instant()
        return
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
