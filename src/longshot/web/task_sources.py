"""A task's conversation (from the request log) and its diff (from git, read-only).

The request log (`longshot.llm.requestlog`) carries each conversation in pieces: a line
holds the messages not logged before (from ``messages_from``) and the answer. They are
put together again here. The diff is read from the run's repository, or from the hub
Longshot keeps of it, with `longshot.git.Git` (hooks, fsmonitor, external diff and
textconv drivers off), so nothing from the repository is executed; only a full commit
id recorded in the events is ever passed to git.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longshot.git import Git, is_sha
from longshot.hub import Hub
from longshot.redaction import Redactor

DIFF_LIMIT = 400_000
"""Characters of a diff shown at most."""


@dataclass
class LoggedConversation:
    """One role's conversation about a task as the request log recorded it (not the live
    `longshot.pipeline.converse.Conversation`)."""

    role: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0


def conversations(path: Path, task_id: str, redact: Redactor) -> list[LoggedConversation]:
    """Every conversation about ``task_id`` in the request log (a worker's, a subplanner's), put together."""
    if not path.is_file():
        return []
    found: dict[str, LoggedConversation] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if f'"{task_id}"' not in line:
                continue
            try:
                record = json.loads(redact(line))
            except json.JSONDecodeError:
                continue
            if record.get("task_id") != task_id:
                continue
            conv = found.setdefault(str(record.get("role")), LoggedConversation(str(record.get("role"))))
            conv.requests += 1
            start = int(record.get("messages_from") or 0)
            conv.messages = conv.messages[:start] + list(record.get("messages") or [])
            if record.get("response"):
                conv.messages.append(record["response"])
            if record.get("error"):
                conv.errors.append(str(record["error"]))
    return list(found.values())


def repositories(repo: str, work_dir: Path | None) -> list[Path]:
    """Where a run's commits can be read: the target repository when it is a local path, and its hub."""
    found = []
    local = Path(repo.removeprefix("file://")) if repo else None
    if local is not None and local.is_absolute() and local.is_dir():
        found.append(local)
    if work_dir is not None and repo:
        hub = Hub.location(work_dir.resolve(), repo)
        if hub.is_dir():
            found.append(hub)
    return found


async def diff(commit: str, places: list[Path], redact: Redactor) -> tuple[str, str]:
    """(where it was read, the commit's diff against its parent), or ("", why not)."""
    if not is_sha(commit):
        return "", "no commit recorded for this task"
    for place in places:
        git = Git(place)
        code, out, _ = await git.run_full("show", "--no-ext-diff", "--no-textconv", "--no-color",
                                          "--format=commit %H%nAuthor: %an%nDate: %aI%n%n%B", "--stat", "--patch",
                                          commit)
        if code == 0:
            if len(out) > DIFF_LIMIT:
                out = out[:DIFF_LIMIT] + f"\n… cut at {DIFF_LIMIT:,} characters"
            return str(place), redact(out)
    where = ", ".join(map(str, places)) or "no local copy of the run's repository"
    return "", f"commit {commit[:12]} is not readable here ({where})"
