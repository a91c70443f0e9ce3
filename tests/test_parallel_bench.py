"""bench/parallel_bench.py --quick runs both modes through the real pipeline and its own
correctness checks hold: every task landed exactly once and the final tree is the expected
one, under SCOPE_OVERLAP=hold and under the default. Its speed figures are not checked here
(they are measured in full and recorded in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "parallel_bench.py"


@pytest.mark.slow
def test_the_parallel_benchmark_quick_mode_lands_every_task_once_in_both_modes() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--quick"], cwd=BENCH.parents[1], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout)
    for mode in ("hold", "default"):
        run = result[mode]
        assert run["exit_code"] == 0, (mode, run)
        assert run["every_task_landed_once"] and run["final_tree_as_expected"], (mode, run)
        assert run["landings"] + run["conflict_fix_tasks"] >= result["tasks"]
    assert result["hold"]["peak_busy_workers"] == 1  # every task names the index: hold runs one at a time
    assert result["default"]["peak_busy_workers"] > 1
