"""``longshot "<request>" --web``: the web view starts with the run and shows it while it runs."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from longshot.testing.fake_script import Reply, RoleScript, Turn

from helpers import plan_json, run_env, worker_steps


def test_web_flag_serves_the_run_while_it_runs(tmp_path: Path, fake_llm, remote) -> None:  # type: ignore[no-untyped-def]
    planned = threading.Event()
    looked = threading.Event()

    def planner(turn: Turn) -> Reply:
        if turn.turn == 0:
            planned.set()
            looked.wait(60)  # the run waits here until the test has looked at it in the web view
            return Reply(content=plan_json([{"id": "t1", "description": "write a.txt", "scope": ["a.txt"]}]))
        return Reply(content=plan_json([], "done"))

    fake = fake_llm(RoleScript({"planner": planner, "worker": worker_steps([("a.txt", "hello\n")])}))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           **run_env(tmp_path, remote({"README.md": "x\n"}), fake, CHECK_COMMANDS="none")}
    proc = subprocess.Popen([sys.executable, "-m", "longshot", "do it", "--web", "--no-dashboard"], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        url = next(m.group(0) for line in proc.stderr if (m := re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)))
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        assert planned.wait(60)
        root = url.split("?")[0]
        assert httpx.get(root, timeout=10).status_code == 401
        with httpx.Client(follow_redirects=True, timeout=10) as c:
            runs = c.get(url).text
            run_id = re.search(r'href="/runs/(run-[^"]+)"', runs)
            assert run_id is not None and "do it" in runs
            page = c.get(f"{root}runs/{run_id.group(1)}").text
        assert "planner thinking" in page and ">running<" in page
        looked.set()
        assert proc.wait(120) == 0
    finally:
        looked.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
