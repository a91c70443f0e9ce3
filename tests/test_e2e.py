"""End to end through the CLI: the fake model over real HTTP, real git, real checks."""

from __future__ import annotations

import sys
from pathlib import Path

from longshot.events import (
    parse_event, CheckFinished, HandoffReceived, MergeLanded, PlannerAnswered, PlannerRequested, RunFinished, RunStarted,
    SandboxProfile, TaskCreated, TaskStatusChanged,
)
from longshot.testing.fake_script import RoleScript
from longshot.testing.repos import git

from helpers import (
    last_tool_result, plan_json, planner_then_done, run_cli, run_env, run_inprocess, run_log, worker_steps,
)

PY = sys.executable
TARGET = {
    "SPEC.md": "# calc\nA tiny calculator package: add, mul, twice (twice(x) = add(x, x)).\n",
    "pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n",
    "calc/__init__.py": "",
    "tests/test_smoke.py": "def test_smoke():\n    import calc\n",
}


def skeleton_script() -> RoleScript:
    """The walking skeleton: three tasks (one depending on another), each writing code and its test."""
    pytest_cmd = f"{PY} -m pytest -q -p no:cacheprovider"
    tasks = [
        {"id": "t1", "description": "Add calc/add.py with add(a, b) and its test.", "scope": ["calc/add.py"]},
        {"id": "t2", "description": "Add calc/mul.py with mul(a, b) and its test.", "scope": ["calc/mul.py"]},
        {"id": "t3", "description": "Add calc/twice.py using add.", "scope": ["calc/twice.py"], "depends_on": ["t1"]},
    ]
    workers = {
        "t1": worker_steps([("calc/add.py", "def add(a, b):\n    return a + b\n"),
                            ("tests/test_add.py", "from calc.add import add\n\ndef test_add():\n    assert add(2, 3) == 5\n")],
                           f"{pytest_cmd} tests/test_add.py", summary="add works"),
        "t2": worker_steps([("calc/mul.py", "def mul(a, b):\n    return a * b\n"),
                            ("tests/test_mul.py", "from calc.mul import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")],
                           f"{pytest_cmd} tests/test_mul.py", summary="mul works"),
        "t3": worker_steps([("calc/twice.py", "from calc.add import add\n\ndef twice(x):\n    return add(x, x)\n"),
                            ("tests/test_twice.py", "from calc.twice import twice\n\ndef test_twice():\n    assert twice(4) == 8\n")],
                           f"{pytest_cmd} tests/test_twice.py", summary="twice works"),
    }
    return RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers})


def test_three_tasks_land_with_trailers_and_exit_0(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(TARGET)
    fake = fake_llm(skeleton_script())

    done = run_cli(["Build calc according to SPEC.md"], run_env(tmp_path, target, fake), cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.errors == []
    # Workers really ran the target's tests in their sandboxes: t3 sees add() from t1.
    t3_requests = [r for r in fake.requests if r.task_id == "t3"]
    assert "1 passed" in last_tool_result(t3_requests[-1].body["messages"])
    # The target repository's main holds the three task commits, each with its trailer.
    log = git("log", "--format=%H %(trailers:key=Longshot-Task,valueonly,separator=)", "main", cwd=target)
    trailers = [line.split(" ", 1)[1] for line in log.splitlines() if " " in line and line.split(" ", 1)[1]]
    assert sorted(trailers) == ["t1", "t2", "t3"]
    assert trailers.index("t3") < trailers.index("t1")  # t3 landed after t1 (newest first)
    files = git("ls-tree", "-r", "--name-only", "main", cwd=target).splitlines()
    assert {"calc/add.py", "calc/mul.py", "calc/twice.py", "tests/test_twice.py"} <= set(files)

    events = run_log(tmp_path)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert events[-1].exit_code == 0 and events[-1].landed == ["t1", "t2", "t3"]
    kinds = [type(e) for e in events]
    assert kinds.index(PlannerRequested) < kinds.index(PlannerAnswered) < kinds.index(TaskCreated)
    assert any(isinstance(e, CheckFinished) and e.ok for e in events)

    def first(pred) -> int:
        return next(i for i, e in enumerate(events) if pred(e))

    for tid in ("t1", "t2", "t3"):
        created = first(lambda e: isinstance(e, TaskCreated) and e.task_id == tid)
        running = first(lambda e: isinstance(e, TaskStatusChanged) and e.task_id == tid and e.after == "running")
        handoff = first(lambda e: isinstance(e, HandoffReceived) and e.task_id == tid)
        landed = first(lambda e: isinstance(e, MergeLanded) and e.task_id == tid)
        assert created < running < handoff < landed < len(events) - 1
    t1_landed = first(lambda e: isinstance(e, MergeLanded) and e.task_id == "t1")
    t3_running = first(lambda e: isinstance(e, TaskStatusChanged) and e.task_id == "t3" and e.after == "running")
    assert t1_landed < t3_running  # depends_on honoured
    # The API key never reaches the log.
    assert "sk-test" not in (tmp_path / "logs").joinpath(sorted(p.name for p in (tmp_path / "logs").iterdir())[-1]).read_text()


def test_parallelism_is_capped_by_max_workers(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"README.md": "x\n"})
    tasks = [{"id": f"p{i}", "description": f"Write file f{i}.txt", "scope": [f"f{i}.txt"]} for i in range(6)]
    workers = {"*": lambda turn: worker_steps([(f"f{turn.task_id}.txt", "hi\n")], delay=0.4)[min(turn.turn, 1)]}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    done = run_cli(["write six files", "--json"],
                   run_env(tmp_path, target, fake, MAX_WORKERS="3", CHECK_COMMANDS="none"), cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.peak_in_flight("worker") == 3
    # --json: stdout is the event stream and nothing else, the same as the run log.
    streamed = [parse_event(line) for line in done.stdout.splitlines()]
    assert [e.type for e in streamed] == [e.type for e in run_log(tmp_path)]
    assert streamed[-1].type == "run.finished" and streamed[-1].exit_code == 0
    assert len(git("ls-tree", "--name-only", "main", cwd=target).splitlines()) == 7


def test_walking_skeleton_on_ray(tmp_path: Path, fake_llm, remote, ray_cluster) -> None:
    """The same run with SANDBOX_PROVIDER=ray: workers, gate and sweeps in actors of a real local cluster."""
    target = remote(TARGET)
    fake = fake_llm(skeleton_script())

    code = run_inprocess(tmp_path, target, fake, "Build calc according to SPEC.md", SANDBOX_PROVIDER="ray",
                         SANDBOX_CPU_CORES="1", SANDBOX_MEMORY_MB="512")

    assert code == 0
    assert fake.errors == []
    t3_requests = [r for r in fake.requests if r.task_id == "t3"]
    assert "1 passed" in last_tool_result(t3_requests[-1].body["messages"])  # t3 ran t1's code on a Ray node
    log = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=)", "main", cwd=target)
    assert sorted(line for line in log.splitlines() if line) == ["t1", "t2", "t3"]
    events = run_log(tmp_path)
    profile = next(e for e in events if isinstance(e, SandboxProfile))
    assert profile.provider == "ray" and "Ray cluster" in profile.description
    assert events[-1].exit_code == 0 and events[-1].landed == ["t1", "t2", "t3"]
    assert ray_cluster.util.list_named_actors(all_namespaces=True) == []  # every actor ended with its task
