"""The command line a new user meets (issue 18), always through the real CLI in a subprocess:
help everywhere, inputs refused early, the preview (``--plan-only``) and its ``--resume``,
the default spending guard, honest summaries and the result said at the end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from longshot import __version__
from longshot.events import PlanPreview, RunFinished, RunStarted, RunWarning
from longshot.testing.fake_script import Reply, RoleScript
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done, run_cli, run_env, run_log, worker_steps

COMMANDS = ["run", "demo", "status", "replay", "watch", "report", "doctor", "serve"]


def test_help_works_with_h_and_help_everywhere_without_type_noise(tmp_path: Path) -> None:
    top = run_cli(["-h"], {}, tmp_path)
    assert top.returncode == 0 and 'longshot "<request>" --plan-only' in top.stdout and "longshot doctor" in top.stdout
    assert run_cli(["--help"], {}, tmp_path).stdout == top.stdout
    for command in COMMANDS:
        for flag in ("-h", "--help"):
            done = run_cli([command, flag], {}, tmp_path)
            assert done.returncode == 0, (command, flag, done.stderr)
            assert f"longshot {command}" in done.stdout and "<bool>" not in done.stdout and "..." not in done.stdout
    version = run_cli(["--version"], {}, tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"longshot {__version__}"


@pytest.mark.parametrize("request_text", ["", "   ", "\t\n"])
def test_a_blank_request_exits_2_and_starts_nothing(tmp_path: Path, fake_llm, remote, request_text: str) -> None:
    fake = fake_llm(lambda turn: Reply(content="{}"))
    done = run_cli([request_text], run_env(tmp_path, remote(), fake), tmp_path)
    assert done.returncode == 2 and "blank" in done.stderr and "Fix:" in done.stderr
    assert not (tmp_path / "logs").exists() and fake.count() == 0 and fake.probes == []


def test_report_replay_and_watch_refuse_what_is_not_a_run_log_and_write_nothing(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "hostname").write_text("myhost\n")
    (inputs / "empty.ndjson").write_text("")
    (inputs / "data.json").write_text(json.dumps({"type": "not.an.event"}) + "\n")
    (inputs / "folder").mkdir()
    before = sorted(p.name for p in inputs.rglob("*"))
    for name in ("hostname", "empty.ndjson", "data.json", "folder", "missing.ndjson"):
        for command in (["report"], ["replay", "--speed", "0", "--no-dashboard"]):
            done = run_cli([*command[:1], str(inputs / name), *command[1:]], {}, tmp_path)
            assert done.returncode == 2, (command, name, done.stdout)
            assert "Fix:" in done.stderr and str(inputs / name) in done.stderr
    watch = run_cli(["watch", "--dir", str(inputs / "hostname"), "--no-dashboard"], {}, tmp_path)
    assert watch.returncode == 2 and "not a folder of run logs" in watch.stderr
    assert sorted(p.name for p in inputs.rglob("*")) == before  # no report-*/ folder, nothing else


def plan_then_work() -> RoleScript:
    tasks = [{"id": "a", "description": "write a.txt with the letter a", "scope": ["a.txt"]},
             {"id": "b", "description": "write b.txt after a", "scope": ["b.txt"], "depends_on": ["a"]}]
    return RoleScript({"planner": planner_then_done(plan_json(tasks)),
                       "worker": {"a": worker_steps([("a.txt", "a\n")]), "b": worker_steps([("b.txt", "b\n")])}})


def test_plan_only_records_the_plan_without_a_worker_and_resume_runs_it_without_planning_again(
        tmp_path: Path, fake_llm, remote) -> None:
    fake, target = fake_llm(plan_then_work()), remote()
    env = run_env(tmp_path, target, fake, CHECK_COMMANDS="none", MERGE_GATE="off")

    preview = run_cli(["build a and b", "--plan-only"], env, tmp_path)

    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert [r.role for r in fake.requests] == ["planner"]  # no worker request at all
    for shown in ("plan: 2 tasks", "a write a.txt with the letter a", "scope: a.txt", "after: a", "estimate:",
                  "tokens", "cost unknown", "longshot --resume"):
        assert shown in preview.stdout, shown
    plan = next(e for e in run_log(tmp_path) if isinstance(e, PlanPreview))
    assert [t["id"] for t in plan.tasks] == ["a", "b"] and 0 < plan.tokens_low < plan.tokens_high
    assert git("rev-parse", "--verify", "refs/longshot/state/main", cwd=target)  # the plan is recorded
    assert git("rev-parse", "main", cwd=target) == git("rev-parse", "main~0", cwd=target)

    resumed = run_cli(["--resume", "--no-dashboard"], env, tmp_path)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    roles = [r.role for r in fake.requests]
    assert roles[1] == "worker"  # the first request after the preview: no new planner request before dispatch
    assert git("show", "main:b.txt", cwd=target) == "b"


def test_the_default_spending_guard_and_an_unknown_price(tmp_path: Path, fake_llm, remote) -> None:
    target = remote()
    script = RoleScript({"planner": planner_then_done(plan_json([]))})
    fake = fake_llm(script)
    done = run_cli(["nothing to do", "--no-dashboard"], run_env(tmp_path / "a", target, fake, CHECK_COMMANDS="none"),
                   tmp_path)
    started = next(e for e in run_log(tmp_path / "a") if isinstance(e, RunStarted))
    assert started.max_tokens == 20_000_000 and started.max_cost_usd is None
    assert sorted(started.unpriced_models) == ["fake-planner", "fake-reconciler", "fake-subplanner", "fake-worker"]
    warned = [e.message for e in run_log(tmp_path / "a") if isinstance(e, RunWarning) and "no price" in e.message]
    assert warned and "LLM_PRICES_FILE" in warned[0] and "RUN_MAX_TOKENS=20,000,000" in warned[0]
    assert "$0.0000" not in done.stdout and "unknown (no price for fake-" in done.stdout

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({m: [1.0, 2.0] for m in ("fake-worker", "fake-planner", "fake-subplanner",
                                                          "fake-reconciler")}))
    run_cli(["nothing to do", "--no-dashboard"], run_env(tmp_path / "b", target, fake, LLM_PRICES_FILE=str(prices),
                                                             CHECK_COMMANDS="none"),
            tmp_path)
    started = next(e for e in run_log(tmp_path / "b") if isinstance(e, RunStarted))
    assert started.max_cost_usd == 10.0 and started.max_tokens is None and started.unpriced_models == []

    run_cli(["nothing to do", "--no-dashboard"], run_env(tmp_path / "c", target, fake, RUN_MAX_COST_USD="none",
                                                             CHECK_COMMANDS="none"),
            tmp_path)
    started = next(e for e in run_log(tmp_path / "c") if isinstance(e, RunStarted))
    assert started.max_cost_usd is None and started.max_tokens is None


def test_green_only_when_checks_ran_and_a_failure_after_start_says_its_real_exit_status(
        tmp_path: Path, fake_llm, remote) -> None:
    target = remote({"SPEC.md": "spec\n"})
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json([]))}))
    done = run_cli(["nothing", "--no-dashboard"], run_env(tmp_path / "a", target, fake, CHECK_COMMANDS="none"),
                   tmp_path)
    assert done.returncode == 0
    assert re.search(r"exit status +0 \(no checks ran\)", done.stdout) and "(green)" not in done.stdout
    assert not next(e for e in run_log(tmp_path / "a") if isinstance(e, RunFinished)).green

    # A FEATURES.json that does not match its schema is found after the run started (remote target).
    broken = remote({"FEATURES.json": json.dumps({"features": [{"id": "F1"}]})}, name="broken.git")
    done = run_cli(["build", "--no-dashboard"], run_env(tmp_path / "b", broken, fake), tmp_path)
    assert done.returncode == 2 and 'FEATURES.json in' in done.stderr and '"name" is missing' in done.stderr
    assert re.search(r"exit status +2 \(", done.stdout) and "unfinished" not in done.stdout
    assert next(e for e in run_log(tmp_path / "b") if isinstance(e, RunFinished)).exit_code == 2


def failing_run() -> RoleScript:
    tasks = [{"id": "ok", "description": "write ok.txt", "scope": ["ok.txt"]},
             {"id": "bad", "description": failing_run_description(),
              "scope": ["bad.txt"]}]
    return RoleScript({"planner": planner_then_done(plan_json(tasks)),
                       "worker": {"ok": worker_steps([("ok.txt", "ok\n")]),
                                  "bad": lambda turn: worker_steps([], status="failed", summary="cannot")[0]}})


def test_the_report_has_no_markup_no_cut_path_and_says_what_next(tmp_path: Path, fake_llm, remote) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4).rstrip("-") / "logs"
    fake = fake_llm(failing_run())
    env = run_env(tmp_path, remote(), fake, CHECK_COMMANDS="none", LONGSHOT_LOG_DIR=str(deep))

    done = run_cli(["build ok and bad", "--no-dashboard"], env, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr  # a failed task is an outcome, not unlanded work
    report = next(deep.glob("report-*/report.md"))
    text = report.read_text()
    assert not re.search(r"\[/?(cyan|yellow|red|green|bold|dim|magenta|blue)\b[^\]]*\]|\[/\]", text), text
    log = next(deep.glob("run-*.ndjson"))
    assert f"`{log}`" in text  # the whole path, in one piece
    assert "## What next" in text and "`bad` (failed)" in text.split("## What next")[1]
    assert "## Result" in text and "git pull" in text.split("## Result")[1]
    assert any(line.strip() == f"report   {report}" for line in done.stdout.splitlines())  # never wrapped or cut
    cell = [line for line in text.splitlines() if line.startswith("| bad |")][0].split(" | ")[-1].rstrip(" |")
    whole = " ".join(failing_run_description().split())
    assert cell.endswith("…") and (whole + " ").startswith(cell[:-1] + " ")  # cut between words, never inside one


def failing_run_description() -> str:
    return "a task whose worker gives up after trying hard to do something " * 3
