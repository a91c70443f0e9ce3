"""Every benchmark still runs: each ``bench/*_bench.py`` with ``--smoke`` prints one JSON object.

Benchmarks reach deep into the code they measure, so a rename can break one silently
(`planner_bench.py` crashed on main for a whole round). Here each runs its smallest pass
through every part, as a real subprocess, on every CI run. Their figures are not checked:
speed is measured by running them in full (docs/benchmarks.md), never asserted in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*_bench.py"))
NEEDS = {"provider_bench.py": "ray", "web_bench.py": "playwright"}
"""Optional packages a benchmark needs; it is skipped (with the reason) where they are missing."""


def test_every_benchmark_is_covered() -> None:
    assert len(SCRIPTS) >= 8, SCRIPTS
    for name in SCRIPTS:
        assert "--smoke" in (BENCH / name).read_text(), f"{name} has no --smoke mode for CI"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_in_smoke_mode(script: str) -> None:
    if script in NEEDS:
        pytest.importorskip(NEEDS[script], reason=f"{script} needs {NEEDS[script]}")
    proc = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout)
    assert isinstance(result, dict) and result, proc.stdout[:500]
