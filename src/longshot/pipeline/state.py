"""Durable run state in git, so a run resumes from the repository alone (DESIGN §3.5).

The state of a run (the request, the plan and every task with its status and attempts,
handoffs, the planner's scratchpad and summary, the reconciler's claims, what was spent) is
one JSON document, committed to ``refs/longshot/state/<target branch>``: each write is one
new commit whose parent is the previous state, and one compare-and-swap of that ref.
Writes are batched (`StateStore.mark` asks for one within ``interval`` seconds) except
where losing the last change would cost model work (`StateStore.flush`).

The ref is published to the target repository together with the worker branches finished
since the last write, in one push, so a fresh clone on another machine can resume.
Landed work is never taken from this document: the target branch's ``Longshot-Task``
trailers say what landed, so the two cannot disagree.
"""

from __future__ import annotations

import asyncio
import socket
import os
import time
from collections.abc import Callable

from pydantic import BaseModel, Field, ValidationError

from longshot.crash import CrashPoints
from longshot.errors import ConfigError, GitError
from longshot.events import Emit, RunWarning, StateSaved
from longshot.hub import Hub
from longshot.budget import SpentState
from longshot.pipeline.claims import ClaimState
from longshot.pipeline.features import FeatureState
from longshot.pipeline.ledger import LedgerState
from longshot.pipeline.plan import PlannerState
from longshot.pipeline.reconcile import ReconcilerState
from longshot.types import Handoff, Task

STATE_FILE = "state.json"
VERSION = 1


class RunState(BaseModel):
    """Everything a resumed run needs that git does not already say."""

    version: int = VERSION
    run_id: str
    request: str
    target_branch: str
    start_commit: str
    """The target tip when the run began: landed trailers are read from here on."""
    started_at: float = Field(default_factory=time.time)
    owner: str = ""
    """``host:pid`` of the orchestrator that wrote this state."""
    finished: bool = False
    exit_code: int | None = None
    tasks: list[Task] = Field(default_factory=list)
    """Every task, in the order it was planned."""
    handoffs: dict[str, Handoff] = Field(default_factory=dict)
    planner: PlannerState = Field(default_factory=PlannerState)
    ledger: LedgerState = Field(default_factory=LedgerState)
    reconciler: ReconcilerState = Field(default_factory=ReconcilerState)
    spent: SpentState = Field(default_factory=SpentState)
    known_ids: list[str] = Field(default_factory=list)
    known_branches: list[str] = Field(default_factory=list)
    id_counter: int = 0
    features: FeatureState = Field(default_factory=FeatureState)
    """The feature ledger (`pipeline/features.py`): `longshot status --json` reads it from here."""
    claims: ClaimState = Field(default_factory=ClaimState)
    """Workers' completes checked against their acceptance, per role and model (`pipeline/claims.py`)."""


Capture = Callable[[], RunState]
"""The run as it is now, for a write: its fixed fields brought up to date from each part's `snapshot`.
The store serializes what it returns at once, before it awaits anything, so it may hold live parts."""


def owner_tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def decide(stored: RunState | None, request: str | None, *, resume: bool, confirm: Callable[[str], bool] | None,
           where: str) -> bool:
    """Whether a run resumes the recorded one (``where`` names the state ref, for messages).

    ``--resume`` needs an unfinished run; a plain run of the same request resumes it (after
    ``confirm``, when there is someone to ask); a run of another request while one is
    unfinished is refused, naming both ways forward. Raises ConfigError.
    """
    open_run = stored if stored is not None and not stored.finished else None
    if resume:
        if open_run is None:
            raise ConfigError(f"--resume: no unfinished run is recorded in {where}. Fix: start a run with a request")
        if request and request != open_run.request:
            raise ConfigError(f"--resume: the recorded run is of another request ({open_run.request[:100]!r}). "
                              "Fix: run --resume without a request")
        return True
    if not request:
        raise ConfigError('a request is needed. Fix: longshot "<what to build>", or longshot --resume')
    if open_run is None:
        return False
    if request == open_run.request:
        if confirm is None or confirm(f"An unfinished run of this request is recorded ({open_run.run_id}). Resume it?"):
            return True
        raise ConfigError(f"an unfinished run of this request is recorded in {where}. Fix: resume it with --resume, "
                          "or start over with --reset")
    raise ConfigError(f"an unfinished run of another request ({open_run.request[:100]!r}) is recorded in {where}. "
                      "Fix: resume it with --resume, or start over with --reset (it shows what it would delete)")


