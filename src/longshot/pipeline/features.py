"""The feature ledger: which features are done, and how we know (docs/features.md).

The features are the entries of ``FEATURES.json`` as it was when the run started (work the
run lands cannot rewrite what it is judged against), or, without that file, the root
planner's top-level tasks. Each carries the tasks that worked on it (the planner names a
task's ``feature``; subtasks, continuations and conflict fixes inherit it; a fix task also
serves the features whose tests its failures name), the commits that landed them (the
``Longshot-Task`` trailers on the target branch), the tests that prove it
(`pipeline/proof.py`) and a status:

- ``verified``: its tests exist on the final tree and pass;
- ``failing``: its tests exist and one of them fails;
- ``claimed``: work landed or a worker said complete, but no test proves it;
- ``missing``: nothing landed.

The ledger is judged on a tree (each finalization round and the end) and kept up to date
from events in between (a task naming a feature, a landing). Every change is announced as
a ``feature.status`` event; the ledger is part of the durable run state (`snapshot`).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from longshot.events import Emit, Event, FeatureStatus, HandoffReceived, MergeLanded, TaskCreated
from longshot.pipeline.parse import TaskValidator, safe_scope_path, slugify
from longshot.pipeline.proof import Prover, is_command, is_test_file, mentions, named_in
from longshot.types import CheckResult, FeatureLine, FeatureStatusName, Handoff, Task

Status = FeatureStatusName
STATUSES: tuple[Status, ...] = ("verified", "claimed", "failing", "missing")
NOT_ASKED = {"deferred"}
"""FEATURES.json statuses of features the run is not asked to build (shown, not required)."""


class FeatureSpec(BaseModel):
    """One feature as FEATURES.json declares it."""

    id: str
    name: str = ""
    files: list[str] = Field(default_factory=list)
    """Where it lives (``module``/``files``): the scope of its verification task."""
    tests: list[str] = Field(default_factory=list)
    """Test files it names (``tests``, or named in ``acceptance``)."""
    commands: list[str] = Field(default_factory=list)
    """Commands it names (``tests``/``test_command``, or in ``acceptance``)."""
    asked: bool = True


class FeatureRecord(FeatureLine):
    """A feature's line in the ledger (`longshot status --json` prints these)."""

    id: str


class FeatureState(BaseModel):
    """The ledger in the durable run state."""

    source: Literal["FEATURES.json", "plan"] = "plan"
    specs: list[FeatureSpec] = Field(default_factory=list)
    records: list[FeatureRecord] = Field(default_factory=list)
    judged_at: str = ""
    verifying: list[str] = Field(default_factory=list)
    """Features that got a verification task (one each per run)."""


def parse_features(text: str) -> list[FeatureSpec]:
    """The features of a FEATURES.json text (``{"features": [...]}`` or a bare list); ValueError if unusable."""
    data = json.loads(text)
    items = data.get("features") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError('FEATURES.json has no "features" list')
    specs: list[FeatureSpec] = []
    for i, item in enumerate(items, 1):
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or item.get("title") or item.get("description") or "")[:200]
        feature_id = str(item.get("id") or slugify(name or f"feature-{i}"))[:64]
        if feature_id in {s.id for s in specs}:
            feature_id = f"{feature_id}-{i}"
        tests: list[str] = []
        commands: list[str] = []
        for key in ("tests", "test", "test_command", "command", "verify"):
            for value in _strings(item.get(key)):
                if is_command(value):
                    commands.append(value)
                elif path := safe_scope_path(value):
                    tests.append(path)
        for value in _strings(item.get("acceptance")):
            files, named = named_in(value)
            tests += files
            commands += named
        files = [p for p in (safe_scope_path(v) for k in ("module", "files", "scope") for v in _strings(item.get(k))) if p]
        specs.append(FeatureSpec(id=feature_id, name=name, files=files, tests=list(dict.fromkeys(tests)),
                                 commands=list(dict.fromkeys(commands)),
                                 asked=str(item.get("status") or "").lower() not in NOT_ASKED))
    return specs


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


