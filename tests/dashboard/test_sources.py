"""Recorded runs: ``replay`` keeps the timing (scaled), ``watch`` follows the newest log, ``report``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from longshot.dashboard.sources import follow, replay
from longshot.events import Event, RunStarted, RunWarning, TaskCreated

from helpers import run_cli

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"


def write_log(path: Path, events: list[Event]) -> Path:
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    return path


def test_replay_at_speed_10_takes_a_tenth_of_the_recorded_time(tmp_path: Path) -> None:
    start = 1_000_000.0
    events = [RunStarted(ts=start, request="r", repo="x", target_branch="main", max_workers=2)]
    events += [RunWarning(ts=start + 2.0 * i, message=f"tick {i}") for i in range(1, 11)]  # 20 s recorded
    log = write_log(tmp_path / "run-a.ndjson", events)
    waits = Waits()
    seen: list[float] = []

    sent = replay(log, lambda e: seen.append(e.ts), speed=10, stop=waits)

    assert sent == 11 and seen == [e.ts for e in events]
    # before each event it waits until a tenth of its recorded offset (2 s apart -> 0.2 s), not all at the end
    expected = [0.0] + [0.2 * i for i in range(1, 11)]
    assert len(waits.asked) == 11
    assert all(abs(asked - due) < 0.05 for asked, due in zip(waits.asked, expected)), waits.asked


class Waits(threading.Event):
    """A stop signal that is never set and records each wait asked of it, returning at once (the
    schedule is checked, not the clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout or 0.0)
        return False


def test_watch_follows_the_newest_log_and_switches_to_a_newer_one(tmp_path: Path) -> None:
    older = write_log(tmp_path / "run-20260101T000000Z-aaaa.ndjson",
                      [RunStarted(ts=1, request="first", repo="x", target_branch="main", max_workers=1)])
    seen: list[str] = []
    switched: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(tmp_path, lambda e: seen.append(e.type), lambda p: switched.append(p.name)),
                              kwargs={"stop": stop, "poll": 0.05})
    thread.start()
    try:
        wait_for(lambda: seen == ["run.started"])
        with older.open("a") as f:  # a line appended in two writes is read once, whole
            line = TaskCreated(ts=2, task_id="a", description="d", branch="worker/a").model_dump_json()
            f.write(line[:20])
            f.flush()
            time.sleep(0.15)
            f.write(line[20:] + "\n")
        wait_for(lambda: seen == ["run.started", "task.created"])
        write_log(tmp_path / "run-20260101T000500Z-bbbb.ndjson",
                  [RunStarted(ts=3, request="second", repo="x", target_branch="main", max_workers=1),
                   RunWarning(ts=4, message="w")])
        wait_for(lambda: len(seen) == 4)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert switched == [older.name, "run-20260101T000500Z-bbbb.ndjson"]
    assert seen == ["run.started", "task.created", "run.started", "warning"]


def wait_for(condition, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_replay_and_report_commands_on_the_demo_log(tmp_path: Path) -> None:
    log = Path(shutil.copy(LOG, tmp_path / LOG.name))
    done = run_cli(["replay", str(log), "--speed", "0", "--no-dashboard"], {}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "stats-conflict-fix" in done.stdout or "truncate-conflict-fix" in done.stdout
    assert "fix-001 landed as" in done.stdout and "exit status             0 (green)" in done.stdout

    assert run_cli(["replay", str(tmp_path / "missing.ndjson")], {}, cwd=tmp_path).returncode == 2
    done = run_cli(["report", str(log)], {}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report-demo" / "report.md").is_file() and "report-demo/report.md" in done.stdout


def test_watch_command_prints_a_run_as_it_is_written(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "longshot", "watch", "--no-dashboard"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    guard = threading.Timer(30, proc.kill)  # a watch that never prints must not hang the suite
    guard.start()
    try:
        assert proc.stdout is not None
        assert "waiting for a run log" in proc.stdout.readline()
        write_log(logs / "run-20260101T000000Z-aaaa.ndjson",
                  [RunStarted(ts=1, request="watched run", repo="x", target_branch="main", max_workers=1),
                   TaskCreated(ts=2, task_id="t1", description="the watched task", branch="worker/t1")])
        lines: list[str] = []
        while not any("the watched task" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "watch ended early: " + "".join(lines)
            lines.append(line)
    finally:
        guard.cancel()
        proc.terminate()
        proc.wait(timeout=10)
    text = "".join(lines)
    assert "following logs/run-20260101T000000Z-aaaa.ndjson" in text and "longshot watched run" in text
