"""Every writable place is capped and swept (issue 15 item 6).

Inside a sandbox the only writable places are the checkout, HOME, /tmp and /dev/shm, all
host directories of the sandbox under the disk watch; /run, /run/longshot, /dev and the
root are read-only. Filling any writable place past SANDBOX_DISK_MB is stopped and named.
After a SIGKILL of the orchestrator, the next run removes everything the dead one left.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote

SMALL = Limits(memory_mb=256, cpu_cores=1, processes=64, open_files=256, disk_mb=16, files=2000)


class Env:
    def __init__(self, tmp: Path) -> None:
        remote = make_remote(tmp, {"README.md": "# demo\n"})
        self.hub = tmp / "hub.git"
        git("clone", "--quiet", "--bare", str(remote), str(self.hub), cwd=tmp)
        self.base = git("rev-parse", "refs/heads/main", cwd=self.hub)
        self.work = tmp / "work"

    def spec(self) -> SandboxSpec:
        return SandboxSpec(task_id="t1", branch="worker/t1", base_commit=self.base, hub=self.hub)

    def provider(self, limits: Limits = SMALL) -> LocalSandboxProvider:
        return LocalSandboxProvider(self.work, LocalOptions(isolation="bubblewrap", limits=limits))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)

PLACES = {"checkout": "/workspace", "HOME": "/home/sandbox", "tmp": "/tmp", "shm": "/dev/shm"}
READ_ONLY = ["/run", "/run/longshot", "/dev", "/", "/etc", "/usr"]


@pytest.mark.parametrize("place", sorted(PLACES))
async def test_writing_past_the_disk_cap_is_stopped_in_every_writable_place(env: Env, place: str) -> None:
    async with env.provider().open(env.spec()) as sb:
        r = await sb.exec(f"for i in 1 2 3 4 5 6; do head -c 8M /dev/zero > {PLACES[place]}/fill$i || exit 1; "
                          "sleep 0.3; done; echo WROTE-ALL", 60)
        assert "WROTE-ALL" not in r.stdout, r
        assert r.limit is not None and "SANDBOX_DISK_MB" in r.limit, r


async def test_nothing_else_is_writable(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        for path in READ_ONLY:
            r = await sb.exec(f"echo x > {path}/planted-$$ && echo WROTE", 20)
            assert "WROTE" not in r.stdout, path
        # every mount that is writable inside is one of the sandbox's own directories
        r = await sb.exec("awk '$6 ~ /^rw/ {print $5}' /proc/self/mountinfo", 20)
        writable = {p for p in r.stdout.split() if not p.startswith(("/proc", "/dev/pts"))}
        devices = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
        assert writable - devices <= set(PLACES.values()), writable


KILLED_RUN = textwrap.dedent("""
    import asyncio, os, sys
    from pathlib import Path
    from longshot.sandboxes.base import SandboxSpec
    from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
    work, hub, base = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    async def main():
        provider = LocalSandboxProvider(work, LocalOptions())
        async with provider.open(SandboxSpec(task_id="t1", branch="worker/t1", base_commit=base, hub=hub)) as sb:
            r = await sb.exec("for d in /workspace /home/sandbox /tmp /dev/shm; do head -c 1M /dev/zero > $d/left; done", 30)
            print(sb.root, sb.run_dir, r.exit_code, flush=True)
            await asyncio.sleep(600)
    asyncio.run(main())
""")


async def test_the_next_run_removes_what_a_killed_run_left(env: Env) -> None:
    dead = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(env.work), str(env.hub), env.base],
                            stdout=subprocess.PIPE, text=True)
    assert dead.stdout is not None
    root, run_dir, code = dead.stdout.readline().split()
    assert code == "0"
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    for d in ("checkout", "home", "tmp", "shm"):
        assert (Path(root) / d / "left").exists()
    assert Path(run_dir).is_dir() and Path(run_dir).parent == Path(tempfile.gettempdir())

    swept = await env.provider().sweep_orphans()

    assert not Path(root).exists() and not Path(run_dir).exists(), swept
    assert any(root in s for s in swept) and any(run_dir in s for s in swept), swept