class FeatureLedger:
    """The run's features, their tasks, commits, tests and statuses (a bus sink for live updates)."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.source: Literal["FEATURES.json", "plan"] = "plan"
        self.specs: dict[str, FeatureSpec] = {}
        self.records: dict[str, FeatureRecord] = {}
        self.judged_at = ""
        self.verifying: list[str] = []
        self._parents: dict[str, str | None] = {}
        self._owner: dict[str, str] = {}  # task id -> the first record listing it (`_feature_of_id`, per event)

    @property
    def declared(self) -> bool:
        """Whether the features come from FEATURES.json (then they decide the exit code)."""
        return self.source == "FEATURES.json"

    def declare(self, specs: list[FeatureSpec]) -> None:
        self.source = "FEATURES.json"
        self.specs = {s.id: s for s in specs}
        for spec in specs:
            self._set(FeatureRecord(id=spec.id, name=spec.name, asked=spec.asked, tests=spec.tests + spec.commands,
                                    evidence="nothing landed for it yet"))

    def snapshot(self) -> FeatureState:
        return FeatureState(source=self.source, specs=list(self.specs.values()),
                            records=list(self.records.values()),  # records are replaced, never changed in place
                            judged_at=self.judged_at, verifying=list(self.verifying))

    def restore(self, state: FeatureState) -> None:
        self.source = state.source
        self.specs = {s.id: s for s in state.specs}
        self.records = {r.id: r.model_copy(deep=True) for r in state.records}
        self._reindex()
        self.judged_at = state.judged_at
        self.verifying = list(state.verifying)
        for record in self.records.values():  # re-announced, as a resumed run re-announces its tasks
            self._announce(record, None)

    # Live updates, from events: cheap, no git; the judgement on a tree is authoritative.
    def __call__(self, event: Event) -> None:
        if isinstance(event, TaskCreated) and event.task_id:
            self._parents[event.task_id] = event.parent
            feature = event.feature or self._root_feature(event.task_id, event.kind, event.parent)
            if feature:
                self._update(feature, tasks=(event.task_id,))
        elif isinstance(event, MergeLanded) and event.task_id:
            feature = self._feature_of_id(event.task_id)
            if feature:
                self._update(feature, commits=(event.commit,))
        elif isinstance(event, HandoffReceived) and event.task_id and event.handoff.status == "complete":
            feature = self._feature_of_id(event.task_id)
            if feature:
                self._update(feature)

    def _root_feature(self, task_id: str, kind: str, parent: str | None) -> str | None:
        if self.declared:
            return None
        if parent is None and kind == "task":
            return task_id
        return self._feature_of_id(parent) if parent else None

    def _feature_of_id(self, task_id: str | None) -> str | None:
        seen: set[str] = set()
        while task_id and task_id not in seen:
            seen.add(task_id)
            if (feature := self._owner.get(task_id)) is not None:
                return feature
            task_id = self._parents.get(task_id)
        return None

    def _reindex(self) -> None:
        self._owner = {}
        for record in self.records.values():
            for task in record.tasks:
                self._owner.setdefault(task, record.id)

    def _update(self, feature: str, *, tasks: tuple[str, ...] = (), commits: tuple[str, ...] = ()) -> None:
        record = self.records.get(feature)
        if record is None and not self.declared:  # a planned item (or a feature the planner named) is one
            record = FeatureRecord(id=feature)
        if record is None:
            return
        new = record.model_copy(update={"tasks": list(dict.fromkeys(record.tasks + list(tasks))),
                                        "commits": list(dict.fromkeys(record.commits + list(commits)))})
        if new.status in ("missing", "claimed") and commits:
            new.status, new.evidence = "claimed", f"landed in {commits[0][:10]}; its tests are judged on the final tree"
        elif new.status == "missing" and not tasks:
            new.status, new.evidence = "claimed", "a worker said complete; its tests are judged on the final tree"
        self._set(new)

    def _set(self, new: FeatureRecord) -> None:
        """Record ``new``; announce it when it is new or anything of it changed."""
        old = self.records.get(new.id)
        self.records[new.id] = new
        for task in new.tasks:
            self._owner.setdefault(task, new.id)
        if old is None or old != new:
            self._announce(new, old.status if old is not None else None)

    def _announce(self, record: FeatureRecord, before: str | None) -> None:
        line = record.model_dump(exclude={"id"}) | {"evidence": record.evidence[:2000]}
        self.emit(FeatureStatus(feature=record.id, before=before, **line))

    def members(self, tasks: list[Task]) -> dict[str, list[str]]:
        """Feature id -> the tasks that worked on it, in plan order."""
        by_id = {t.id: t for t in tasks}
        found: dict[str, list[str]] = {f: [] for f in self.specs}

        def feature_of(task: Task, depth: int = 0) -> str | None:
            if task.feature is not None and (task.feature in self.specs or not self.declared):
                return task.feature
            for up in (task.parent, task.continue_from):
                if up in by_id and depth < 20 and (f := feature_of(by_id[up], depth + 1)):
                    return f
            if not self.declared and task.parent is None and task.continue_from is None and task.kind == "task":
                return task.id
            return None

        for task in tasks:
            feature = feature_of(task)
            if feature is None and task.kind == "fix":
                feature = next((f for f, r in self.records.items()
                                if any(mentions(sig, t) for sig in task.fixes for t in r.tests if is_test_file(t))), None)
            if feature is not None:
                found.setdefault(feature, []).append(task.id)
        return found

    async def judge(self, prover: Prover, commit: str, tasks: list[Task], handoffs: dict[str, Handoff],
                    checks: list[CheckResult]) -> list[FeatureRecord]:
        """Judge every feature on ``commit`` (the final tip), reusing the final ``checks``."""
        landed = await prover.landed(commit)
        tree = await prover.tree(commit)
        members = self.members(tasks)
        if not self.declared:  # the planned items as they stand (a continuation is not one)
            self.records = {f: r for f, r in self.records.items() if f in members}
            self._reindex()
        commits_of = {f: [c for t in ids for c in landed.get(t, [])] for f, ids in members.items()}
        changed = await prover.tests_changed([c for cs in commits_of.values() for c in cs])
        for feature, ids in members.items():
            old = self.records.get(feature) or FeatureRecord(id=feature)
            spec = self.specs.get(feature)
            commits = commits_of[feature]
            files = [p for p in (spec.tests if spec else []) if p in tree]
            commands = list(spec.commands) if spec else []
            if not files and not commands:
                files = [p for c in commits for p in changed.get(c, []) if p in tree]
            files = list(dict.fromkeys(files))
            worked = bool(commits) or any(handoffs[t].status == "complete" for t in ids if t in handoffs)
            status: Status
            if files or commands:
                proof = await prover.judge(commit, files, commands, checks, tree)
                evidence = proof.evidence
                status = ("verified" if proof.passed else "failing") if proof.passed is not None \
                    else ("claimed" if worked else "missing")
            else:
                named = (spec.tests + spec.commands) if spec else []
                evidence = (f"its tests {', '.join(named)} do not exist on the final tree" if named
                            else "no test was named or added for it")
                status = "claimed" if worked else "missing"
            if status == "missing":
                evidence = "nothing landed for it; " + evidence
            kinds = {t.id: t.kind for t in tasks}
            evidence += "".join(f"; {t} (verification) ended {handoffs[t].status}: {handoffs[t].summary[:300]}"
                                for t in ids if kinds.get(t) == "verify" and t in handoffs
                                and handoffs[t].status != "complete" and status == "claimed")
            self._set(old.model_copy(update={"status": status, "tasks": ids, "commits": commits,
                                             "tests": files + commands, "evidence": evidence}))
        self.judged_at = commit
        return list(self.records.values())

    def not_verified(self) -> list[FeatureRecord]:
        """Features the run was asked to build that are not verified."""
        return [r for r in self.records.values() if r.asked and r.status != "verified"]

    def verification_tasks(self, validator: TaskValidator, prefix: str) -> list[Task]:
        """One bounded task per claimed feature (once per run): write the missing test, or say why not."""
        made = []
        for record in self.records.values():
            if record.status != "claimed" or not record.asked or record.id in self.verifying or not record.commits:
                continue
            self.verifying.append(record.id)
            spec = self.specs.get(record.id)
            task_id = f"verify-{slugify(record.id, 50)}"
            n = 1
            while task_id in validator.known_ids:
                n += 1
                task_id = f"verify-{slugify(record.id, 50)}-{n}"
            named = (spec.tests + spec.commands) if spec else []
            wanted = f"Write the test named for it ({', '.join(named)})" if named else "Write a test for it"
            branch = validator.free_branch(f"{prefix}{task_id}")
            validator.known_ids.add(task_id)
            validator.known_branches.add(branch)
            made.append(Task(
                id=task_id, kind="verify", priority=1, feature=record.id, branch=branch, atomic=True,
                scope=list(dict.fromkeys((spec.files if spec else []) + (spec.tests if spec else []))),
                description=(f"Feature {record.id}{f' ({record.name})' if record.name else ''} landed in "
                             f"{', '.join(c[:10] for c in record.commits)} (tasks {', '.join(record.tasks)}), but no "
                             f"test proves it: {record.evidence}. {wanted} that exercises its behaviour as SPEC.md "
                             "and FEATURES.json describe it, and make it pass. Change the feature's code only if "
                             "the test shows a real bug. If it cannot be tested, hand off blocked and say exactly why."),
                acceptance=" and ".join(f"`{c}` passes" for c in (spec.commands if spec else []))
                           or "A test of this feature exists and passes with the project's test command."))
        return made

