"""Benchmark of how the orchestrator runs a child process (issue 21: orchestrator CPU per task).

Run: ``.venv/bin/python bench/spawn_bench.py [--n 400] [--rounds 6] [--concurrency 1,20]``.
Prints ONE JSON object on stdout.

A run starts about fifteen processes per task (git, the sandbox's commands). Measured here:
the orchestrator's own CPU (``getrusage(RUSAGE_SELF)``, the children's not counted) per
process run to its end with a small stdin, its output read, for

- ``asyncio``: ``asyncio.create_subprocess_exec`` + ``communicate`` (what `Git.run_full` did),
  with the pidfd child watcher a run installs (`longshot.procs.pidfd_child_watcher`);
- ``lean``: `longshot.procs.run_process` (pipes and a pidfd watched on the loop directly),

interleaved in rounds, one at a time and ``--concurrency`` at once. The child is
``git --version`` (the cheapest real git process). Medians of the rounds and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from longshot.procs import pidfd_child_watcher, run_process
from common import SMOKE_HELP, machine


async def _asyncio_run(argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def _round(kind: str, n: int, concurrency: int, cwd: Path) -> float:
    """CPU microseconds of this process per child run."""
    run = run_process if kind == "lean" else _asyncio_run
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    argv = [shutil.which("git") or "git", "--version"]
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            code, out, _ = await run(argv, cwd=cwd, env=env, stdin=b"x\n")
            assert code == 0 and out.startswith(b"git version"), (code, out)

    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(one() for _ in range(n)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="processes per round (default 400)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per variant, interleaved (default 6)")
    parser.add_argument("--concurrency", default="1,20", help="processes at once, comma-separated (default 1,20)")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    n, rounds = (10, 1) if args.smoke else (args.n, args.rounds)
    result: dict[str, object] = {"benchmark": "spawn_bench", "machine": machine(), "processes_per_round": n,
                                 "rounds": rounds, "child": "git --version", "by_concurrency": {}}
    with tempfile.TemporaryDirectory(prefix="longshot-spawn-") as tmp, pidfd_child_watcher():
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            cpu: dict[str, list[float]] = {"asyncio": [], "lean": []}
            for i in range(rounds):
                for kind in ("asyncio", "lean") if i % 2 == 0 else ("lean", "asyncio"):
                    cpu[kind].append(asyncio.run(_round(kind, n, concurrency, Path(tmp))))
                print(f"[spawn_bench] concurrency {concurrency}, round {i + 1}/{rounds}", file=sys.stderr)
            medians = {k: round(statistics.median(v), 1) for k, v in cpu.items()}
            result["by_concurrency"][str(concurrency)] = {  # type: ignore[index]
                "cpu_us_per_process_median": medians,
                "cpu_us_per_process_rounds": {k: [round(x, 1) for x in v] for k, v in cpu.items()},
                "ratio_lean_to_asyncio": round(medians["lean"] / medians["asyncio"], 3),
            }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
