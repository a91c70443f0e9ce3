"""The root planner: one continuous conversation with the planner role.

The first message carries the request, SPEC.md, FEATURES.json, the file tree and recent
commits of the target branch; follow-ups carry only what changed (handoffs, notes on
rejected tasks and failed merges, active tasks, the file tree delta). An answer that is
not usable JSON is answered with the parse error, and the model tries again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from longshot.errors import PlanParseError
from longshot.events import Emit, PlannerAnswered, PlannerParseError, PlannerRequested, TaskRejected
from longshot.hub import Hub
from longshot.llm.base import ChatModel, Message
from longshot.pipeline.parse import TaskValidator, parse_plan
from longshot.prompts import Prompts
from longshot.types import Task

SPEC_LIMIT = 20_000
TREE_LIMIT = 300
DELTA_LIMIT = 50


@dataclass
class PlanOutcome:
    tasks: list[Task]
    proposed: int
    """How many tasks the model proposed (0 means "nothing more to do")."""


@dataclass
class Planner:
    model: ChatModel
    prompts: Prompts
    validator: TaskValidator
    hub: Hub
    emit: Emit
    max_parse_retries: int = 3
    iteration: int = 0
    scratchpad: str = ""
    messages: list[Message] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _files: list[str] = field(default_factory=list)

    async def initial(self, request: str) -> PlanOutcome:
        tip = await self.hub.tip()
        self._files = await self.hub.files(tip)
        tree = "\n".join(self._files[:TREE_LIMIT])
        if len(self._files) > TREE_LIMIT:
            tree += f"\n... ({len(self._files) - TREE_LIMIT} more files)"
        commits = await self.hub.git.run("log", "-n", "20", "--format=%h %s", tip)
        content = self.prompts.render(
            "planner_initial", request=request, tree=tree, file_count=len(self._files), commits=commits,
            spec=_cap(await self.hub.show(tip, "SPEC.md")), features=_cap(await self.hub.show(tip, "FEATURES.json")),
        )
        self.messages = [{"role": "system", "content": self.prompts.render("planner")}]
        return await self._ask(content, handoffs=0)

    async def follow_up(self, handoffs: list[dict[str, Any]], active: list[Task]) -> PlanOutcome:
        files = await self.hub.files(await self.hub.tip())
        before, after = set(self._files), set(files)
        self._files = files
        added, removed = sorted(after - before), sorted(before - after)
        delta = "\n".join([f"+ {p}" for p in added[:DELTA_LIMIT]] + [f"- {p}" for p in removed[:DELTA_LIMIT]])
        if len(added) + len(removed) > 2 * DELTA_LIMIT:
            delta += f"\n... ({len(added)} added, {len(removed)} removed in all)"
        notes, self.notes = self.notes, []
        content = self.prompts.render("planner_followup", handoffs=handoffs, active=active, tree_delta=delta)
        if notes:
            content += "\n## Notes\n" + "\n".join(f"- {n}" for n in notes) + "\n"
        return await self._ask(content, handoffs=len(handoffs))

    async def _ask(self, content: str, *, handoffs: int) -> PlanOutcome:
        self.iteration += 1
        self.emit(PlannerRequested(iteration=self.iteration, handoffs=handoffs))
        self.messages.append({"role": "user", "content": content})
        last_error = ""
        for _ in range(self.max_parse_retries + 1):
            completion = await self.model.complete("planner", self.messages)
            self.messages.append(completion.as_message())
            try:
                answer = parse_plan(completion.content)
            except PlanParseError as e:
                last_error = str(e)
                self.emit(PlannerParseError(iteration=self.iteration, error=last_error))
                self.messages.append({"role": "user", "content": f"Your answer could not be used: {e}"})
                continue
            tasks, rejected = self.validator.validate(answer.tasks)
            for r in rejected:
                self.emit(TaskRejected(task_id=r.task_id, reason=r.reason, description=r.description))
                self.notes.append(f"task {r.task_id or '(no id)'} was rejected: {r.reason}")
            self.scratchpad = answer.scratchpad or self.scratchpad
            self.emit(PlannerAnswered(iteration=self.iteration, tasks=len(tasks), scratchpad=answer.scratchpad[:2000]))
            return PlanOutcome(tasks=tasks, proposed=len(answer.tasks))
        raise PlanParseError(f"the planner gave no usable answer in {self.max_parse_retries + 1} tries: {last_error}")


def _cap(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= SPEC_LIMIT else text[:SPEC_LIMIT] + "\n... (truncated)"
