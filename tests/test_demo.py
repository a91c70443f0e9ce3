"""`longshot demo` runs offline, in parallel sprints, through a conflict and a failing check, and ends green."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from longshot.events import ClaimChecked, FeatureStatus, MergeFailed, SweepFinished, TaskCreated, TaskStatusChanged
from longshot.testing.repos import git

from dashboard.report_check import check_report
from helpers import run_cli, run_log

FEATURES = {"slug", "counts", "case", "wrap", "truncate", "stats", "api", "cli"}


def test_demo_ends_green(tmp_path: Path) -> None:
    done = run_cli(["demo", "--keep", str(tmp_path / "demo"), "--pace", "0.5"], {}, cwd=tmp_path, timeout=180)

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    out = done.stdout.replace("\n", "")
    result = tmp_path / "demo" / "wordkit"
    assert f"The result is in {result}" in out
    events = run_log(tmp_path / "demo")
    created = [e for e in events if isinstance(e, TaskCreated)]
    # Parallel sprints: six modules, then the API and the CLI; one conflict and one fix of a failing check.
    [conflict] = [e for e in events if isinstance(e, MergeFailed)]
    assert conflict.task_id in {"truncate", "stats"} and conflict.conflicts == ["wordkit/_words.py"]
    fixes = {e.task_id: e.kind for e in created if e.kind != "task"}
    assert fixes == {f"{conflict.task_id}-conflict-fix": "conflict-fix", "fix-001": "fix"}
    sweeps = [e for e in events if isinstance(e, SweepFinished)]
    assert not sweeps[0].green and sweeps[0].fixes == ["fix-001"] and sweeps[-1].green
    trailers = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=)", cwd=result).split()
    assert sorted(trailers) == sorted(FEATURES - {conflict.task_id} | set(fixes))
    # The result is a working project: its own test suite passes.
    tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."], cwd=result,
                           capture_output=True, text=True)
    assert tests.returncode == 0 and "Ran 28 tests" in tests.stderr, tests.stderr
    # The run's report is where the demo says, and its figures are the event log's.
    [report] = (tmp_path / "demo" / "logs").glob("report-*/report.md")
    assert f"The report is in {report}" in out
    check_report(report, events)
    # `longshot status` reads the run back from the repository alone: every task with its outcome.
    env = {"GIT_REPO_URL": str(tmp_path / "demo" / "wordkit.git"), "LLM_BASE_URL": "http://127.0.0.1:9",
           "LLM_MODEL": "unused"}
    status = run_cli(["status"], env, cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    final = {e.task_id: e.after for e in events if isinstance(e, TaskStatusChanged)}
    listed = dict(re.findall(r"^([\w-]+) +(\w+) +\d+ ", status.stdout, re.MULTILINE))
    assert listed == final and len(listed) == len(created) == 10
    assert "9 landed, 1 superseded" in status.stdout
    # Every task named its feature: the nine features of FEATURES.json end verified by their tests,
    # every worker's complete that named a command held on its branch, and the repository says so.
    ledger = {e.feature: e for e in events if isinstance(e, FeatureStatus)}
    assert sorted(ledger) == [f"F{i}" for i in range(9)]
    assert {e.status for e in ledger.values()} == {"verified"}, {f: e.evidence for f, e in ledger.items()}
    assert ledger["F0"].tasks == ["fix-001"] and ledger["F1"].tests == ["tests/test_slug.py"]
    claims = [e for e in events if isinstance(e, ClaimChecked)]
    assert len(claims) == 9 and all(c.verified for c in claims)
    document = json.loads(run_cli(["status", "--json"], {"GIT_REPO_URL": env["GIT_REPO_URL"]}, cwd=tmp_path).stdout)
    assert {f["id"]: f["status"] for f in document["features"]} == {f: "verified" for f in ledger}
    assert "9 verified" in report.read_text()
