"""The root planner's messages, events and memory: what the first message carries (capped),
what a follow-up tells of the target's changes (others' commits, not Longshot's), rejected
tasks fed back as notes, and the durable state's round trip. Fake model over real HTTP, real hub."""

from __future__ import annotations

import json
from pathlib import Path

from longshot.events import MemorySink, PlannerAnswered, PlannerRequested, RunWarning, TaskRejected
from longshot.hub import Hub
from longshot.pipeline.parse import TaskValidator
from longshot.pipeline.plan import DELTA_LIMIT, DOC_LIMIT, SPEC_LIMIT, TREE_LIMIT, Planner, PlannerState, Progress
from longshot.prompts import Prompts
from longshot.testing.fake_script import Reply, RoleScript, Turn
from longshot.types import Task

from stagekit import conversation, open_hub, push
from helpers import plan_json

FILES = {"README.md": "readme\n", "SPEC.md": "# spec\nbuild a parser\n", "AGENTS.md": "house rules\n",
         "src/app.py": "print(1)\n"}


class Session:
    """A planner over a hub, the fake model answering ``answers`` in turn (the last repeats)."""

    def __init__(self, hub: Hub, fake_llm, answers: list[str], tmp_path: Path) -> None:
        self.turns: list[Turn] = []
        self.answers = answers
        self.hub = hub
        self.tmp_path = tmp_path
        self.sink = MemorySink()
        self.fake = fake_llm(RoleScript({"planner": self.play}))
        self.validator = TaskValidator(prefix="worker/", main_branch="main")
        self.planner = self.new_planner()

    def play(self, turn: Turn) -> Reply:
        self.turns.append(turn)
        return Reply(content=self.answers[min(len(self.turns) - 1, len(self.answers) - 1)])

    def new_planner(self) -> Planner:
        return Planner(conversation(self.fake, self.hub, self.sink, "planner"), Prompts(), self.validator, self.hub,
                       self.sink)

    def message(self, n: int = -1) -> str:
        return str(next(m["content"] for m in reversed(self.turns[n].messages) if m["role"] == "user"))

    def push(self, files: dict[str, str | None], message: str) -> None:
        push(self.hub, self.tmp_path, files, message)


async def session(tmp_path: Path, fake_llm, answers: list[str], files: dict[str, str] | None = None) -> Session:
    return Session(await open_hub(tmp_path, FILES if files is None else files), fake_llm, answers, tmp_path)


ONE_TASK = plan_json([{"id": "parse", "description": "write the parser", "scope": ["src/parse.py"]}], "pad one")


async def test_the_first_message_carries_the_request_the_binding_docs_the_tree_and_commits(tmp_path: Path,
                                                                                          fake_llm) -> None:
    s = await session(tmp_path, fake_llm, [ONE_TASK])
    outcome = await s.planner.initial("make a parser")
    first = s.message()
    assert first.startswith("# Request\nmake a parser")
    assert "build a parser" in first and "house rules" in first and "initial commit" in first
    assert "# FEATURES.json (binding)\n(none)" in first and "DECISIONS.md" not in first  # absent docs
    assert "# Files in the repository (4)" in first and "src/app.py" in first
    assert [t.id for t in outcome.tasks] == ["parse"] and outcome.proposed == 1
    assert s.planner.scratchpad == "pad one" and s.planner.iteration == 1
    assert s.planner.last_tip == await s.hub.tip() and "SPEC.md" in s.planner.files
    [asked] = s.sink.of_type(PlannerRequested)
    [answered] = s.sink.of_type(PlannerAnswered)
    assert (asked.iteration, asked.handoffs) == (1, 0)
    assert (answered.iteration, answered.tasks, answered.scratchpad) == (1, 1, "pad one")


async def test_big_docs_and_trees_are_capped_and_say_so(tmp_path: Path, fake_llm) -> None:
    files = {f"gen/f{i:05d}.txt": "" for i in range(TREE_LIMIT + 3)}
    files |= {"SPEC.md": "S" * (SPEC_LIMIT + 10), "DECISIONS.md": "D" * (DOC_LIMIT + 1)}
    s = await session(tmp_path, fake_llm, [plan_json([])], files)
    await s.planner.initial("go")
    first = s.message()
    assert "S" * SPEC_LIMIT + "\n... (truncated)" in first and "S" * (SPEC_LIMIT + 1) not in first
    assert "D" * DOC_LIMIT + "\n... (truncated)" in first
    assert f"({TREE_LIMIT + 5}" in first  # the count is of every file
    assert "... (5 more files; use the ls and find tools)" in first
    assert "gen/f00000.txt" in first and f"gen/f{TREE_LIMIT + 2:05d}.txt" not in first


async def test_rejected_tasks_are_events_and_notes_for_the_next_message_only(tmp_path: Path, fake_llm) -> None:
    bad = plan_json([{"id": "ok", "description": "fine", "scope": ["a.py"]},
                     {"id": "esc", "description": "escape", "scope": ["../etc"]},
                     {"description": "no id", "scope": ["b.py"], "depends_on": ["ghost"]}])
    s = await session(tmp_path, fake_llm, [bad, plan_json([]), plan_json([])])
    outcome = await s.planner.initial("go")
    assert [t.id for t in outcome.tasks] == ["ok"] and outcome.proposed == 3
    assert [r.task_id for r in s.sink.of_type(TaskRejected)] == ["esc", None]
    assert s.sink.of_type(PlannerAnswered)[0].tasks == 1
    await s.planner.follow_up([], Progress())
    notes = s.message()
    assert "- task esc was rejected: scope path '../etc' is outside the repository" in notes
    assert "- task (no id) was rejected: depends_on names an unknown task 'ghost'" in notes
    await s.planner.follow_up([], Progress())
    assert "## Notes" not in s.message()  # told once
    assert [a.handoffs for a in s.sink.of_type(PlannerRequested)] == [0, 0, 0]


