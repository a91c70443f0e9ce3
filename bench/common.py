"""What every benchmark shares: percentiles, summary statistics and a description of the machine."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any


SMOKE_HELP = ("the smallest run through every part, for CI (tests/test_benchmarks.py): it proves the "
              "script still works; its figures mean nothing")


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linearly interpolated; nan for no values."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def stats(values: list[float], digits: int = 3) -> dict[str, float]:
    """Median, p95, p99, min, max, mean and count, rounded to ``digits``."""
    return {"median": round(percentile(values, 50), digits), "p95": round(percentile(values, 95), digits),
            "p99": round(percentile(values, 99), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "mean": round(statistics.fmean(values), digits), "n": len(values)}


def version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        return f"unavailable ({e})"


def machine() -> dict[str, Any]:
    """The machine a run was measured on, for the record in docs/benchmarks.md."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(), "memory_total_mb": round(mem_kb / 1024),
        "kernel": platform.release(), "python": platform.python_version(),
        "bwrap": version(["bwrap", "--version"]), "git": version(["git", "--version"]),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
