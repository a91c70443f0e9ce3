"""Sandbox-ready time against repository size: copy-on-write (overlay) vs full checkout (issue 21).

Run through ``bench/sandbox_bench.py --files 1000,50000 --json``. Per repository size, in
one run and interleaved (rotating order): the median and p95 of sandbox-ready (``open`` +
the first ``exec("true")``) with ``SANDBOX_OVERLAY=on`` and ``off``, a plain ``git
checkout`` of the same tree into an empty directory, the close time, the one-off cost of
materialising the shared base tree (the overlay's first open on a commit), and the disk
bytes an idle sandbox holds of its own (``du -x``: the overlay's merged view is another
file system and is not counted; the shared base is reported once, apart).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from longshot.git import SAFE_CONFIG
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider

from common import percentile, stats


def du(path: Path) -> int:
    """Bytes on disk under ``path``, not crossing into other file systems (mounts)."""
    out = subprocess.run(["du", "-sxB1", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def plain_checkout(hub: Path, base: str, dest: Path) -> float:
    """``git --work-tree=dest checkout`` of ``base`` from the hub, with a scratch index; ms."""
    dest.mkdir(parents=True)
    t = time.perf_counter()
    subprocess.run(["git", *SAFE_CONFIG, f"--git-dir={hub}", f"--work-tree={dest}", "checkout", "--quiet", "--force",
                    base, "--", "."], check=True, env={"GIT_INDEX_FILE": str(dest.parent / f"{dest.name}.index"),
                                                       "PATH": "/usr/bin:/bin"})
    took = (time.perf_counter() - t) * 1000
    shutil.rmtree(dest)
    (dest.parent / f"{dest.name}.index").unlink()
    return took


async def one(provider: LocalSandboxProvider, hub: Path, base: str, name: str) -> tuple[float, float, int]:
    """(ready ms, close ms, own disk bytes while idle) of one sandbox."""
    from longshot.sandboxes.base import SandboxSpec
    t0 = time.perf_counter()
    async with provider.open(SandboxSpec(task_id=name, branch=f"longshot/{name}", base_commit=base, hub=hub)) as sb:
        r = await sb.exec("true", 60)
        t1 = time.perf_counter()
        if r.exit_code != 0:
            raise RuntimeError(f"exec true failed: {r}")
        size = du(sb.root)
        t2 = time.perf_counter()
    return (t1 - t0) * 1000, (time.perf_counter() - t2) * 1000, size


async def bench_size(tmp: Path, n_files: int, n: int, make_hub: Any) -> dict[str, Any]:
    hub, base = make_hub(tmp, n_files, f"hub-{n_files}.git")
    providers = {mode: LocalSandboxProvider(tmp / f"work-{mode}-{n_files}", LocalOptions(overlay=mode))
                 for mode in ("on", "off")}
    t = time.perf_counter()
    _, _, _ = await one(providers["on"], hub, base, "warm-on")  # materialises the shared base
    base_ms = (time.perf_counter() - t) * 1000
    await one(providers["off"], hub, base, "warm-off")
    plain_checkout(hub, base, tmp / "warm-plain")
    ready: dict[str, list[float]] = {"overlay": [], "checkout": [], "plain_git_checkout": []}
    close: dict[str, list[float]] = {"overlay": [], "checkout": []}
    disk: dict[str, list[int]] = {"overlay": [], "checkout": []}
    for i in range(n):
        order = [("overlay", "on"), ("checkout", "off"), ("plain_git_checkout", "")]
        shift = i % len(order)
        for key, mode in order[shift:] + order[:shift]:
            if not mode:
                ready[key].append(plain_checkout(hub, base, tmp / f"plain-{i}"))
                continue
            r, c, size = await one(providers[mode], hub, base, f"s{i}-{mode}")
            ready[key].append(r)
            close[key].append(c)
            disk[key].append(size)
    bases = tmp / f"work-on-{n_files}" / "bases"
    return {
        "files": n_files, "n": n, "profile_overlay": providers["on"].describe().description,
        "ready_ms": {k: stats(v) for k, v in ready.items()},
        "close_ms": {k: stats(v) for k, v in close.items()},
        "first_open_on_a_new_base_ms": round(base_ms, 1),
        "disk_bytes_per_idle_sandbox": {k: int(percentile([float(x) for x in v], 50)) for k, v in disk.items()},
        "shared_base_bytes": du(bases) if bases.exists() else 0,
    }


async def run_sizes(tmp: Path, sizes: list[int], n: int, make_hub: Any, log: Any) -> dict[str, Any]:
    """The size comparison for each of ``sizes``, and the issue's targets."""
    out: dict[str, Any] = {}
    for size in sizes:
        log(f"size {size}: making the repository, then N={n} interleaved rounds")
        out[str(size)] = await bench_size(tmp, size, n, make_hub)
    med = {s: out[str(s)]["ready_ms"]["overlay"]["median"] for s in sizes}
    targets: dict[str, Any] = {}
    for s in sizes:
        limit = 50 if s <= 1000 else 100
        targets[f"ready_overlay_{s}_le_{limit}ms"] = {"measured": med[s], "target": limit, "met": med[s] <= limit}
    if len(sizes) > 1:
        ratio = round(med[max(sizes)] / med[min(sizes)], 2)
        targets["ratio_largest_to_smallest_le_1.5"] = {"measured": ratio, "target": 1.5, "met": ratio <= 1.5}
    return {"sizes": out, "targets": targets}


def sizes_main(tmp: Path, sizes: list[int], n: int, make_hub: Any, log: Any, header: dict[str, Any]) -> dict[str, Any]:
    return {**header, **asyncio.run(run_sizes(tmp, sizes, n, make_hub, log))}