async def test_a_replaced_branch_name_is_a_warning_and_a_note(tmp_path: Path, fake_llm) -> None:
    answer = plan_json([{"id": "t1", "description": "thing", "scope": ["a.py"], "branch": "worker/$(rm -rf x)"}])
    s = await session(tmp_path, fake_llm, [answer, plan_json([])])
    [t] = (await s.planner.initial("go")).tasks
    assert t.branch == "worker/t1-thing"
    [warning] = [w for w in s.sink.of_type(RunWarning) if w.code == "branch.replaced"]
    assert "was replaced by 'worker/t1-thing'" in warning.message
    await s.planner.follow_up([], Progress())
    assert "was replaced by 'worker/t1-thing'" in s.message()


async def test_a_follow_up_tells_the_tree_delta_and_others_commits_but_not_longshots(tmp_path: Path,
                                                                                     fake_llm) -> None:
    s = await session(tmp_path, fake_llm, [ONE_TASK, plan_json([], "later")])
    await s.planner.initial("go")
    s.push({"docs/new.md": "n\n", "AGENTS.md": None}, "a human edits the docs")
    s.push({"src/parse.py": "p\n"}, "write the parser\n\nLongshot-Task: parse")
    await s.hub.refresh()
    active = [Task(id="x1", description="d", branch="worker/x1"), Task(id="x2", description="d", branch="worker/x2")]
    handoffs = [{"task_id": "parse", "status": "complete", "landed": True, "summary": "parser written",
                 "files_changed": ["src/parse.py"], "concerns": [], "suggestions": []}]
    progress = Progress(active=active, landed=3, failed=1, queue_depth=2, budget="40% of tokens left",
                        summary="parse landed")
    outcome = await s.planner.follow_up(handoffs, progress)
    text = s.message()
    assert "- parse [complete] landed: parser written" in text
    assert "+ docs/new.md" in text and "+ src/parse.py" in text and "- AGENTS.md" in text
    assert "Commits by others (not from Longshot tasks):\n" in text and "a human edits the docs" in text
    assert "write the parser" not in text.split("Commits by others")[1].split("Files changed")[0]
    assert "pending: x1, x2" in text
    assert "Landed so far: 3; failed: 1; waiting to land: 2." in text and "40% of tokens left" in text
    assert outcome.proposed == 0 and s.planner.scratchpad == "later"
    assert s.planner.conversation.summary == "parse landed"
    assert s.planner.last_tip == await s.hub.tip()
    assert s.sink.of_type(PlannerRequested)[-1].handoffs == 1


async def test_a_follow_up_with_nothing_new_says_so(tmp_path: Path, fake_llm) -> None:
    s = await session(tmp_path, fake_llm, [ONE_TASK, plan_json([])])
    await s.planner.initial("go")
    await s.planner.follow_up([], Progress())
    text = s.message()
    assert "No new handoffs." in text and "Files changed: none" in text and "Commits by others" not in text
    assert "## Active tasks\nnone" in text and "## Budget" not in text


async def test_a_huge_tree_delta_is_capped_with_the_totals(tmp_path: Path, fake_llm) -> None:
    s = await session(tmp_path, fake_llm, [plan_json([])])
    await s.planner.initial("go")
    s.push({f"many/f{i:03d}.txt": "" for i in range(2 * DELTA_LIMIT + 5)}, "generate files")
    await s.hub.refresh()
    await s.planner.follow_up([], Progress())
    text = s.message()
    assert f"... ({2 * DELTA_LIMIT + 5} added, 0 removed in all)" in text
    assert text.count("+ many/") == DELTA_LIMIT


async def test_snapshot_and_restore_carry_the_planners_memory(tmp_path: Path, fake_llm) -> None:
    s = await session(tmp_path, fake_llm, [ONE_TASK, plan_json([])])
    await s.planner.initial("go")
    s.planner.notes.append("remember me")
    s.planner.conversation.keep_summary("what happened")
    saved = PlannerState.model_validate(json.loads(s.planner.snapshot().model_dump_json()))
    assert (saved.iteration, saved.scratchpad, saved.summary, saved.notes) == (1, "pad one", "what happened",
                                                                               ["remember me"])
    assert saved.last_tip == s.planner.last_tip
    s.push({"later.txt": "x\n"}, "moved on")
    await s.hub.refresh()
    resumed = s.new_planner()
    await resumed.restore(saved, await s.hub.tip())
    assert resumed.iteration == 1 and resumed.notes == ["remember me"] and resumed.scratchpad == "pad one"
    assert "later.txt" not in resumed.files  # the tree as the planner last saw it, so the delta shows it
    await resumed.follow_up([], Progress())
    text = s.message()
    assert "+ later.txt" in text and "remember me" in text and "moved on" in text
    memory = str(s.turns[-1].messages[1]["content"])
    assert "resumed" in memory and "pad one" in memory and "what happened" in memory
    assert s.sink.of_type(PlannerRequested)[-1].iteration == 2


async def test_a_planner_recorded_before_any_answer_starts_over_from_the_tip(tmp_path: Path, fake_llm) -> None:
    s = await session(tmp_path, fake_llm, [plan_json([])])
    resumed = s.new_planner()
    await resumed.restore(PlannerState(scratchpad="stale"), await s.hub.tip())
    assert resumed.iteration == 0 and resumed.scratchpad == "" and len(resumed.conversation.messages) == 1
    assert "SPEC.md" in resumed.files and resumed.last_tip == ""
