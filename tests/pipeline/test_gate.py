"""The merge gate and conflicts end to end: the target branch only ever holds commits that
passed the checks exactly as they landed (T5, T6, T7, T23)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import threading
import time
from pathlib import Path

from longshot.events import GateResult, MergeFailed, MergeLanded, TaskStatusChanged
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_inprocess, run_log, worker_steps

PY = sys.executable
PYTEST = f"{PY} -m pytest -q -p no:cacheprovider"
CALC = {
    "pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n",
    "calc.py": "def f():\n    return 1\n",
    "tests/test_calc.py": "from calc import f\n\ndef test_f():\n    assert f() == 1\n",
}


def green_history(target: Path, tmp_path: Path) -> list[str]:
    """Every commit of main, checked out and tested; returns those that fail."""
    bad = []
    for sha in git("rev-list", "main", cwd=target).split():
        work = tmp_path / f"walk-{sha[:8]}"
        git("clone", "--quiet", str(target), str(work), cwd=tmp_path)
        git("checkout", "--quiet", sha, cwd=work)
        if (work / "tests").exists():
            done = subprocess.run(PYTEST.split(), cwd=work, capture_output=True)
            if done.returncode not in (0, 5):
                bad.append(sha)
    return bad


def test_t5_semantic_conflict_never_reaches_main(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(CALC)
    rename = [("calc.py", "def g():\n    return 1\n"),
              ("tests/test_calc.py", "from calc import g\n\ndef test_g():\n    assert g() == 1\n")]
    caller = [("use.py", "from calc import f\n\ndef twice():\n    return 2 * f()\n"),
              ("tests/test_use.py", "from use import twice\n\ndef test_twice():\n    assert twice() == 2\n")]
    tasks = [{"id": "rename", "description": "rename f to g", "scope": ["calc.py", "tests/test_calc.py"],
              "allow_removed_tests": ["tests/test_calc.py::test_f"]},  # renamed: test_f no longer runs
             {"id": "caller", "description": "add twice() using f", "scope": ["use.py", "tests/test_use.py"]}]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": {
        "rename": worker_steps(rename, PYTEST), "caller": worker_steps(caller, PYTEST, delay=0.7)}}))

    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS=PYTEST)

    assert code == 1  # the caller's work did not land
    events = run_log(tmp_path)
    failed = [e for e in events if isinstance(e, MergeFailed) and e.task_id == "caller"]
    assert failed and "check failed on the merged tree" in failed[0].reason and "pytest" in failed[0].reason
    assert [e.task_id for e in events if isinstance(e, MergeLanded)] == ["rename"]
    assert green_history(target, tmp_path) == []
    followups = [r.body["messages"][-1]["content"] for r in fake.requests if r.role == "planner"][1:]
    assert any("caller did NOT land: check failed" in f for f in followups)  # the planner can plan the fix


def test_t6_conflict_storm_ends_with_every_task_landed_or_fixed(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"shared.txt": "line\n"})
    n = 4
    tasks = [{"id": f"s{i}", "description": f"set shared.txt to v{i}", "scope": ["shared.txt"]} for i in range(n)]

    def worker(turn: Turn) -> Reply:
        if turn.task_id.endswith("-conflict-fix"):
            steps = worker_steps([("shared.txt", f"resolved by {turn.task_id}\n")])
        else:
            steps = worker_steps([("shared.txt", f"v{turn.task_id}\n")], delay=0.1)
        return steps[min(turn.turn, len(steps) - 1)]

    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": worker}))
    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS="none", MAX_WORKERS=str(n), SCOPE_OVERLAP="allow")

    events = run_log(tmp_path)
    final = {}
    for e in events:
        if isinstance(e, TaskStatusChanged):
            final[e.task_id] = e.after
    originals = {f"s{i}": final[f"s{i}"] for i in range(n)}
    assert set(originals.values()) <= {"landed", "superseded"}, originals
    assert code == 0
    # main only moved forward: each landing commit descends from the previous one.
    landed = [e.commit for e in events if isinstance(e, MergeLanded)]
    for older, newer in zip(landed, landed[1:]):
        assert subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=target).returncode == 0
    assert "<<<<<<<" not in git("show", "main:shared.txt", cwd=target)


def test_t7_external_push_during_the_gate_is_kept_and_the_candidate_rechecked(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(CALC)
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([{"id": "t1", "description": "add h"}])),
                                "worker": {"t1": worker_steps([("h.py", "def h():\n    return 3\n")])}}))
    pushed = threading.Event()

    def push_when_gating() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not pushed.is_set():
            logs = list((tmp_path / "logs").glob("run-*.ndjson"))
            if logs and "handoff.received" in logs[0].read_text():
                time.sleep(0.5)
                clone = tmp_path / "outsider"
                git("clone", "--quiet", str(target), str(clone), cwd=tmp_path)
                (clone / "external.txt").write_text("pushed by someone else\n")
                git("add", "external.txt", cwd=clone)
                git("commit", "--quiet", "-m", "external change", cwd=clone)
                git("push", "--quiet", "origin", "main", cwd=clone)
                pushed.set()
            time.sleep(0.05)

    thread = threading.Thread(target=push_when_gating, daemon=True)
    thread.start()
    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS=f"sleep 2 && {PYTEST}")
    thread.join(5)

    assert pushed.is_set() and code == 0
    files = git("ls-tree", "--name-only", "main", cwd=target).split()
    assert {"external.txt", "h.py"} <= set(files)
    gates = [e for e in run_log(tmp_path) if isinstance(e, GateResult) and e.task_id == "t1"]
    assert len(gates) == 2 and all(g.ok for g in gates)  # re-checked on top of the external commit
    assert gates[0].commit != gates[1].commit


def test_t23_protected_paths_are_refused_unless_allowed(tmp_path: Path, fake_llm, remote) -> None:
    target = remote({**CALC, "tests/test_more.py": "def test_more():\n    assert True\n", "conftest.py": ""})
    tasks = [{"id": "del", "description": "x"}, {"id": "skip", "description": "x"}, {"id": "conf", "description": "x"},
             {"id": "ok", "description": "x", "allow_protected": True}]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": {
        "del": [Reply(tool_calls=[ToolCallSpec("bash", {"command": "rm tests/test_more.py"})]),
                *worker_steps([])],
        "skip": worker_steps([("tests/test_calc.py", "import pytest\n\n@pytest.mark.skip\ndef test_f():\n    pass\n")]),
        "conf": worker_steps([("conftest.py", "collect_ignore = ['tests']\n")]),
        "ok": worker_steps([("pytest.ini", "[pytest]\naddopts = -q\n")]),
    }}))

    assert run_inprocess(tmp_path, target, fake, CHECK_COMMANDS=PYTEST, MAX_WORKERS="1") == 1
    refused = {e.task_id: e.protected for e in run_log(tmp_path) if isinstance(e, MergeFailed)}
    assert refused["del"] == ["tests/test_more.py (deletes a test file)"]
    assert refused["skip"] == ["tests/test_calc.py (skips tests that exist on the base: test_f)"]
    assert refused["conf"] == ["conftest.py (CI or check configuration)"]
    assert "ok" not in refused and "pytest.ini" in git("ls-tree", "--name-only", "main", cwd=target).split()


def test_batches_are_checked_once_and_a_bad_change_is_bisected_out(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(CALC)
    n = 6
    tasks = [{"id": f"b{i}", "description": f"add m{i}.py", "scope": [f"m{i}.py"]} for i in range(n)]
    # b0 finishes first and lands alone; the others, b3 among them, queue up behind its check.
    workers = {f"b{i}": worker_steps([(f"m{i}.py", f"X = {i}\n"),
                                      (f"tests/test_m{i}.py", f"from m{i} import X\n\ndef test_x():\n    assert X == {i}\n")],
                                     delay=0.0 if i == 0 else 0.3)
               for i in range(n)}
    workers["b3"] = worker_steps([("tests/test_m3.py", "def test_broken():\n    assert False\n")], delay=0.3)
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    # Without finalization, which would try b3 once more on the final tip (tested in test_finalize.py).
    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS=f"sleep 1 && {PYTEST}", MAX_WORKERS=str(n),
                         FINALIZATION_ENABLED="false")

    assert code == 1  # b3 does not land
    events = run_log(tmp_path)
    landed = sorted(e.task_id for e in events if isinstance(e, MergeLanded))
    assert landed == ["b0", "b1", "b2", "b4", "b5"]
    refused = [e for e in events if isinstance(e, MergeFailed)]
    assert [e.task_id for e in refused] == ["b3"] and "check failed on the merged tree" in refused[0].reason
    batches = [e for e in events if e.type == "merge.batch"]
    assert any(b.size > 1 and not b.ok and b.depth == 0 and "b3" in b.tasks for b in batches)  # b3 sank a batch
    assert any(b.depth >= 1 and b.ok for b in batches)  # ...which was bisected, the good half landing together
    gate_runs = len([e for e in events if isinstance(e, GateResult)])
    assert gate_runs <= n  # no more verdicts than checking each change alone, even with a bad one
    health = [e for e in events if e.type == "merge.health"][-1]
    assert (health.landed, health.failed, health.queue_depth) == (5, 1, 0)
    assert health.max_bisection_depth >= 1 and health.mean_batch > 1 and health.p95_seconds_to_land >= 1.0
    assert green_history(target, tmp_path) == []


@pytest.mark.parametrize("resolution", ["drops", "keeps"])
def test_a_conflict_resolution_must_keep_both_sides_tests(tmp_path: Path, fake_llm, remote, resolution: str) -> None:
    target = remote({**CALC, "tests/test_extra.py": "def test_base():\n    assert True\n"})
    one = "def test_base():\n    assert True\n\ndef test_one():\n    assert 1\n"
    two = "def test_base():\n    assert True\n\ndef test_two():\n    assert 2\n"
    fixed = {"drops": two, "keeps": one + "\ndef test_two():\n    assert 2\n"}[resolution]
    tasks = [{"id": "one", "description": "add test_one", "scope": ["tests/test_extra.py"]},
             {"id": "two", "description": "add test_two", "scope": ["tests/test_extra.py"]}]
    workers = {"one": worker_steps([("tests/test_extra.py", one)]),  # lands first
               "two": worker_steps([("tests/test_extra.py", two)], delay=0.5),  # conflicts with it
               "two-conflict-fix": worker_steps([("tests/test_extra.py", fixed)])}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    code = run_inprocess(tmp_path, target, fake, CHECK_COMMANDS=PYTEST, SCOPE_OVERLAP="allow", MAX_WORKERS="2")

    failed = {e.task_id: e.reason for e in run_log(tmp_path) if isinstance(e, MergeFailed)}
    final = git("show", "main:tests/test_extra.py", cwd=target)
    assert "merge conflict" in failed["two"]
    if resolution == "drops":
        assert code == 1
        # The tip's test_one is a test of the base now: removing it is refused before the
        # conflict rule (which also covers tests the source side added) is even asked.
        assert "removes tests that exist on the base: test_one" in failed["two-conflict-fix"]
        assert final == one.rstrip("\n")  # the bad resolution never landed (git show drops the last newline)
    else:
        assert code == 0 and "two-conflict-fix" not in failed
        assert "def test_one" in final and "def test_two" in final