class StateStore:
    """Reads and writes the run's state ref; publishes it with finished worker branches."""

    def __init__(self, hub: Hub, emit: Emit, crash: CrashPoints, *, interval: float = 0.5) -> None:
        self.hub = hub
        self.emit = emit
        self.crash = crash
        self.interval = interval
        self.ref = f"refs/longshot/state/{hub.branch}"
        self.remote_ref = f"refs/longshot/origin/state/{hub.branch}"
        """Where `Hub.open` fetches the target repository's copy (hub-internal)."""
        self.writes = 0
        self.seconds = 0.0
        """Time spent writing and publishing, for the benchmark."""
        self._head: str | None = None
        self._dirty = asyncio.Event()
        self._reasons: list[str] = []
        self._branches: set[str] = set()
        self._lock = asyncio.Lock()
        self._published: str | None = None
        self._warned = False

    async def load(self) -> RunState | None:
        """The newest state: the hub's own when it descends from the published one, else the published."""
        git = self.hub.git
        local, remote = await git.rev_parse(self.ref), await git.rev_parse(self.remote_ref)
        head = local
        if remote and (local is None or not await git.is_ancestor(remote, local)):
            if local is not None:
                self.emit(RunWarning(code="state.diverged", message=f"the state in the target repository ({remote[:10]}) does not descend "
                                             f"from this machine's ({local[:10]}); using the target repository's"))
            head = remote
        self._head, self._published = local, remote
        if head is None:
            return None
        text = await self.hub.show(head, STATE_FILE)
        try:
            state = RunState.model_validate_json(text or "")
        except ValidationError as e:
            self.emit(RunWarning(code="state.unreadable", message=f"the recorded run state at {head[:10]} cannot be read ({e.error_count()} "
                                         "problems); it is ignored"))
            return None
        if head != local:
            await git.update_ref(self.ref, head, local)
            self._head = head
        return state

    def mark(self, reason: str, branch: str | None = None) -> None:
        """Ask for a write soon (batched); ``branch`` is published with it."""
        self._reasons.append(reason)
        if branch:
            self._branches.add(branch)
        self._dirty.set()

    async def run(self, capture: Capture) -> None:
        """Write marked changes, at most one write per ``interval`` (cancel to stop)."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.interval)
            await self.flush(capture)

    async def flush(self, capture: Capture, reason: str = "") -> str | None:
        """Write the current state (``capture()``, the run's parts as they are now) with
        everything marked so far. What to write is given by the caller: the store is built
        before the run's parts exist (it loads the record they are built from).

        A write, once begun, finishes even when its caller is cancelled (the writer is, at the
        end of every run): cancelled after its ref update but before noting it, a write would
        fail the next one's compare-and-swap, and lose the branches it was to publish.
        """
        if reason:
            self._reasons.append(reason)
        return await asyncio.shield(self._flush(capture))

    async def _flush(self, capture: Capture) -> str | None:
        async with self._lock:
            if not self._reasons:
                return None
            reasons, self._reasons = self._reasons, []
            branches, self._branches = self._branches, set()
            self._dirty.clear()
            started = time.perf_counter()
            try:
                document = capture().model_dump_json().encode()
                reason = _describe(reasons)
                commit = await self._write(document, reason)
                await self._publish(commit, sorted(branches))
            finally:
                self.seconds += time.perf_counter() - started
            self.emit(StateSaved(ref=self.ref, commit=commit, reason=reason,
                                 seconds=round(time.perf_counter() - started, 4), bytes=len(document)))
            return commit

    async def _write(self, document: bytes, reason: str) -> str:
        self.crash.reached("state.before_write")
        git = self.hub.git
        blob = await git.run("hash-object", "-w", "--stdin", stdin=document)
        tree = await git.run("mktree", stdin=f"100644 blob {blob}\t{STATE_FILE}\n".encode())
        parent = self._head
        commit = await git.run("commit-tree", tree, *(["-p", parent] if parent else []),
                               "-m", f"longshot state: {reason}")
        await git.update_ref(self.ref, commit, parent)
        self._head = commit
        self.writes += 1
        self.crash.reached("state.after_write")
        return commit

    async def _publish(self, commit: str, branches: list[str]) -> None:
        """One push: the state ref (a fast-forward of what was published) and new branch tips."""
        specs = [f"{commit}:{self.ref}"] + [f"refs/heads/{b}:{self.hub.remote_branch(b)}" for b in branches]
        code, out, err = await self.hub.git.run_full("push", "--porcelain", "origin", *specs)
        rejected = [line.split("\t")[1].split(":")[-1] for line in out.splitlines()
                    if line.startswith("!") and "\t" in line]
        if code == 0:
            self._published = commit
            await self.hub.git.run("update-ref", self.remote_ref, commit)
            return
        if not self._warned:
            self._warned = True
            what = ", ".join(rejected) or err.strip()[-300:]
            self.emit(RunWarning(code="state.unpublished", message=f"could not publish the run state to the target repository ({what}); "
                                         "it is kept in the hub and published again with the next write"))
        # Branches that were not refused go out with the next write; a refused one (not a
        # fast-forward: someone else moved it) stays in the hub and is not pushed again.
        self._branches |= {b for b in branches if self.hub.remote_branch(b) not in rejected}

    async def forget(self) -> None:
        """Remove the state ref here and in the target repository (``--reset``)."""
        git = self.hub.git
        for ref in (self.ref, self.remote_ref):
            if await git.rev_parse(ref):
                await git.run("update-ref", "-d", ref)
        code, _, err = await git.run_full("push", "--quiet", "origin", f":{self.ref}")
        if code != 0 and "unable to delete" not in err and "does not exist" not in err:
            raise GitError(["push", "origin", f":{self.ref}"], code, err)
        self._head = self._published = None


def _describe(reasons: list[str]) -> str:
    unique = list(dict.fromkeys(r for r in reasons if r))
    text = "; ".join(unique[:5])
    return text + (f" (+{len(unique) - 5} more)" if len(unique) > 5 else "")
