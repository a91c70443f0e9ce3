"""Building a task's handoff: the worker's words plus figures measured from git.

The worker says status, summary, concerns and suggestions; everything countable (files,
lines, tokens, tool calls, duration) is measured by the orchestrator, never taken from
the model.
"""

from __future__ import annotations

from longshot.git import Git
from longshot.harnesses.base import HarnessResult
from longshot.types import Handoff, HandoffMetrics, Task

TRAILER = "Longshot-Task"
CONTINUES = "Longshot-Continues"
GENERATED = ("node_modules/", "vendor/", "dist/", "build/", ".venv/", "__pycache__/", "third_party/")
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map", ".lock", "package-lock.json", ".pyc", ".snap")
"""Paths whose lines are not counted in a handoff's line figures (generated or vendored)."""


def generated(path: str) -> bool:
    return path.endswith(GENERATED_SUFFIXES) or any(path.startswith(p) or f"/{p}" in path for p in GENERATED)


def commit_message(task: Task, result: HarnessResult) -> str:
    """The task commit's message, ending with the ``Longshot-Task`` trailer."""
    subject = " ".join(task.description.split())[:72] or task.id
    body = result.summary.strip()[:4000].replace("Longshot-", "Longshot -")
    trailers = f"{TRAILER}: {task.id}\n"
    if task.continue_from:
        trailers += f"{CONTINUES}: {task.continue_from}\n"
    return f"{subject}\n\n{body}\n\n{trailers}" if body else f"{subject}\n\n{trailers}"


async def build_handoff(
    git: Git, task: Task, result: HarnessResult, base: str, commit: str | None, duration_ms: int
) -> Handoff:
    metrics = HandoffMetrics(tokens_used=result.tokens_used, tool_calls=result.tool_calls, duration_ms=duration_ms)
    files: list[str] = []
    if commit:
        numstat = await git.run("diff", "--numstat", "--no-renames", base, commit)
        for line in numstat.splitlines():
            added, removed, path = line.split("\t", 2)
            files.append(path)
            if generated(path):
                continue
            metrics.lines_added += int(added) if added.isdigit() else 0
            metrics.lines_removed += int(removed) if removed.isdigit() else 0
        status = await git.run("diff", "--name-status", "--no-renames", base, commit)
        for line in status.splitlines():
            kind = line[:1]
            metrics.files_created += kind == "A"
            metrics.files_modified += kind == "M"
    return Handoff(task_id=task.id, status=result.status, summary=result.summary, files_changed=files,
                   concerns=result.concerns, suggestions=result.suggestions, metrics=metrics, commit=commit)
