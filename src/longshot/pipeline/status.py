"""``longshot status``: the recorded run of a repository, read from git alone.

The state ref and the target branch are fetched into a throwaway bare repository (never
the hub: a run may be using it right now), so ``status`` works from any machine that can
reach ``GIT_REPO_URL``, and never changes anything. What landed comes from the target
branch's ``Longshot-Task`` trailers, as for a resumed run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from longshot.errors import ConfigError
from longshot.events import FeatureStatus
from longshot.git import Git, trailers
from longshot.pipeline.handoff import TRAILER
from longshot.pipeline.state import STATE_FILE, RunState
from longshot.types import Task, TaskStatus


@dataclass
class RunStatus:
    state: RunState
    tip: str
    tasks: list[Task] = field(default_factory=list)
    """Every task, with landed ones marked landed whatever the record says."""

    def by_status(self) -> dict[str, list[Task]]:
        groups: dict[str, list[Task]] = {}
        for task in self.tasks:
            groups.setdefault(str(task.status), []).append(task)
        return groups


async def read_status(url: str, branch: str, author: tuple[str, str]) -> RunStatus | None:
    """The run recorded for ``branch`` of ``url``; None when none is recorded."""
    with tempfile.TemporaryDirectory(prefix="longshot-status-") as scratch:
        git = Git(Path(scratch), author=author)
        await git.run("init", "--quiet", "--bare")
        code, _, err = await git.run_full("fetch", "--quiet", "--no-tags", url,
                                          f"+refs/heads/{branch}:refs/heads/{branch}")
        if code != 0:
            raise ConfigError(f"GIT_REPO_URL: cannot fetch {branch!r} from {url}: {err.strip()[-300:]}. "
                              "Fix: point GIT_REPO_URL at the repository of the run, or set GIT_MAIN_BRANCH")
        ref = f"refs/longshot/state/{branch}"
        code, _, _ = await git.run_full("fetch", "--quiet", "--no-tags", url, f"+{ref}:{ref}")
        if code != 0:
            return None
        text = (await git.run_full("show", f"{ref}:{STATE_FILE}"))[1]
        try:
            state = RunState.model_validate_json(text)
        except ValidationError:
            return None
        tip = await git.run("rev-parse", f"refs/heads/{branch}")
        rng = f"{state.start_commit}..{tip}" if await git.rev_parse(state.start_commit) else tip
        landed = {value for _, value in await trailers(git, rng, TRAILER)}
    tasks = []
    for task in state.tasks:
        if task.id in landed and task.status != TaskStatus.LANDED:
            task = task.model_copy(update={"status": TaskStatus.LANDED})
        tasks.append(task)
    return RunStatus(state=state, tip=tip, tasks=tasks)


def status_document(found: RunStatus) -> dict[str, Any]:
    """``longshot status --json``: the recorded run, its tasks and its feature ledger."""
    state = found.state
    return {
        "run_id": state.run_id, "request": state.request, "target_branch": state.target_branch,
        "start_commit": state.start_commit, "tip": found.tip, "finished": state.finished,
        "exit_code": state.exit_code, "tokens": state.spent.tokens, "cost_usd": state.spent.cost_usd,
        "features_source": state.features.source,
        "tasks": [{"id": t.id, "status": str(t.status), "kind": t.kind, "feature": t.feature, "parent": t.parent,
                   "attempts": t.attempts, "description": t.description, "reason": t.reason} for t in found.tasks],
        "features": [r.model_dump() for r in state.features.records],
        "claims": {key: {"checked": c.checked, "unverified": c.unverified,
                         "unverified_rate": round(c.unverified / c.checked, 4) if c.checked else None}
                   for key, c in state.claims.counts.items()},
    }


def feature_events(found: RunStatus) -> list[FeatureStatus]:
    """The recorded ledger as the events that announced it (what the status table and report read)."""
    return [FeatureStatus(run_id=found.state.run_id, feature=r.id, **r.model_dump(exclude={"id"}))
            for r in found.state.features.records]
