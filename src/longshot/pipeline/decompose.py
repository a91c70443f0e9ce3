"""Subplanners: split a broad task into subtasks, in code-enforced bounds.

A task goes to a subplanner when its scope is broader than ``max_files`` files or
``max_modules`` top-level modules, unless it is at ``max_depth`` or a subplanner already
called it atomic. The subplanner's first answer ``"tasks": []`` means "atomic: send it to a
worker". Otherwise its subtasks (ids ``<parent>-sub-N``, allocated here) must keep their
scope inside the parent's, at most ``max_batch`` per answer. Siblings sharing a file are
never run at the same time (the scheduler holds them). When all children have ended, the
subplanner sees their handoffs and may add more; the parent's own handoff aggregates its
children's, and it never has a branch of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from longshot.events import Emit, TaskRejected
from longshot.hub import Hub
from longshot.pipeline.converse import Conversation
from longshot.pipeline.parse import PlanAnswer, TaskValidator, safe_scope_path
from longshot.prompts import Prompts
from longshot.types import Handoff, HandoffMetrics, Task


@dataclass(frozen=True)
class SplitRules:
    max_files: int = 5
    max_modules: int = 2
    max_depth: int = 3
    max_batch: int = 10


def needs_split(task: Task, rules: SplitRules) -> bool:
    if task.atomic or task.depth >= rules.max_depth:
        return False
    modules = {p.split("/", 1)[0] if "/" in p else "." for p in task.scope}
    return len(task.scope) > rules.max_files or len(modules) > rules.max_modules


def inside(path: str, scope: list[str]) -> bool:
    return any(path == s or path.startswith(s.rstrip("/") + "/") for s in scope)


@dataclass
class Subplanner:
    """One parent task's subplanner conversation."""

    parent: Task
    conversation: Conversation
    prompts: Prompts
    hub: Hub
    validator: TaskValidator
    emit: Emit
    rules: SplitRules
    made: int = 0
    _ids: dict[str, str] = field(default_factory=dict)
    iteration: int = 0

    async def first(self) -> list[Task]:
        """Subtasks of the first answer; [] means the parent is atomic."""
        files = [f for f in await self.hub.files(await self.hub.tip()) if inside(f, self.parent.scope)]
        content = self.prompts.render("subplanner_task", task=self.parent, files="\n".join(files[:300]))
        return await self._ask(content)

    async def again(self, handoffs: list[dict[str, Any]]) -> list[Task]:
        return await self._ask(self.prompts.render("subplanner_followup", handoffs=handoffs))

    async def _ask(self, content: str) -> list[Task]:
        self.iteration += 1
        answer = await self.conversation.ask(content, self.iteration)
        return self._subtasks(answer)

    def _subtasks(self, answer: PlanAnswer) -> list[Task]:
        parent = self.parent
        accepted: list[Task] = []
        for raw in answer.tasks:
            problem = ""
            if len(accepted) >= self.rules.max_batch:
                problem = f"more than {self.rules.max_batch} subtasks in one answer"
            scope = [safe_scope_path(p) for p in raw.scope]
            if not problem and (not scope or any(p is None or not inside(p, parent.scope) for p in scope)):
                problem = f"subtask scope {raw.scope} is not inside the parent's scope {parent.scope}"
            if problem:
                self.emit(TaskRejected(task_id=raw.id, reason=problem, description=raw.description[:200]))
                continue
            self.made += 1
            sub_id = f"{parent.id}-sub-{self.made}"
            if raw.id:
                self._ids[raw.id] = sub_id
            raw = raw.model_copy(update={"id": sub_id, "branch": None, "continue_from": None,
                                         "replaces": self._ids.get(raw.replaces, raw.replaces) if raw.replaces else None,
                                         "depends_on": [self._ids.get(d, d) for d in raw.depends_on]})
            tasks, rejected = self.validator.validate([raw])
            for r in rejected:
                self.emit(TaskRejected(task_id=r.task_id, reason=r.reason, description=r.description))
            for t in tasks:
                t.parent, t.depth = parent.id, parent.depth + 1
                t.feature = parent.feature or t.feature  # a subtask serves its parent's feature
                accepted.append(t)
        return accepted


def aggregate(parent: Task, children: list[Task], handoffs: dict[str, Handoff]) -> Handoff:
    """The parent's handoff: its children's, summed up."""
    metrics = HandoffMetrics()
    files: list[str] = []
    concerns: list[str] = []
    suggestions: list[str] = []
    lines = []
    for child in children:
        h = handoffs.get(child.id)
        lines.append(f"{child.id} {child.status}" + (f": {h.summary[:200]}" if h else ""))
        if h is None:
            continue
        files += [f for f in h.files_changed if f not in files]
        concerns += [f"{child.id}: {c}" for c in h.concerns]
        suggestions += [f"{child.id}: {s}" for s in h.suggestions]
        for name, value in h.metrics.model_dump().items():
            setattr(metrics, name, getattr(metrics, name) + value)
    done = all(c.status in ("landed", "unchanged", "superseded", "completed") for c in children)
    return Handoff(task_id=parent.id, status="complete" if done else "partial",
                   summary=f"split into {len(children)} subtasks: " + "; ".join(lines), files_changed=files,
                   concerns=concerns, suggestions=suggestions, metrics=metrics)
