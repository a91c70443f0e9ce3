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


def test_settle_kills_a_cgroup_s_processes_and_waits_until_it_is_empty(tmp_path: Path) -> None:
    """After a command the sandbox kills what is left in its cgroup and waits for it to empty,
    pausing between looks (the processes need a moment to exit) rather than spinning."""
    import asyncio

    from longshot.sandboxes.limits import Cgroup, Limits

    group = Cgroup.create(f"longshot-test-{os.getpid()}-settle", Limits())
    if group is None:
        pytest.skip("no cgroup can be created on this host")

    async def main() -> list[int | None]:
        assert group is not None
        join = f"for f in {' '.join(group.procs_files)}; do echo $$ > $f || exit 9; done; exec sleep 60"
        procs = [await asyncio.create_subprocess_exec("sh", "-c", join) for _ in range(3)]
        for _ in range(1000):  # each moves itself in
            if len(group.pids()) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(group.pids()) == 3
        await group.settle()
        assert group.pids() == set()
        return [await asyncio.wait_for(p.wait(), 10) for p in procs]

    try:
        assert asyncio.run(main()) == [-9, -9, -9]
    finally:
        group.remove()
