"""Building a task's handoff: the worker's words plus figures measured from git.

The worker says status, summary, concerns and suggestions; everything countable (files,
lines, tokens, tool calls, duration) is measured by the orchestrator, never taken from
the model.
"""

from __future__ import annotations

from longshot.git import Git
from longshot.harnesses.base import HarnessResult
from longshot.sandboxes.base import Measured, diff_changes
from longshot.types import Handoff, HandoffMetrics, Task

TRAILER = "Longshot-Task"
CONTINUES = "Longshot-Continues"
STATUS = "Longshot-Status"
"""How the worker ended (complete, partial, blocked, failed; ``interrupted`` when the run stopped it)."""
ATTEMPT = "Longshot-Attempt"
"""Which attempt at the task made the commit: a resumed run adopts a result of the current attempt."""
GENERATED = ("node_modules/", "vendor/", "dist/", "build/", ".venv/", "__pycache__/", "third_party/")
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".lock", "package-lock.json", ".pyc", ".snap")
"""Paths whose lines are not counted in a handoff's line figures (generated or vendored)."""


def generated(path: str) -> bool:
    return path.endswith(GENERATED_SUFFIXES) or any(path.startswith(p) or f"/{p}" in path for p in GENERATED)


def commit_message(task: Task, result: HarnessResult, *, status: str | None = None) -> str:
    """The task commit's message, ending with the ``Longshot-Task`` trailer and how the worker ended."""
    subject = task.title(72)
    body = result.summary.strip()[:4000].replace("Longshot-", "Longshot -")
    trailers = f"{TRAILER}: {task.id}\n"
    if task.continue_from:
        trailers += f"{CONTINUES}: {task.continue_from}\n"
    trailers += f"{STATUS}: {status or result.status}\n{ATTEMPT}: {task.attempts}\n"
    return f"{subject}\n\n{body}\n\n{trailers}" if body else f"{subject}\n\n{trailers}"


async def commit_result(git: Git, commit: str) -> tuple[dict[str, str], HarnessResult | None]:
    """The trailers of a task commit, and the worker's result it records (None if it records none).

    Used when a resumed run finds a worker's commit that the dead run never recorded.
    """
    keys = (TRAILER, STATUS, ATTEMPT)
    fmt = "%B%x00" + "%x00".join(f"%(trailers:key={k},valueonly,separator=%x01)" for k in keys)
    out = await git.run("log", "-1", f"--format={fmt}", commit)
    message, *values = out.split("\0")
    trailers = {k: v.strip().split("\x01")[0] for k, v in zip(keys, values) if v.strip()}
    status = trailers.get(STATUS)
    if status not in ("complete", "partial", "blocked", "failed"):
        return trailers, None
    body = message.split("\n\n", 1)[1] if "\n\n" in message else ""
    summary = "\n".join(line for line in body.splitlines() if not line.startswith("Longshot-")).strip()
    return trailers, HarnessResult(status=status, summary=summary or "(recovered from its commit)")


async def build_handoff(
    git: Git, task: Task, result: HarnessResult, base: str, commit: str | None, duration_ms: int,
    measured: Measured | None = None,
) -> Handoff:
    """The handoff of ``task``, its figures counted from ``base`` to ``commit``: taken from the
    snapshot that made ``commit`` when it measured exactly that (``measured``), else one diff."""
    metrics = HandoffMetrics(tokens_used=result.tokens_used, tool_calls=result.tool_calls, duration_ms=duration_ms)
    files: list[str] = []
    if commit:
        known = measured is not None and (measured.base, measured.commit) == (base, commit)
        changes = measured.files if measured is not None and known else await diff_changes(git, base, commit)
        for change in changes:
            metrics.files_created += change.status == "A"
            metrics.files_modified += change.status == "M"
            files.append(change.path)
            if generated(change.path):
                continue
            metrics.lines_added += change.added or 0
            metrics.lines_removed += change.removed or 0
    return Handoff(task_id=task.id, status=result.status, summary=result.summary, files_changed=files,
                   concerns=result.concerns, suggestions=result.suggestions, metrics=metrics, commit=commit)
