"""What the end of a run tells the user to do next (dashboard/nextsteps.py), from the events of a run.

Each board is folded by the real reducer from the events a run logs; the summary is printed
on a fixed-width console to check that a command or a path is a whole line, never cut.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from longshot.dashboard.board import Board
from longshot.dashboard.nextsteps import NOT_LANDED, result_lines, what_next
from longshot.dashboard.report import markdown, print_summary
from longshot.events import Event, PlanPreview, ResultReady, RunFinished, RunStarted, TaskCreated, TaskStatusChanged

START = RunStarted(ts=0, request="r", repo="/srv/repo", target_branch="main", max_workers=2,
                   log_path="/srv/logs/run-1.ndjson")


def board(*events: Event) -> Board:
    state = Board()
    for event in (START, *events):
        state.apply(event)
    return state


def task(task_id: str, status: str, reason: str = "") -> list[Event]:
    made: list[Event] = [TaskCreated(ts=1, task_id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}")]
    if status != "pending":
        made.append(TaskStatusChanged(ts=2, task_id=task_id, before="pending", after=status, reason=reason))
    return made


def result(moved: bool, command: str = "", note: str = "") -> ResultReady:
    return ResultReady(ts=9, repo="/srv/repo", branch="main", ref="refs/longshot/result", commit="0123456789abcdef",
                       moved=moved, command=command, note=note)


def test_the_result_where_it_is_whether_the_branch_moved_and_the_command_that_takes_it() -> None:
    take = "git -C /srv/repo merge --ff-only refs/longshot/result"
    rows = dict(result_lines(board(result(False, take, "the working copy had changes")), Path("/srv/report.md")))

    assert rows == {"result": "refs/longshot/result in /srv/repo (commit 0123456789)",
                    "branch": "main did not move: the working copy had changes", "take it": take,
                    "report": "/srv/report.md", "log": "/srv/logs/run-1.ndjson"}
    moved = dict(result_lines(board(result(True))))
    assert moved["branch"] == "main moved to the result" and "take it" not in moved and "report" not in moved


@pytest.mark.parametrize("end, expected", [
    (PlanPreview(ts=5), ("next", "longshot --resume   (runs the recorded plan without planning again)")),
    (RunFinished(ts=5, exit_code=3, green=False),
     ("result", "none: the run stopped before it ended (see the reason above)")),
    (RunFinished(ts=5, exit_code=130, green=False), None),
    (RunFinished(ts=5, exit_code=0, green=True), None),
])
def test_without_a_result_the_first_row_says_why(end: Event, expected: tuple[str, str] | None) -> None:
    rows = result_lines(board(end))

    assert rows[:-1] == ([expected] if expected else []) and rows[-1] == ("log", "/srv/logs/run-1.ndjson")


def test_tasks_that_landed_or_need_nothing_are_not_listed() -> None:
    events = [e for s in ("landed", "unchanged", "superseded", "decomposed", "completed") for e in task(s, s)]

    assert what_next(board(*events, RunFinished(ts=9, exit_code=0, green=True))) == []


@pytest.mark.parametrize("status, advice", [
    ("failed", "Read its reason; if the task was wrong"), ("blocked", "Read its reason"),
    ("pending", "`longshot --resume` runs it (raise the budget first"), ("running", "`longshot --resume` runs it"),
    ("merging", "`longshot --resume` runs it"), ("cancelled", "`longshot --resume` runs it"),
    ("partial", "`longshot --resume` retries landing it. Its work is on its branch (task `t`)"),
])
def test_every_task_that_did_not_land_gets_its_meaning_and_what_to_do(status: str, advice: str) -> None:
    lines = what_next(board(*task("t", status, "tests fail"), RunFinished(ts=9, exit_code=1, green=False)))

    reason = "" if status == "pending" else " - tests fail"  # a task never started has no status change
    assert len(lines) == 1
    assert lines[0].startswith(f"`t` ({status}): {NOT_LANDED[status]}{reason}. ")
    assert advice in lines[0]


def test_a_completed_task_the_run_could_not_land_is_listed_and_an_unknown_status_still_reads() -> None:
    end = RunFinished(ts=9, exit_code=1, green=False, unlanded=["done-but-stuck"])
    lines = what_next(board(*task("done-but-stuck", "completed"), *task("odd", "quarantined"), end))

    assert lines == ["`done-but-stuck` (completed): its work did not land. `longshot --resume` retries landing it.",
                     "`odd` (quarantined): it did not land. `longshot --resume` retries landing it."]


@pytest.mark.parametrize("end, last", [
    (None, "The run did not finish (the log ends early): `longshot --resume` continues it."),
    (RunFinished(ts=9, exit_code=130, green=False),
     "The run was interrupted: `longshot --resume` continues it where it stopped."),
    (PlanPreview(ts=8), "The plan is recorded and no worker ran: `longshot --resume` runs it."),
    (RunFinished(ts=9, exit_code=2, green=False), "Read the verdict above; fix what it names, then run again"),
])
def test_how_the_run_ended_adds_its_own_line(end: Event | None, last: str) -> None:
    events = [end] if end is not None else []
    if isinstance(end, PlanPreview):
        events.append(RunFinished(ts=9, exit_code=0, green=True))

    lines = what_next(board(*events))

    assert len(lines) == 1 and lines[0].startswith(last)


def test_a_failed_run_with_listed_tasks_does_not_repeat_the_generic_advice() -> None:
    lines = what_next(board(*task("t", "failed", "boom"), RunFinished(ts=9, exit_code=1, green=False)))

    assert len(lines) == 1 and "Read the verdict" not in lines[0]


def test_the_command_and_the_paths_print_as_whole_lines_on_a_narrow_terminal() -> None:
    take = "git -C /srv/a/very/long/path/to/the/repository fetch . refs/longshot/result:refs/heads/main"
    state = board(result(False, take), RunFinished(ts=9, exit_code=0, green=True))
    out = io.StringIO()

    print_summary(Console(file=out, width=50, color_system=None), state, Path("/srv/logs/report-1/report.md"))

    lines = out.getvalue().splitlines()
    assert f"take it  {take}" in lines and "report   /srv/logs/report-1/report.md" in lines
    assert "log      /srv/logs/run-1.ndjson" in lines


def test_the_reports_what_next_has_one_bullet_per_task_even_for_a_reason_of_many_lines() -> None:
    state = board(*task("a", "failed", "tests fail:\n  test_x | test_y"), *task("b", "partial"),
                  RunFinished(ts=9, exit_code=1, green=False))

    text = markdown(state, [])
    section = text[text.index("## What next"):].split("\n## ")[0].strip().splitlines()[2:]

    assert section == [f"- {line.replace(chr(10), ' ').replace('|', chr(92) + '|')}" for line in what_next(state)]
    assert section[0].startswith("- `a` (failed): it failed - tests fail:   test_x \\| test_y. Read its reason")
    assert section[1].startswith("- `b` (partial): it finished only in part. `longshot --resume` retries landing it.")
