"""Benchmark of the Ray provider's per-task overhead against the local provider (issue 11).

Run: ``.venv/bin/python bench/provider_bench.py [--quick]``. Prints ONE JSON object on
stdout; progress goes to stderr. Needs ``ray`` (``pip install -e '.[ray]'``), ``git`` and
``bwrap``. Starts a local Ray cluster (the way the provider does when RAY_ADDRESS is
unset), and removes it and its temporary directory at the end.

One task's life, on the same repository (1,000 files, one commit) for both providers:
``open`` (create the sandbox and move the base commit in), 10 commands (``echo $i >
f$i.txt``), ``snapshot`` (move the result out: a commit with 10 new files on the task
branch in the hub), and leaving the block (destroy). Each phase is timed; local and Ray
tasks are interleaved (rotating order) after one warm-up each, so drift hits both alike.

Reported per provider: medians (and p95) of each phase and of the whole task; and the
ratio Ray / local of the medians. The base bundle is cached by commit, as in a run
where many tasks start from the same tip: the first Ray task of a tip pays for packing it
(``first_bundle_ms``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bundle import BundleCache
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote
from common import SMOKE_HELP, machine, stats

N_FILES = 1000
COMMANDS = 10


def log(msg: str) -> None:
    print(f"[provider_bench] {msg}", file=sys.stderr, flush=True)


def make_hub(tmp: Path) -> tuple[Path, str]:
    files = {f"src/pkg{i // 50}/mod{i}.py": f'"""Module {i}."""\n\nVALUE = {i}\n' for i in range(N_FILES)}
    remote = make_remote(tmp, files)
    hub = tmp / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp)
    return hub, git("rev-parse", "refs/heads/main", cwd=hub)


async def one_task(provider: Any, hub: Path, base: str, n: int) -> dict[str, float]:
    spec = SandboxSpec(task_id=f"bench{n}", branch=f"worker/bench-{n}", base_commit=base, hub=hub)
    t0 = time.perf_counter()
    async with provider.open(spec) as sb:
        t1 = time.perf_counter()
        for i in range(COMMANDS):
            r = await sb.exec(f"echo {i} > f{i}.txt", 30)
            if r.exit_code != 0:
                raise RuntimeError(f"command failed: {r}")
        t2 = time.perf_counter()
        if await sb.snapshot(f"bench {n}") is None:
            raise RuntimeError("the snapshot found no change")
        t3 = time.perf_counter()
    t4 = time.perf_counter()
    return {"open_ms": (t1 - t0) * 1000, "commands_ms": (t2 - t1) * 1000, "snapshot_ms": (t3 - t2) * 1000,
            "destroy_ms": (t4 - t3) * 1000, "task_ms": (t4 - t0) * 1000}


async def run(quick: bool | str, tmp: Path) -> dict[str, Any]:
    """``quick``: False, True or "smoke" (the smallest run through every part)."""
    from longshot.sandboxes.ray import RayOptions, RaySandboxProvider, connect

    result: dict[str, Any] = {"benchmark": "provider_bench", "machine": machine(), "files": N_FILES,
                              "commands_per_task": COMMANDS}
    hub, base = make_hub(tmp)
    t = time.perf_counter()
    ray = connect(None)
    result["ray_cluster_start_ms"] = round((time.perf_counter() - t) * 1000, 1)
    result["ray_version"] = ray.__version__
    options = LocalOptions(limits=Limits(memory_mb=1024, cpu_cores=1))
    providers = {"local": LocalSandboxProvider(tmp / "local", options),
                 "ray": RaySandboxProvider(tmp / "ray", RayOptions(cpus=1, memory_mb=512, local=options), "run-bench")}
    t = time.perf_counter()
    await BundleCache(tmp / "probe-bundles").base(hub, base)
    result["first_bundle_ms"] = round((time.perf_counter() - t) * 1000, 1)
    result["bundle_bytes"] = sum(p.stat().st_size for p in (tmp / "probe-bundles").glob("*.bundle"))
    n = 1 if quick == "smoke" else 6 if quick else 30
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in providers}
    for name, provider in providers.items():  # warm-up: imports, page cache, Ray worker start, bundle cache
        await one_task(provider, hub, base, -1 if name == "local" else -2)
    names = list(providers)
    for i in range(n):
        order = names[i % 2:] + names[: i % 2]
        for name in order:
            samples[name].append(await one_task(providers[name], hub, base, i * 2 + names.index(name)))
        if (i + 1) % 5 == 0:
            log(f"{i + 1}/{n}")
    result["n"] = n
    for name, rows in samples.items():
        result[name] = {phase: stats([r[phase] for r in rows], 1) for phase in rows[0]}
    result["ratio_ray_over_local"] = {phase: round(result["ray"][phase]["median"] / result["local"][phase]["median"], 2)
                                      for phase in result["local"]}
    ray.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 tasks per provider instead of 30")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="longshot-provider-bench-"))
    try:
        result = asyncio.run(run("smoke" if args.smoke else args.quick, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["temp_dir_removed"] = not tmp.exists()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
