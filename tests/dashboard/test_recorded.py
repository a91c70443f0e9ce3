"""``longshot replay``, ``watch`` and ``report`` (dashboard/recorded.py) on recorded run logs.

The commands are registered on a fresh typer app (`register`, as the CLI does) and invoked
through typer's CliRunner, which gives them a real stdout and no terminal; ``watch`` never
ends by itself, so it runs as a real subprocess that is terminated once it has printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from longshot.dashboard.recorded import register
from longshot.events import Event, RunStarted, TaskCreated, read_events

from helpers import run_cli

LOG = Path(__file__).resolve().parent / "data" / "demo.ndjson"
EVENTS = list(read_events(LOG))
TASKS = [e.task_id for e in EVENTS if isinstance(e, TaskCreated)]
MARKUP = ("[/", "[bold", "[dim", "[red", "[cyan", "[green", "[yellow")


def cli(*args: str, width: int = 100) -> Result:
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": str(width), "NO_COLOR": "1"})


def copy_log(tmp_path: Path) -> Path:
    return Path(shutil.copy(LOG, tmp_path / "run-20261201T075431Z-e3b0.ndjson"))


def write_log(path: Path, events: list[Event]) -> Path:
    path.write_text("".join(e.model_dump_json() + "\n" for e in events))
    return path


def test_replay_in_plain_lines_names_every_task_and_ends_with_the_summary(tmp_path: Path) -> None:
    done = cli("replay", str(copy_log(tmp_path)), "--speed", "0", "--no-dashboard")

    assert done.exit_code == 0, done.output
    for task in TASKS:
        assert task in done.output, task
    assert "run finished" in done.output and "exit status             0 (green)" in done.output
    assert not any(m in done.output for m in MARKUP), "rich markup printed as text"
    # debug adds every event the plain lines leave out (the model usage, the check plan)
    debug = cli("replay", str(LOG), "--speed", "0", "--no-dashboard", "--debug")
    assert debug.exit_code == 0 and len(debug.output.splitlines()) > len(done.output.splitlines())
    for kind in ('"checks.plan"', '"llm.usage"'):
        assert kind not in done.output and kind in debug.output


def test_replay_json_prints_the_events_and_nothing_else() -> None:
    done = cli("replay", str(LOG), "--speed", "0", "--json")

    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert [json.loads(line)["type"] for line in lines] == [e.type for e in EVENTS]
    assert json.loads(lines[-1])["exit_code"] == 0


def test_replay_json_wins_over_dashboard() -> None:
    done = cli("replay", str(LOG), "--speed", "0", "--json", "--dashboard")

    assert done.exit_code == 0 and all(line.startswith("{") for line in done.output.splitlines())


def test_replay_with_the_dashboard_off_a_terminal_draws_then_prints_the_summary(tmp_path: Path) -> None:
    """Without a terminal on stdin nobody can press q: the replay ends when the log does."""
    done = cli("replay", str(copy_log(tmp_path)), "--speed", "0", "--dashboard", width=140)

    assert done.exit_code == 0, done.output
    assert "run finished" in done.output and "landed commits          9" in done.output


def test_a_snapshot_draws_the_run_at_the_time_asked(tmp_path: Path) -> None:
    log = copy_log(tmp_path)
    end, start = tmp_path / "shots" / "end.svg", tmp_path / "start.svg"

    done = cli("replay", str(log), "--snapshot", str(end))
    assert done.exit_code == 0 and f"wrote {end}" in done.output.replace("\n", "")
    assert cli("replay", str(log), "--snapshot", str(start), "--at", "0").exit_code == 0

    last, first = end.read_text(), start.read_text()
    assert last.startswith("<svg") and "FINISHED" in last.replace("&#160;", " ")
    for task in ("slug", "fix-001"):
        assert task in last
    assert "FINISHED" not in first.replace("&#160;", " ") and "fix-001" not in first
    assert not list(tmp_path.glob("report-*")), "a snapshot writes nothing beside the log"


@pytest.mark.parametrize("make, says", [
    (lambda d: d / "missing.ndjson", "no such run log"),
    (lambda d: d, "is not a file"),
    (lambda d: _file(d / "run-empty.ndjson", ""), "is empty"),
    (lambda d: _file(d / "run-text.ndjson", "hello\n"), "its first line is not a Longshot event"),
    (lambda d: _file(d / "run-other.ndjson", '{"type": "not.ours"}\n'), "its first line is not a Longshot event"),
])
@pytest.mark.parametrize("command", ["replay", "report"])
def test_anything_but_a_run_log_exits_2_naming_it_and_writes_nothing(
        tmp_path: Path, make: object, says: str, command: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    before = sorted(p.name for p in tmp_path.iterdir())

    done = cli(command, str(path), width=300)

    assert done.exit_code == 2
    assert says in done.output and str(path) in done.output and "Fix: give a run log" in done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_report_writes_the_report_beside_the_log_again_and_again(tmp_path: Path) -> None:
    log = copy_log(tmp_path)

    first = cli("report", str(log), width=200)
    folder = tmp_path / "report-20261201T075431Z-e3b0"
    text = (folder / "report.md").read_text()
    second = cli("report", str(log), width=200)

    assert first.exit_code == second.exit_code == 0, first.output
    assert str(folder / "report.md") in first.output and "run finished" in first.output
    assert (folder / "report.md").read_text() == text, "writing a report again gives the same report"
    for chart in ("progress.png", "time_to_land.png", "timeline.png"):
        assert (folder / chart).stat().st_size > 0 and f"({chart})" in text


def test_watch_refuses_a_file_given_as_its_folder(tmp_path: Path) -> None:
    log = copy_log(tmp_path)

    # a subprocess with a timeout: a watch that took the file would follow it forever
    done = run_cli(["watch", "--dir", str(log), "--no-dashboard"], {"COLUMNS": "300"}, cwd=tmp_path, timeout=60)

    assert done.returncode == 2 and done.stdout == ""
    assert f"{log} is not a folder of run logs" in done.stderr and "longshot watch --dir" in done.stderr


def test_watch_json_prints_only_the_events_of_the_newest_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "run-20260101T000000Z-aaaa.ndjson",
              [RunStarted(ts=1, request="older run", repo="x", target_branch="main", max_workers=1)])
    write_log(logs / "run-20260102T000000Z-bbbb.ndjson",
              [RunStarted(ts=5, request="newer run", repo="x", target_branch="main", max_workers=1),
               TaskCreated(ts=6, task_id="t1", description="the newer task", branch="worker/t1")])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "LONGSHOT_LOG_DIR": str(logs)}
    with subprocess.Popen([sys.executable, "-m", "longshot", "watch", "--json"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        killer = threading.Timer(30, proc.kill)  # a watch that never prints must not hang the suite
        killer.start()
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        killer.cancel()
        proc.terminate()
    events = [json.loads(line) for line in lines]
    assert [(e["type"], e.get("request"), e["task_id"]) for e in events] == [
        ("run.started", "newer run", None), ("task.created", None, "t1")]


def test_a_log_cut_mid_run_replays_as_unfinished_with_a_snapshot_that_is_not_finished(tmp_path: Path) -> None:
    cut = tmp_path / "run-cut.ndjson"
    lines = LOG.read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[: len(lines) // 2]) + lines[len(lines) // 2][:40])  # and a torn last line

    plain = cli("replay", str(cut), "--speed", "0", "--no-dashboard", width=200)
    drawn = cli("replay", str(cut), "--speed", "0", "--dashboard", width=200)
    shot = cli("replay", str(cut), "--snapshot", str(tmp_path / "cut.svg"))

    assert plain.exit_code == drawn.exit_code == shot.exit_code == 0, plain.output
    for done in (plain, drawn):
        assert "exit status             unfinished (the log ends before run.finished)" in done.output
        assert "✓ run finished" not in done.output
    assert "FINISHED" not in (tmp_path / "cut.svg").read_text().replace("&#160;", " ")


def test_a_log_whose_run_never_started_prints_its_events_but_no_summary(tmp_path: Path) -> None:
    log = write_log(tmp_path / "run-nostart.ndjson",
                    [TaskCreated(ts=1, task_id="orphan", description="a task of no run", branch="worker/orphan")])

    done = cli("replay", str(log), "--speed", "0", "--no-dashboard")

    assert done.exit_code == 0 and "orphan" in done.output
    assert "exit status" not in done.output and "run summary" not in done.output


def test_a_negative_speed_is_refused_naming_the_option() -> None:
    done = cli("replay", str(LOG), "--speed", "-1")

    assert done.exit_code == 2 and "--speed" in done.output


def test_watch_switches_to_a_newer_run_and_starts_its_figures_afresh(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    write_log(logs / "run-20260101T000000Z-aaaa.ndjson",
              [RunStarted(ts=1, request="first run", repo="x", target_branch="main", max_workers=1)])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    seen: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "longshot", "watch", "--no-dashboard", "--dir", "logs"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        killer = threading.Timer(30, proc.kill)
        killer.start()
        assert proc.stdout is not None
        while not any("longshot first run" in line for line in seen):
            seen.append(proc.stdout.readline())
            assert seen[-1], "".join(seen)
        write_log(logs / "run-20260102T000000Z-bbbb.ndjson",
                  [RunStarted(ts=5, request="second run", repo="x", target_branch="main", max_workers=2)])
        while not any("longshot second run" in line for line in seen):
            seen.append(proc.stdout.readline())
            assert seen[-1], "".join(seen)
        killer.cancel()
        proc.terminate()
    text = "".join(seen)
    assert "waiting for a run log" not in text  # there was one from the start
    assert text.index("following logs/run-20260101T000000Z-aaaa.ndjson") < text.index("longshot first run") \
        < text.index("following logs/run-20260102T000000Z-bbbb.ndjson") < text.index("longshot second run")
