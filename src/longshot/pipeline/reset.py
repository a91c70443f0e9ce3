"""``--reset``: start over, safely.

What it would do is shown first: delete the recorded run state, delete the worker
branches, and rewind the target branch to where the recorded run started. Nothing is
lost: every ref it deletes or rewinds is first copied under
``refs/longshot/backup/<time>/`` in the target repository. Rewinding the target branch is
the one non-fast-forward update Longshot ever makes to it; it happens only with ``--yes``
(a confirmation at the prompt is not enough), and as a compare-and-swap
(``--force-with-lease``), so a commit pushed meanwhile is never thrown away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from longshot.events import Emit, RunWarning
from longshot.hub import Hub
from longshot.pipeline.state import StateStore


@dataclass
class ResetPlan:
    backup: str
    """The namespace the backups go to, e.g. ``refs/longshot/backup/20261201T101500Z``."""
    state: str | None = None
    """The run state commit to delete (None: no state recorded)."""
    branches: list[tuple[str, str]] = field(default_factory=list)
    """(branch, commit) of every worker branch to delete."""
    rewind: tuple[str, str] | None = None
    """(tip, start): the target branch goes back from ``tip`` to ``start``."""
    why_not_rewind: str = ""

    @property
    def empty(self) -> bool:
        return self.state is None and not self.branches and self.rewind is None

    def describe(self, hub: Hub) -> list[str]:
        lines = []
        if self.state:
            lines.append(f"delete the recorded run state (refs/longshot/state/{hub.branch} at {self.state[:10]})")
        for branch, sha in self.branches:
            lines.append(f"delete branch {branch} ({sha[:10]})")
        if self.rewind:
            lines.append(f"rewind {hub.branch} from {self.rewind[0][:10]} to {self.rewind[1][:10]}, where the "
                         "recorded run started (only with --yes)")
        elif self.why_not_rewind:
            lines.append(f"leave {hub.branch} as it is: {self.why_not_rewind}")
        if not self.empty:
            lines.append(f"everything deleted or rewound is first copied under {self.backup}/")
        return lines


async def plan_reset(hub: Hub, store: StateStore) -> ResetPlan:
    plan = ResetPlan(backup=time.strftime("refs/longshot/backup/%Y%m%dT%H%M%SZ", time.gmtime()))
    state = await store.load()
    plan.state = await hub.git.rev_parse(store.ref)
    out = await hub.git.run("for-each-ref", "--format=%(refname:short) %(objectname)", f"refs/heads/{hub.prefix}")
    plan.branches = [tuple(line.split(" ", 1)) for line in out.splitlines()]  # type: ignore[misc]
    tip = await hub.tip()
    if state is None:
        plan.why_not_rewind = "no run is recorded, so there is no known start to go back to"
    elif state.start_commit == tip:
        plan.why_not_rewind = "it is where the recorded run started"
    elif not await hub.git.is_ancestor(state.start_commit, tip):
        plan.why_not_rewind = f"its history no longer contains the recorded start {state.start_commit[:10]}"
    else:
        plan.rewind = (tip, state.start_commit)
    return plan


async def apply_reset(hub: Hub, store: StateStore, plan: ResetPlan, *, rewind: bool) -> list[str]:
    """Back up, then delete and (with ``rewind``) rewind; return what was done, one line each."""
    git = hub.git
    backups = [(plan.state, f"{plan.backup}/state/{hub.branch}")] if plan.state else []
    backups += [(sha, f"{plan.backup}/heads/{branch}") for branch, sha in plan.branches]
    if plan.rewind and rewind:
        backups.append((plan.rewind[0], f"{plan.backup}/heads/{hub.branch}"))
    done: list[str] = []
    if backups:
        for sha, ref in backups:
            await git.run("update-ref", ref, sha)
        await git.run("push", "--quiet", "origin", *(f"{ref}:{ref}" for _, ref in backups))
        done.append(f"backed up {len(backups)} refs under {plan.backup}/")
    if plan.branches:
        # Only what the target holds is deleted there (a lease on a ref it lacks is refused as
        # stale): a branch whose publish failed, or that someone deleted, is the hub's alone.
        wanted = {hub.remote_branch(b): sha for b, sha in plan.branches}
        listed = await git.run("ls-remote", "origin", *wanted)
        there = [ref for ref in (line.split("\t", 1)[-1] for line in listed.splitlines()) if ref in wanted]
        if there:
            await git.run("push", "--quiet", *(f"--force-with-lease={ref}:{wanted[ref]}" for ref in there), "origin",
                          *(f":{ref}" for ref in there))
        for branch, sha in plan.branches:
            await git.run("update-ref", "-d", f"refs/heads/{branch}", sha)
        done.append(f"deleted {len(plan.branches)} worker branches")
    if plan.state:
        await store.forget()
        done.append("deleted the recorded run state")
    if plan.rewind and rewind:
        tip, start = plan.rewind
        await git.run("push", "--quiet", f"--force-with-lease={hub.published_ref}:{tip}", "origin",
                      f"{start}:{hub.published_ref}")
        await hub.set_tip(start, tip)
        done.append(f"rewound {hub.branch} from {tip[:10]} to {start[:10]} (backup: {plan.backup}/heads/{hub.branch})")
    elif plan.rewind:
        done.append(f"left {hub.branch} at {plan.rewind[0][:10]}: rewinding it needs --yes")
    return done


async def reset(hub: Hub, store: StateStore, *, yes: bool, confirm: Callable[[str], bool] | None,
                show: Callable[[str], None], emit: Emit) -> bool:
    """Show the plan, ask unless ``yes``, apply it. False when nothing was changed because the
    user declined (or could not be asked)."""
    plan = await plan_reset(hub, store)
    if plan.empty:
        show("--reset: nothing to reset (no recorded run, no worker branches)")
        return True
    show("\n".join(["--reset would:", *(f"  - {line}" for line in plan.describe(hub))]))
    if not yes and (confirm is None or not confirm("Delete these (backups are kept)?")):
        show("--reset: nothing was changed" + ("" if confirm else " (no terminal to ask on; pass --yes)"))
        return False
    for line in await apply_reset(hub, store, plan, rewind=yes):
        emit(RunWarning(code="reset.note", message=f"reset: {line}"))
    return True
