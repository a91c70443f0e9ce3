"""The root planner: one continuous conversation with the planner role.

The first message carries the request, SPEC.md and FEATURES.json (binding), AGENTS.md and
DECISIONS.md if present (each capped), the file tree (capped) and recent commits of the
target branch. Follow-ups carry only what changed: the tree delta, new commits, new
handoffs, notes (rejected tasks, failed merges), active tasks, merge queue health and the
budget left. The model may explore the repository read-only before answering
(`longshot.pipeline.explore`); its scratchpad is kept and survives compaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from longshot.events import Emit, PlannerAnswered, PlannerRequested, RunWarning, TaskRejected
from longshot.hub import Hub
from longshot.pipeline.converse import Conversation
from longshot.pipeline.parse import TaskValidator
from longshot.prompts import Prompts
from longshot.types import Task

SPEC_LIMIT = 20_000
DOC_LIMIT = 10_000
TREE_LIMIT = 5000
"""Paths listed in the first message; beyond that the planner explores with ls and find."""
DELTA_LIMIT = 50
COMMITS_LIMIT = 30


class PlannerState(BaseModel):
    """The planning part of the durable state: the planner's and the main loop's."""

    iteration: int = 0
    scratchpad: str = ""
    summary: str = ""
    notes: list[str] = Field(default_factory=list)
    last_proposed: int = -1
    """Tasks the planner's last answer proposed (0: it said it has nothing more)."""
    last_tip: str = ""
    finalizing: bool = False
    final_rounds: int = 0


@dataclass
class PlanOutcome:
    tasks: list[Task]
    proposed: int
    """How many tasks the model proposed (0 means "nothing more to do")."""


@dataclass
class Progress:
    """What the orchestrator tells the planner besides handoffs."""

    active: list[Task] = field(default_factory=list)
    landed: int = 0
    failed: int = 0
    queue_depth: int = 0
    budget: str = ""
    summary: str = ""
    """A short account of every task so far, kept through compaction."""


@dataclass
class Planner:
    conversation: Conversation
    prompts: Prompts
    validator: TaskValidator
    hub: Hub
    emit: Emit
    iteration: int = 0
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    last_tip: str = ""

    @property
    def scratchpad(self) -> str:
        return self.conversation.scratchpad

    def add_notes(self, notes: list[str]) -> None:
        """Notes from the other stages, shown in the next follow-up prompt."""
        self.notes += notes

    def snapshot(self) -> PlannerState:
        """The planner's side of the durable state (the main loop adds its own flags)."""
        return PlannerState(iteration=self.iteration, scratchpad=self.scratchpad, summary=self.conversation.summary,
                            notes=list(self.notes), last_tip=self.last_tip)

    async def restore(self, saved: PlannerState, tip: str) -> None:
        """Continue from a recorded planner; ``tip`` is the target's tip when none was recorded."""
        self.iteration = saved.iteration
        self.notes += saved.notes
        if saved.iteration:  # else no answer was ever applied: the planner starts over, from the request
            self.conversation.restore(saved.scratchpad, saved.summary)
        self.last_tip = saved.last_tip
        self.files = await self.hub.files(self.last_tip or tip)

    async def initial(self, request: str) -> PlanOutcome:
        tip = self.last_tip = await self.hub.tip()
        self.files = await self.hub.files(tip)
        tree = "\n".join(self.files[:TREE_LIMIT])
        if len(self.files) > TREE_LIMIT:
            tree += f"\n... ({len(self.files) - TREE_LIMIT} more files; use the ls and find tools)"
        commits = await self.hub.git.run("log", "-n", "20", "--format=%h %s", tip)
        docs = {name: _cap(await self.hub.show(tip, name), limit)
                for name, limit in (("SPEC.md", SPEC_LIMIT), ("FEATURES.json", SPEC_LIMIT),
                                    ("AGENTS.md", DOC_LIMIT), ("DECISIONS.md", DOC_LIMIT))}
        content = self.prompts.render(
            "planner_initial", request=request, tree=tree, file_count=len(self.files), commits=commits,
            spec=docs["SPEC.md"], features=docs["FEATURES.json"], agents=docs["AGENTS.md"],
            decisions=docs["DECISIONS.md"],
        )
        return await self._ask(content, handoffs=0)

    async def follow_up(self, handoffs: list[dict[str, Any]], progress: Progress) -> PlanOutcome:
        tip = await self.hub.tip()
        files = await self.hub.files(tip)
        before, after = set(self.files), set(files)
        self.files = files
        added, removed = sorted(after - before), sorted(before - after)
        delta = "\n".join([f"+ {p}" for p in added[:DELTA_LIMIT]] + [f"- {p}" for p in removed[:DELTA_LIMIT]])
        if len(added) + len(removed) > 2 * DELTA_LIMIT:
            delta += f"\n... ({len(added)} added, {len(removed)} removed in all)"
        commits = ""
        if tip != self.last_tip:  # handoffs already tell of Longshot's own commits
            log = await self.hub.git.run("log", "-n", str(COMMITS_LIMIT),
                                         "--format=%h %s%x00%(trailers:key=Longshot-Task,valueonly)",
                                         f"{self.last_tip}..{tip}")
            commits = "\n".join(line.split("\0")[0] for line in log.splitlines()
                                if "\0" in line and not line.split("\0")[1].strip())
        self.last_tip = tip
        notes, self.notes = self.notes, []
        content = self.prompts.render("planner_followup", handoffs=handoffs, active=progress.active,
                                      tree_delta=delta, commits=commits, notes=notes, progress=progress)
        self.conversation.keep_summary(progress.summary)
        return await self._ask(content, handoffs=len(handoffs))

    async def _ask(self, content: str, *, handoffs: int) -> PlanOutcome:
        self.iteration += 1
        self.emit(PlannerRequested(iteration=self.iteration, handoffs=handoffs))
        answer = await self.conversation.ask(content, self.iteration)
        tasks, rejected = self.validator.validate(answer.tasks)
        for r in rejected:
            self.emit(TaskRejected(task_id=r.task_id, reason=r.reason, description=r.description))
            self.notes.append(f"task {r.task_id or '(no id)'} was rejected: {r.reason}")
        for notice in self.validator.take_notices():
            self.emit(RunWarning(code="branch.replaced", message=notice[:300]))
            self.notes.append(notice)
        self.emit(PlannerAnswered(iteration=self.iteration, tasks=len(tasks), scratchpad=answer.scratchpad[:2000]))
        return PlanOutcome(tasks=tasks, proposed=len(answer.tasks))


def _cap(text: str | None, limit: int) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[:limit] + "\n... (truncated)"
