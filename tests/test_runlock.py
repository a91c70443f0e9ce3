"""A crash leaves nothing that blocks the next run (issue 15 item 9).

The dead orchestrator is a real zombie: its parent (standing in for a container's PID 1
that never reaps) keeps it in the process table after ``kill -9`` of its whole process
group. Its pid may also be given to another process later; neither keeps the run lock, nor
keeps the dead run's sandboxes from being salvaged and swept.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from longshot.errors import ConfigError
from longshot.events import RunWarning
from longshot.procs import alive, state
from longshot.runlock import RunLock
from longshot.sandboxes.orphans import OWNER_FILE, Owner, owner_dead, start_time

from helpers import run_cli, run_env
from test_resume import ENV, TASKS, check_invariants, logs, script

NO_REAP = r"""
import os, signal, sys, time
quiet = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]  # this process's stdout says the pid
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], dict(os.environ), setsid=True, file_actions=quiet)
while True:  # never waitpid(): a PID 1 that does not reap
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        break
    if stat[stat.rfind(")") + 2] == "Z":
        break
    time.sleep(0.05)
try:
    os.killpg(pid, signal.SIGKILL)  # the rest of its tree
except ProcessLookupError:
    pass
print(pid, flush=True)
time.sleep(600)
"""
"""Starts its arguments in a new session, lets the process die unreaped, kills its group,
prints its pid and lives on (the zombie stays while this process lives)."""


def holder(path: Path) -> subprocess.Popen[str]:
    """Another process holding the run lock, alive until killed."""
    code = ("import sys, time; from pathlib import Path; from longshot.runlock import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire('run-a'); print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_live_run_holds_the_lock_and_its_death_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "hub-x.lock"
    live = holder(path)
    try:
        with pytest.raises(ConfigError, match=f"pid {live.pid}, run-a"):
            RunLock(path).acquire("run-b")
    finally:
        live.kill()
        live.wait()
    lock = RunLock(path)
    said = lock.acquire("run-b")
    assert said is not None and "stale lock of run run-a" in said
    lock.release()
    assert not path.exists()


def test_a_zombie_or_a_reused_pid_never_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "hub-x.lock"
    parent = subprocess.Popen([sys.executable, "-c", NO_REAP, sys.executable, "-c",
                               f"from pathlib import Path; from longshot.runlock import RunLock; "
                               f"RunLock(Path({str(path)!r})).acquire('run-a'); import os; os.kill(os.getpid(), 9)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        assert state(zombie) == "Z" and not alive(zombie)
        assert json.loads(path.read_text())["pid"] == zombie
        lock = RunLock(path)
        assert "run-a" in (lock.acquire("run-b") or "")
        lock.release()
    finally:
        parent.kill()
        parent.wait()
    # The pid of the lock's writer now belongs to another, live process: the lock is still free.
    other = subprocess.Popen(["sleep", "60"])
    try:
        path.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "run_id": "run-c"}))
        lock = RunLock(path)
        assert "run-c" in (lock.acquire("run-d") or "")
        lock.release()
    finally:
        other.kill()
        other.wait()


def test_a_sandbox_directory_is_dead_when_its_pid_was_reused_or_is_a_zombie(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        reused = tmp_path / f"t1-{other.pid}-1"
        reused.mkdir()
        (reused / OWNER_FILE).write_text(Owner(socket.gethostname(), other.pid, 1).tag)  # started long ago
        assert owner_dead(reused)
        mine = tmp_path / f"t2-{other.pid}-1"
        mine.mkdir()
        (mine / OWNER_FILE).write_text(Owner(socket.gethostname(), other.pid, _start(other.pid)).tag)
        assert not owner_dead(mine)
    finally:
        other.kill()
    while state(other.pid) != "Z":  # killed, not yet reaped
        time.sleep(0.01)
    assert owner_dead(mine)
    other.wait()


def _start(pid: int) -> int:
    started = start_time(pid)
    assert started is not None
    return started


def test_resume_starts_at_once_after_kill_9_of_a_tree_left_as_a_zombie(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "ten files\n", "BROKEN": "remove me\n"})
    fake = fake_llm(script(TASKS[:3]))
    env = run_env(tmp_path, target, fake, **ENV, LONGSHOT_CRASH_AT="dispatch:2")
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env}
    parent = subprocess.Popen([sys.executable, "-c", NO_REAP, sys.executable, "-m", "longshot", "build it"],
                              env=full, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        assert state(zombie) == "Z"
        assert list((tmp_path / "work").glob("*.lock")), "the dead run's lock file should be left behind"
        assert list((tmp_path / "work" / "tasks").iterdir()), "the dead run's sandboxes should be left behind"

        done = run_cli(["--resume"], {k: v for k, v in env.items() if k != "LONGSHOT_CRASH_AT"}, cwd=tmp_path)

        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert state(zombie) == "Z", "the zombie must still be there for the test to mean anything"
        warnings = [e.message for run in logs(tmp_path) for e in run if isinstance(e, RunWarning)]
        assert any("stale lock" in w for w in warnings), warnings
        assert any("salvaged" in w or "sandbox" in w for w in warnings), warnings
        check_invariants(target, tmp_path, {t["id"]: 1 for t in TASKS[:3]} | {"fix-001": 1})
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
