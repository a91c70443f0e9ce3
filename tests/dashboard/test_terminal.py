"""The dashboard for real, in a terminal: tmux runs Longshot, we read the screen and press keys.

Each test starts its own tmux server (``-L``, a private socket) and ends only that server.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"
TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (scripts/setup.sh installs it), so no real terminal can be driven")
_sockets = itertools.count()


class Terminal:
    """A detached tmux session of ``width`` x ``height`` running ``command`` in ``cwd``."""

    def __init__(self, command: str, cwd: Path, width: int = 140, height: int = 45) -> None:
        self.socket = f"longshot-test-{os.getpid()}-{next(_sockets)}"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8",
                    "LC_ALL": "C.UTF-8"}
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
                   f"cd {cwd} && {command}; echo EXIT=$?; sleep 120")

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([TMUX or "tmux", "-u", "-f", "/dev/null", "-L", self.socket, *args], env=self.env,
                              capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, *texts: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            assert time.monotonic() < deadline, f"never showed {texts}; the screen:\n{screen}"
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run([TMUX or "tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True)


def test_replaying_the_demo_shows_its_tasks_and_switches_tabs_on_a_key(tmp_path: Path) -> None:
    term = Terminal(f"{sys.executable} -m longshot replay {LOG} --speed 4", tmp_path)
    try:
        screen = term.wait_for("─ tasks", "◆ planner", " slug ", " counts ")
        for panel in ("LONGSHOT", "─ metrics", "─ merge queue", "─ alerts", "─ progress", "replay ×4"):
            assert panel in screen
        term.keys("Tab")
        term.wait_for("─ activity", timeout=10)
        term.keys("Left")
        term.wait_for("─ tasks", timeout=10)
        screen = term.wait_for("replay finished", "✓ FINISHED", timeout=30)
        for task in ("slug", "counts", "case", "wrap", "truncate", "stats", "api", "cli", "fix-001"):
            assert f" {task} " in screen
        assert "landed 9" in screen and "◆ reconciler" in screen
        term.keys("q")
        screen = term.wait_for("EXIT=0", timeout=20)
        assert "run finished" in screen and "landed commits          9" in screen
    finally:
        term.close()


def test_the_demo_shows_the_dashboard_by_default_in_a_terminal(tmp_path: Path) -> None:
    """A live run: the dashboard comes up by itself, answers a key, and leaves the summary behind.

    Whether the demo ends green is ``tests/test_demo.py``'s business, not this test's.
    """
    term = Terminal(f"{sys.executable} -m longshot demo --keep {tmp_path / 'demo'} --pace 0.3", tmp_path)
    try:
        screen = term.wait_for("─ tasks", " slug ", "running", timeout=60)
        assert "LONGSHOT" in screen and "workers " in screen and "Ctrl-C stops the run" in screen
        term.keys("Tab")
        term.wait_for("─ activity", "planner", timeout=10)
        screen = term.wait_for("EXIT=", timeout=120)
        assert ("run finished" in screen or "run summary" in screen) and "The result is in" in screen
        assert "─ activity" not in screen  # the dashboard left the screen to the summary
    finally:
        term.close()


def test_the_dashboard_leaves_the_command_that_takes_the_result_of_a_dirty_working_copy(tmp_path: Path) -> None:
    """Issue 18 item 4: the run ends on the dashboard, the user's branch cannot move (uncommitted
    changes), and the final screen says so and gives the one command that takes the result."""
    from longshot.testing.fake_llm import FakeLLM
    from longshot.testing.fake_script import RoleScript
    from longshot.testing.repos import git

    from helpers import MODELS, plan_json, planner_then_done, run_env, worker_steps

    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "app.txt").write_text("v1\n")
    git("add", "app.txt", cwd=repo)
    git("commit", "--quiet", "-m", "start", cwd=repo)
    (repo / "app.txt").write_text("v2, not committed\n")
    script = RoleScript({"planner": planner_then_done(plan_json([{"id": "n", "description": "add new.txt",
                                                                  "scope": ["new.txt"]}])),
                         "worker": {"n": worker_steps([("new.txt", "new\n")], delay=0.5)}})
    with FakeLLM(script, models=MODELS) as fake:
        env = run_env(tmp_path, repo, fake, CHECK_COMMANDS="none")
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))  # the terminal's run reads it
        term = Terminal(f"{sys.executable} -m longshot 'add new.txt'", tmp_path)
        try:
            term.wait_for("─ tasks", timeout=60)  # the dashboard had the screen
            term.wait_for("EXIT=", timeout=120)
            screen = term._tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-60")  # -J: wrapped lines joined
        finally:
            term.close()
    assert "EXIT=0" in screen
    assert "main did not move" in screen and "uncommitted changes" in screen
    assert f"take it  git -C {repo} merge --ff-only refs/longshot/result/main" in screen
    assert git("rev-parse", "main", cwd=repo) == git("rev-parse", "HEAD", cwd=repo)
