"""T2: random SIGKILLs during a 30-task run with 8 workers; each time the same command is run
again (a plain re-run of the same request resumes); at the end every invariant holds.

Bounded for CI (a few kills); ``LONGSHOT_SOAK_KILLS`` and ``LONGSHOT_SOAK_SEED`` make a
longer soak or replay a failing seed, which every assertion message prints.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn

from helpers import plan_json, planner_then_done, run_env
from invariants import keep_reflog, landings, leftovers, moved_forward_only, sound

TASKS = [{"id": f"s{i:02d}", "description": f"write s{i:02d}.txt", "scope": [f"s{i:02d}.txt"]} for i in range(30)]


def worker(turn: Turn) -> Reply:
    task = turn.task_id or ""
    steps = [Reply(tool_calls=[ToolCallSpec("write", {"path": f"{task}.txt", "content": f"{task}\n"})], delay=0.2),
             Reply(tool_calls=[ToolCallSpec("handoff", {"status": "complete", "summary": "done"})], delay=0.2)]
    return steps[min(turn.turn, 1)]


def test_t2_random_kills_then_resume_until_done_keep_every_invariant(tmp_path: Path, fake_llm, remote) -> None:
    seed = int(os.environ.get("LONGSHOT_SOAK_SEED", "20261201"))
    kills = int(os.environ.get("LONGSHOT_SOAK_KILLS", "4"))
    rng = random.Random(seed)
    replay = f"(replay with LONGSHOT_SOAK_SEED={seed} LONGSHOT_SOAK_KILLS={kills})"
    target = remote({"README.md": "soak\n"})
    keep_reflog(target)
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(TASKS)), "worker": worker}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           **run_env(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS="8")}
    killed = 0
    for attempt in range(kills + 5):
        proc = subprocess.Popen([sys.executable, "-m", "longshot", "build it"], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if killed < kills:
            try:
                proc.wait(timeout=rng.uniform(0.5, 5.0))
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL, at a random moment
                killed += 1
        out, _ = proc.communicate(timeout=180)
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, f"run {attempt} exited {proc.returncode} {replay}:\n{out[-3000:]}"
    else:
        raise AssertionError(f"the run never finished {replay}")

    assert dict(landings(target)) == {t["id"]: 1 for t in TASKS}, replay  # every task, exactly once
    assert moved_forward_only(target) == [], replay
    assert sound(target) == [] and sound(next((tmp_path / "work").glob("hub-*[!k]"))) == [], replay
    assert leftovers(tmp_path / "work") == [], replay
    print(f"T2: {killed} kills {replay}")
