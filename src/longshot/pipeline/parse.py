"""Turning a planner's answer into validated tasks.

`parse_plan` is tolerant of how models actually answer: code fences, prose around the
object, a bare array of tasks. What it cannot use raises `PlanParseError` with a message
meant for the model. `TaskValidator` then checks each task on its own terms (branch
inside the worker namespace and legal, scope inside the repository, known dependencies)
and explains every rejection.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, Field, ValidationError

from longshot.caps import PLAN_TASKS, SCRATCHPAD, cut
from longshot.errors import PlanParseError
from longshot.git import legal_branch_name
from longshot.pipeline.outcomes import REFUSAL
from longshot.types import RawTask, Task, TaskStatus

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


@dataclass
class PlanAnswer:
    scratchpad: str
    tasks: list[RawTask]


def _candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    stripped = text.strip()
    found.append(stripped)
    for opener in ("{", "["):
        start = stripped.find(opener)
        if start > 0:
            found.append(stripped[start:])
    return found


def _decode(text: str) -> object:
    decoder = json.JSONDecoder()
    errors: list[tuple[str, str]] = []
    for candidate in _candidates(text):
        candidate = candidate.strip()
        if not candidate:
            continue
        try:
            value, _ = decoder.raw_decode(candidate)
            return value
        except json.JSONDecodeError as e:
            errors.append((candidate, f"{e.msg} at line {e.lineno} column {e.colno}"))
    raise PlanParseError(
        "your answer is not valid JSON"
        + (f" ({_primary(text, errors)})" if errors else " (it was empty)")
        + '. Answer with one JSON object: {"scratchpad": "...", "tasks": [...]}'
    )


def _primary(text: str, errors: list[tuple[str, str]]) -> str:
    """The error to show: from a fenced block if any, else from the whole answer."""
    fenced = [e for c, e in errors if c != text.strip() and not text.strip().endswith(c)]
    whole = [e for c, e in errors if c == text.strip()]
    return (fenced or whole or [errors[0][1]])[0]


def parse_plan(text: str | None) -> PlanAnswer:
    """Parse a planner answer; raise PlanParseError with a message for the model."""
    value = _decode(text or "")
    if isinstance(value, list):
        value = {"scratchpad": "", "tasks": value}
    if not isinstance(value, dict):
        raise PlanParseError('the JSON must be an object with a "tasks" list')
    tasks = value.get("tasks")
    if not isinstance(tasks, list):
        raise PlanParseError('the object has no "tasks" list; use "tasks": [] when nothing is left to do')
    raws: list[RawTask] = []
    problems: list[str] = []
    for i, item in enumerate(tasks[:PLAN_TASKS]):
        try:
            raws.append(RawTask.model_validate(item))
        except ValidationError as e:
            first = e.errors()[0]
            problems.append(f"tasks[{i}].{'.'.join(map(str, first['loc']))}: {first['msg']}")
    if problems and not raws:
        raise PlanParseError("no usable task: " + "; ".join(problems[:5]))
    scratchpad = value.get("scratchpad", "")
    scratchpad = scratchpad if isinstance(scratchpad, str) else json.dumps(scratchpad)
    return PlanAnswer(scratchpad=cut(scratchpad, SCRATCHPAD), tasks=raws)


_SAFE_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")


def safe_branch_name(name: str) -> bool:
    """Whether a model-given branch name is safe to use anywhere (a shell, a ref, a file name).

    Only letters, digits and ``. _ - /``, each component starting with a letter or digit, at
    most 200 characters; then the rules of git itself (``git check-ref-format --branch``).
    ``$(...)``, ``;``, ``|``, ``&``, ``>``, quotes, spaces, ``..`` and a leading ``-`` all fail.
    """
    if len(name) > 200 or not _SAFE_BRANCH.fullmatch(name) or not legal_branch_name(name):
        return False
    try:
        done = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, timeout=10,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "task"


def safe_scope_path(path: str) -> str | None:
    """The normalised relative path, or None if it is absolute, escapes, or is unusable."""
    if not path or "\x00" in path or path.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", path):
        return None
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    if norm == ".git" or norm.startswith(".git/"):
        return None
    return norm


@dataclass
class Rejection:
    task_id: str | None
    description: str
    reason: str


class NameState(BaseModel):
    """The validator's part of the durable state: ids and branches used, and the id counter."""

    known_ids: list[str] = Field(default_factory=list)
    known_branches: list[str] = Field(default_factory=list)
    id_counter: int = 0


