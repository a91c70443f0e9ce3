"""Cgroups left by a dead run are swept; a live run's are kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from longshot.sandboxes.limits import V1_ROOT, sweep_stale

PIDS = V1_ROOT / "pids"


@pytest.mark.skipif(not (PIDS / "cgroup.procs").exists(), reason="no cgroup v1 pids hierarchy on this host")
def test_sweep_removes_only_empty_cgroups_of_dead_processes() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = PIDS / f"longshot-test-{dead.pid}-1"
    live = PIDS / f"longshot-test-{os.getpid()}-1"
    for d in (stale, live):
        d.mkdir(exist_ok=True)
    try:
        removed = sweep_stale("longshot-test-")
        assert str(stale) in removed and not stale.exists()
        assert live.exists()
    finally:
        for d in (stale, live):
            if d.exists():
                Path(d).rmdir()
