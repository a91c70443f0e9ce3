"""The feature ledger through the real CLI: the fake model over HTTP, real git, real checks in sandboxes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from longshot.events import ClaimChecked, FeatureStatus, RunFinished, RunWarning, TaskCreated, TaskRejected
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env, run_log, worker_steps

PY = sys.executable
PYTEST = f"{PY} -m pytest -q -p no:cacheprovider"
ADD = ("calc/add.py", "def add(a, b):\n    return a + b\n")
ADD_TEST = ("tests/test_add.py", "from calc.add import add\n\ndef test_add():\n    assert add(2, 3) == 5\n")


def target(remote, features: list[dict[str, object]]) -> Path:
    return remote({"pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n", "calc/__init__.py": "",
                   "tests/test_smoke.py": "def test_smoke():\n    import calc\n",
                   "FEATURES.json": json.dumps({"features": features}, indent=1)})


def task(task_id: str, feature: str, path: str, acceptance: str = "") -> dict[str, object]:
    return {"id": task_id, "feature": feature, "description": f"Implement {path}.", "scope": [path],
            "acceptance": acceptance}


def ledger(events: list) -> dict[str, FeatureStatus]:
    """The last word of the run on each feature."""
    return {e.feature: e for e in events if isinstance(e, FeatureStatus)}


def test_tested_work_is_verified_untested_work_gets_a_verification_task_and_a_missing_feature_fails_the_run(
        tmp_path: Path, fake_llm, remote) -> None:
    repo = target(remote, [{"id": "add", "name": "addition", "tests": "tests/test_add.py"},
                           {"id": "neg", "name": "negation", "module": "calc/neg.py"},
                           {"id": "pow", "name": "power"},
                           {"id": "div", "name": "division", "tests": "tests/test_div.py"}])
    tasks = [task("t-add", "add", "calc/add.py"), task("t-neg", "neg", "calc/neg.py"),
             task("t-pow", "pow", "calc/pow.py"), task("t-x", "nope", "calc/x.py")]
    cannot = Reply(tool_calls=[ToolCallSpec("handoff", {"status": "blocked", "summary": "pow needs a GPU to test"})])
    workers = {
        "t-add": worker_steps([ADD, ADD_TEST]),
        "t-neg": worker_steps([("calc/neg.py", "def neg(a):\n    return -a\n")]),  # no test: a claim
        "t-pow": worker_steps([("calc/pow.py", "def pow(a, b):\n    return a ** b\n")]),
        "verify-pow": lambda turn: cannot,  # reports why not
        "verify-neg": worker_steps([("tests/test_neg.py", "from calc.neg import neg\n\ndef test_neg():\n"
                                                          "    assert neg(2) == -2\n")]),
    }
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))

    done = run_cli(["build calc"], run_env(tmp_path, repo, fake), cwd=tmp_path, timeout=240)

    events = run_log(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert fake.errors == []
    [rejected] = [e for e in events if isinstance(e, TaskRejected)]
    assert rejected.task_id == "t-x" and "'nope' is not in FEATURES.json" in rejected.reason
    # The untested feature was claimed; finalization gave it one verification task, whose test proves it.
    verify = {e.task_id: e for e in events if isinstance(e, TaskCreated) and e.kind == "verify"}
    assert sorted(verify) == ["verify-neg", "verify-pow"] and verify["verify-neg"].feature == "neg"
    assert "no test proves it" in verify["verify-neg"].description
    neg_statuses = [e.status for e in events if isinstance(e, FeatureStatus) and e.feature == "neg"]
    assert "claimed" in neg_statuses and neg_statuses[-1] == "verified"
    final = ledger(events)
    assert {f: e.status for f, e in final.items()} == {"add": "verified", "neg": "verified", "pow": "claimed",
                                                        "div": "missing"}
    assert "verify-pow (verification) ended blocked: pow needs a GPU to test" in final["pow"].evidence
    trailers = dict(line.split(" ", 1) for line in git(
        "log", "--format=%H %(trailers:key=Longshot-Task,valueonly,separator=)", "main", cwd=repo).splitlines()
        if line.strip().count(" "))
    assert final["add"].tasks == ["t-add"] and final["add"].commits == [c for c, t in trailers.items() if t == "t-add"]
    assert final["neg"].tasks == ["t-neg", "verify-neg"] and final["neg"].tests == ["tests/test_neg.py"]
    assert final["add"].tests == ["tests/test_add.py"] and "passed in" in final["add"].evidence
    # The checks are green and everything landed; the run is still not green: div was never built.
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.exit_code == 1
    assert "feature div (division) is missing" in finished.summary
    assert "feature pow (power) is claimed" in finished.summary
    assert "features: 2 verified, 1 claimed, 1 missing" in finished.summary


def test_a_failing_feature_fails_the_run_a_false_complete_is_recorded_and_status_reads_the_ledger_from_git(
        tmp_path: Path, fake_llm, remote) -> None:
    repo = target(remote, [{"id": "add", "name": "addition", "tests": ["tests/test_add.py"]},
                           {"id": "mul", "name": "multiplication", "acceptance": "tests/test_mul.py passes"}])
    tasks = [task("t-add", "add", "calc/add.py", f"`{PYTEST} tests/test_add.py` passes"),
             task("t-mul", "mul", "calc/mul.py", f"`{PYTEST} tests/test_mul.py` passes"),
             task("t-doc", "add", "ADD.md", "`no-such-tool-xyz --check ADD.md` passes")]
    workers = {
        "t-add": worker_steps([ADD, ADD_TEST]),
        # Says complete; its own test fails on its own branch.
        "t-mul": worker_steps([("calc/mul.py", "def mul(a, b):\n    return a + b\n"),
                               ("tests/test_mul.py", "from calc.mul import mul\n\ndef test_mul():\n"
                                                     "    assert mul(2, 3) == 6\n")], summary="mul works"),
        "t-doc": worker_steps([("ADD.md", "add(a, b) adds\n")]),
    }
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))
    env = run_env(tmp_path, repo, fake, MERGE_GATE="off", FINALIZATION_ENABLED="false")

    done = run_cli(["build calc"], env, cwd=tmp_path, timeout=240)

    events = run_log(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    final = ledger(events)
    assert {f: e.status for f, e in final.items()} == {"add": "verified", "mul": "failing"}
    assert "tests/test_mul.py failed" in final["mul"].evidence and "test_mul" in final["mul"].evidence
    assert "feature mul (multiplication) is failing" in events[-1].summary
    assert "feature mul (multiplication) is failing" in done.stdout.replace("\n", " ")
    claims = {e.task_id: e for e in events if isinstance(e, ClaimChecked)}
    assert claims["t-add"].verified and claims["t-add"].exit_code == 0
    false = claims["t-mul"]
    assert not false.verified and false.exit_code != 0 and "1 failed" in false.evidence
    assert false.model == "fake-worker" and false.role == "worker" and false.command.endswith("tests/test_mul.py")
    # A command that cannot run in the sandbox at all says nothing of the work: a warning, not a claim.
    assert "t-doc" not in claims and any(isinstance(e, RunWarning) and e.task_id == "t-doc" and "exit 127" in e.message
                                         for e in events)
    assert final["add"].tasks == ["t-add", "t-doc"]
    # The ledger is in the run state in git: a mirror of the target shows it with only GIT_REPO_URL set.
    mirror = tmp_path / "fresh.git"
    git("clone", "--quiet", "--mirror", str(repo), str(mirror), cwd=tmp_path)
    for url in (repo, mirror):
        status = run_cli(["status", "--json"], {"GIT_REPO_URL": str(url)}, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        document = json.loads(status.stdout)
        assert [{k: f[k] for k in ("id", "status", "tasks", "commits", "tests")} for f in document["features"]] == [
            {"id": e.feature, "status": e.status, "tasks": e.tasks, "commits": e.commits, "tests": e.tests}
            for e in final.values()]
        assert document["claims"] == {"worker/fake-worker": {"checked": 2, "unverified": 1, "unverified_rate": 0.5}}
    table = run_cli(["status"], {"GIT_REPO_URL": str(repo)}, cwd=tmp_path)
    assert re.search(r"^mul +failing +multiplication", table.stdout, re.MULTILINE), table.stdout


def test_resume_keeps_the_ledger(tmp_path: Path, fake_llm, remote) -> None:
    repo = target(remote, [{"id": "add", "name": "addition", "tests": "tests/test_add.py"},
                           {"id": "sub", "name": "subtraction", "tests": "tests/test_sub.py"},
                           {"id": "later", "name": "division", "status": "deferred"}])
    tasks = [task("t-add", "add", "calc/add.py"), {**task("t-sub", "sub", "calc/sub.py"), "depends_on": ["t-add"]}]
    workers = {"t-add": worker_steps([ADD, ADD_TEST]),
               "t-sub": worker_steps([("calc/sub.py", "def sub(a, b):\n    return a - b\n"),
                                      ("tests/test_sub.py", "from calc.sub import sub\n\ndef test_sub():\n"
                                                            "    assert sub(3, 2) == 1\n")])}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": workers}))
    env = run_env(tmp_path, repo, fake)
    crashed = run_cli(["build calc"], {**env, "LONGSHOT_CRASH_AT": "merge.landed:1"}, cwd=tmp_path, timeout=240)
    assert crashed.returncode == -9, crashed.stdout[-3000:]
    recorded = json.loads(run_cli(["status", "--json"], {"GIT_REPO_URL": str(repo)}, cwd=tmp_path).stdout)["features"]
    assert [(f["id"], f["tasks"]) for f in recorded] == [("add", ["t-add"]), ("sub", ["t-sub"]), ("later", [])]
    # Someone edits FEATURES.json meanwhile: the run is judged by the features it started with.
    work = tmp_path / "edit"
    git("clone", "--quiet", str(repo), str(work), cwd=tmp_path)
    (work / "FEATURES.json").write_text(json.dumps({"features": [{"id": "other", "name": "other"}]}))
    git("commit", "--quiet", "-am", "other features", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)

    done = run_cli(["--resume"], env, cwd=tmp_path, timeout=240)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]  # a deferred feature is not asked for
    events = run_log(tmp_path)
    announced = [e for e in events if isinstance(e, FeatureStatus) and e.before is None]
    assert [(e.feature, e.status, e.tasks, e.commits) for e in announced] == [
        (f["id"], f["status"], f["tasks"], f["commits"]) for f in recorded]
    final = ledger(events)
    assert {f: (e.status, e.asked) for f, e in final.items()} == {
        "add": ("verified", True), "sub": ("verified", True), "later": ("missing", False)}
    assert final["add"].tasks == ["t-add"] and final["sub"].tasks == ["t-sub"] and len(final["add"].commits) == 1


def test_without_features_json_the_planned_items_are_the_features_and_subtasks_inherit_theirs(
        tmp_path: Path, fake_llm, remote) -> None:
    repo = remote({"pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n", "calc/__init__.py": "",
                   "tests/test_smoke.py": "def test_smoke():\n    import calc\n"})
    parts = [("calc/add.py", "tests/test_add.py"), ("calc/mul.py", "tests/test_mul.py")]
    tasks = [{"id": "calc", "feature": "arith", "description": "add and mul, with tests",
              "scope": [p for pair in parts for p in pair]},
             {"id": "notes", "description": "write NOTES.md", "scope": ["NOTES.md"]}]
    children = [{"description": f"{code} with its test", "scope": [code, test]} for code, test in parts]
    subplanner = planner_then_done(plan_json(children))
    mul_test = ("tests/test_mul.py", "from calc.mul import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")
    workers = {"calc-sub-1": worker_steps([ADD, ADD_TEST]),
               "calc-sub-2": worker_steps([("calc/mul.py", "def mul(a, b):\n    return a * b\n"), mul_test]),
               "notes": worker_steps([("NOTES.md", "notes\n")])}
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "subplanner": subplanner,
                                "worker": workers}))

    done = run_cli(["build calc"], run_env(tmp_path, repo, fake, SUBPLAN_MAX_FILES="3"), cwd=tmp_path, timeout=240)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]  # the ledger decides nothing here
    events = run_log(tmp_path)
    features = {e.task_id: e.feature for e in events if isinstance(e, TaskCreated)}
    assert features == {"calc": "arith", "notes": None, "calc-sub-1": "arith", "calc-sub-2": "arith"}
    final = ledger(events)
    assert {f: e.status for f, e in final.items()} == {"arith": "verified", "notes": "claimed"}
    # Kept up to date as work landed, before the final judgement.
    arith = [e for e in events if isinstance(e, FeatureStatus) and e.feature == "arith"]
    assert arith[0].before is None and any("landed in" in e.evidence for e in arith if e.status == "claimed")
    assert final["arith"].tasks == ["calc", "calc-sub-1", "calc-sub-2"] and len(final["arith"].commits) == 2
    assert sorted(final["arith"].tests) == ["tests/test_add.py", "tests/test_mul.py"]
    assert not [e for e in events if isinstance(e, TaskCreated) and e.kind == "verify"]