@dataclass
class TaskValidator:
    """Validates raw tasks against the run's rules; remembers ids already used."""

    prefix: str
    main_branch: str
    max_tasks: int = 200
    known_ids: set[str] = field(default_factory=set)
    known_branches: set[str] = field(default_factory=set)
    taken_branches: set[str] = field(default_factory=set)
    """Branches already in the repository from earlier runs: a new task gets a free variant."""
    counter: int = 0
    features: set[str] = field(default_factory=set)
    """Ids of the run's FEATURES.json features: a task naming another feature is rejected."""
    tasks: Mapping[str, Task] = field(default_factory=dict)
    """The run's tasks so far (read only): a task the gate refused for weakening the checks may
    not be planned again unchanged (see `refused_twin`)."""
    notices: list[str] = field(default_factory=list)
    """What was changed in accepted tasks (a replaced branch name), to tell the model; see `take_notices`."""

    def take_notices(self) -> list[str]:
        """The notices since the last call, which are forgotten."""
        taken, self.notices = self.notices, []
        return taken

    def snapshot(self) -> NameState:
        return NameState(known_ids=sorted(self.known_ids), known_branches=sorted(self.known_branches),
                         id_counter=self.counter)

    def restore(self, saved: NameState) -> None:
        """Never reuse an id or branch a recorded run used."""
        self.known_ids.update(saved.known_ids)
        self.known_branches.update(saved.known_branches)
        self.counter = saved.id_counter

    def declare_features(self, ids: Iterable[str]) -> None:
        """The run's FEATURES.json features: from now on a task naming another one is rejected."""
        self.features = set(ids)

    def reserve(self, branches: Collection[str]) -> None:
        """Branches already in the repository that no task of this run owns: new tasks avoid their names."""
        self.taken_branches.update(branches)

    def free_branch(self, branch: str) -> str:
        """``branch``, or ``branch-2``, ``branch-3`` ... when an earlier run left a branch of that name."""
        candidate, n = branch, 1
        while candidate in self.taken_branches or candidate in self.known_branches:
            n += 1
            candidate = f"{branch}-{n}"
        return candidate

    def next_id(self, reserved: Collection[str | None] = ()) -> str:
        """A fresh ``task-NNN`` id, not used before and not ``reserved`` by this batch."""
        while True:
            self.counter += 1
            candidate = f"task-{self.counter:03d}"
            if candidate not in self.known_ids and candidate not in reserved:
                return candidate

    def validate(self, raws: list[RawTask]) -> tuple[list[Task], list[Rejection]]:
        accepted: list[Task] = []
        rejected: list[Rejection] = []
        batch_ids = {r.id for r in raws if r.id}
        for raw in raws:
            reason = self._problem(raw, batch_ids, len(accepted))
            if reason:
                rejected.append(Rejection(raw.id, raw.description[:200], reason))
                continue
            task_id = raw.id or self.next_id(batch_ids)
            branch = f"{self.prefix}{task_id}-{slugify(raw.description)}"
            if raw.branch is not None and not safe_branch_name(raw.branch):
                self.notices.append(f"task {task_id}: branch {raw.branch[:200]!r} was replaced by {branch!r} (a branch "
                                    "name may hold only letters, digits and . _ - /, no '..', and no component "
                                    "starting with '-' or '.')")
            elif raw.branch is not None:
                branch = raw.branch
            scope = [p for p in (safe_scope_path(s) for s in raw.scope) if p]
            if not legal_branch_name(branch):
                rejected.append(Rejection(raw.id, raw.description[:200], f"branch {branch!r} is not a legal name"))
                continue
            if branch in self.known_branches:
                rejected.append(Rejection(raw.id, raw.description[:200], f"branch {branch!r} is already used"))
                continue
            branch = self.free_branch(branch)
            self.known_ids.add(task_id)
            self.known_branches.add(branch)
            accepted.append(Task(id=task_id, description=raw.description, scope=scope,
                                 acceptance=raw.acceptance, branch=branch, continue_from=raw.continue_from,
                                 allow_protected=raw.allow_protected, feature=raw.feature, exclusive=raw.exclusive,
                                 replaces=raw.replaces, union_merge=[p for p in map(safe_scope_path, raw.union_merge) if p],
                                 allow_removed_tests=[str(t)[:300] for t in raw.allow_removed_tests[:200]],
                                 priority=raw.priority, depends_on=list(dict.fromkeys(raw.depends_on))))
        return self._drop_unsatisfiable(accepted, rejected)

    def _drop_unsatisfiable(self, accepted: list[Task], rejected: list[Rejection]) -> tuple[list[Task], list[Rejection]]:
        """Reject tasks that depend on a rejected task or sit on a dependency cycle."""
        batch = {t.id: t for t in accepted}
        state: dict[str, str] = {}

        def bad(task_id: str) -> str:
            if task_id not in batch:
                return "" if task_id in self.known_ids else f"depends on rejected task {task_id!r}"
            if state.get(task_id) == "visiting":
                return "dependency cycle"
            if task_id in state:
                return state[task_id] if state[task_id] != "ok" else ""
            state[task_id] = "visiting"
            why = next((w for w in (bad(d) for d in batch[task_id].depends_on) if w), "")
            state[task_id] = why or "ok"
            return why

        keep = []
        for task in accepted:
            why = bad(task.id)
            if why:
                rejected.append(Rejection(task.id, task.description[:200], why))
                self.known_ids.discard(task.id)
            else:
                keep.append(task)
        return keep, rejected

    def _problem(self, raw: RawTask, batch_ids: set[str], accepted: int) -> str:
        if accepted >= self.max_tasks:
            return f"more than {self.max_tasks} tasks in one answer; the rest were dropped"
        if not raw.description.strip() or "\x00" in raw.description:
            return "empty or invalid description"
        if raw.id is not None and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", raw.id)
                                   or ".." in raw.id or raw.id.endswith((".lock", "."))):
            return f"invalid id {raw.id!r}: use letters, digits, '.', '_' and '-' (at most 64, no '..')"
        if raw.id is not None and raw.id in self.known_ids:
            return f"duplicate task id {raw.id!r}"
        for path in raw.scope:
            if safe_scope_path(path) is None:
                return f"scope path {path!r} is outside the repository"
        if raw.branch is not None and (not raw.branch.startswith(self.prefix)
                                       or raw.branch.removeprefix(self.prefix) in ("", self.main_branch)):
            return f"branch {raw.branch[:200]!r} is not a task branch: task branches are names under {self.prefix!r}"
        if raw.feature is not None and self.features and raw.feature not in self.features:
            return (f"feature {raw.feature[:64]!r} is not in FEATURES.json; name one of "
                    f"{', '.join(sorted(self.features)[:30])}, or leave \"feature\" out")
        if raw.continue_from is not None and raw.continue_from not in self.known_ids:
            return f"continue_from names an unknown task {raw.continue_from!r}"
        if raw.replaces is not None and raw.replaces not in self.known_ids:
            return f"replaces names an unknown task {raw.replaces!r}"
        for dep in raw.depends_on:
            if dep == raw.id:
                return "a task cannot depend on itself"
            if dep not in self.known_ids and dep not in batch_ids:
                return f"depends_on names an unknown task {dep!r}"
        return self.refused_twin(raw)

    def refused_twin(self, raw: RawTask) -> str:
        """Why ``raw`` repeats a task the gate refused for weakening the checks, unchanged and
        without the allowance the refusal named ("" when it does not)."""
        for task in self.tasks.values():
            if (task.status == TaskStatus.FAILED and REFUSAL in task.reason and _same_work(raw, task)
                    and raw.allow_protected <= task.allow_protected
                    and set(raw.allow_removed_tests) <= set(task.allow_removed_tests)):
                return (f"it repeats task {task.id} unchanged, which was {task.reason[:800]}. Plan it again only "
                        f"with the allowance named there, or change what the task does")
        return ""


def _same_work(raw: RawTask, task: Task) -> bool:
    """The same description (up to spacing and case) on the same scope."""
    scope = {p for p in (safe_scope_path(s) for s in raw.scope) if p}
    return _words(raw.description) == _words(task.description) and scope == set(task.scope)


def _words(text: str) -> str:
    return " ".join(text.split()).casefold()
