"""What the end of a run says besides its figures: where the result is, whether the user's
branch moved, the one command that takes it, and what to do about every task that did not land.

Used by the terminal summary (printed as whole lines: a path or a command is never broken
or cut) and by the report's "Result" and "What next" sections. Plain text, no markup.
"""

from __future__ import annotations

from pathlib import Path

from longshot.dashboard.board import Board, TaskRow

NOT_LANDED = {"failed": "it failed", "blocked": "it was blocked", "partial": "it finished only in part",
              "cancelled": "it was cancelled before it ran", "completed": "its work did not land",
              "pending": "it never started", "running": "it was still running", "merging": "it was still merging"}


def result_lines(state: Board, report: Path | None = None) -> list[tuple[str, str]]:
    """(label, text) rows: the result, the branch, the command that takes it, the report and log."""
    rows: list[tuple[str, str]] = []
    r = state.result
    if r is not None:
        rows.append(("result", f"{r.ref} in {r.repo} (commit {r.commit[:10]})"))
        rows.append(("branch", (f"{r.branch} moved to the result" if r.moved else f"{r.branch} did not move")
                     + (f": {r.note}" if r.note else "")))
        if r.command:
            rows.append(("take it", r.command))
    elif state.plan is not None:
        rows.append(("next", "longshot --resume   (runs the recorded plan without planning again)"))
    elif state.finished is not None and state.finished.exit_code not in (0, 130):
        rows.append(("result", "none: the run stopped before it ended (see the reason above)"))
    if report is not None:
        rows.append(("report", str(report)))
    if state.log_path:
        rows.append(("log", state.log_path))
    return rows


def what_next(state: Board) -> list[str]:
    """One line per task that did not land (or a run that did not finish): what it means, what to do."""
    lines: list[str] = []
    unlanded = set(state.finished.unlanded) if state.finished else set()
    for t in state.tasks.values():
        if t.status in ("landed", "unchanged", "superseded", "decomposed") and t.id not in unlanded:
            continue
        if t.status == "completed" and t.id not in unlanded:
            continue
        lines.append(f"`{t.id}` ({t.status}): {NOT_LANDED.get(t.status, 'it did not land')}"
                     + (f" - {t.reason}" if t.reason else "") + f". {_advice(t)}")
    fin = state.finished
    if fin is None:
        lines.append("The run did not finish (the log ends early): `longshot --resume` continues it.")
    elif fin.exit_code == 130:
        lines.append("The run was interrupted: `longshot --resume` continues it where it stopped.")
    elif state.plan is not None:
        lines.append("The plan is recorded and no worker ran: `longshot --resume` runs it.")
    elif fin.exit_code != 0 and not lines:
        lines.append("Read the verdict above; fix what it names, then run again (`longshot --resume` keeps what landed).")
    return lines


def _advice(t: TaskRow) -> str:
    branch = f" Its work is on its branch (task `{t.id}`); `longshot status` shows it." if t.status == "partial" else ""
    if t.status in ("failed", "blocked"):
        return ("Read its reason; if the task was wrong, say so in the next request; if the environment was, fix it "
                "and run `longshot --resume`.")
    if t.status in ("pending", "running", "merging", "cancelled"):
        return "`longshot --resume` runs it (raise the budget first if the budget was spent)."
    return "`longshot --resume` retries landing it." + branch
