"""A planning conversation's turns over the real router and the fake model: exploration up
to its step cap, unusable answers answered with the parse error (then given up on), the
scratchpad kept, and compaction near the window or on a context overflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshot.errors import LLMContextOverflow, PlanParseError
from longshot.events import MemorySink, PlannerParseError, RunWarning
from longshot.pipeline.converse import Conversation
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn

from stagekit import conversation, open_hub
from helpers import plan_json


class Model:
    """The planner's answers in turn (the last repeats); what each request carried."""

    def __init__(self, *answers: Reply) -> None:
        self.answers = answers
        self.turns: list[Turn] = []

    def __call__(self, turn: Turn) -> Reply:
        self.turns.append(turn)
        return self.answers[min(len(self.turns) - 1, len(self.answers) - 1)]


async def talk(tmp_path: Path, fake_llm, model: Model, **options: int) -> tuple[Conversation, MemorySink]:
    hub = await open_hub(tmp_path, {"README.md": "readme\n", "src/a.py": "a\n"})
    sink = MemorySink()
    return conversation(fake_llm(RoleScript({"planner": model})), hub, sink, "planner", task_id="t1", **options), sink


def compactions(sink: MemorySink) -> list[RunWarning]:
    return [w for w in sink.of_type(RunWarning) if w.code == "context.compacted"]


LS = Reply(tool_calls=[ToolCallSpec("ls", {"path": "src"})])


async def test_exploration_is_answered_and_capped_then_the_model_must_answer(tmp_path: Path, fake_llm) -> None:
    model = Model(LS, LS, Reply(content=plan_json([], "explored")))
    chat, _ = await talk(tmp_path, fake_llm, model, max_tool_steps=2)
    answer = await chat.ask("Plan it.", 1)
    assert answer.scratchpad == "explored" and len(model.turns) == 3
    tools = [m for m in chat.messages if m["role"] == "tool"]
    assert [m["content"] for m in tools] == ["a.py", "a.py"]
    last = model.turns[-1].messages[-1]
    assert last["role"] == "user" and "used all exploration steps" in str(last["content"])


async def test_a_tool_call_past_the_cap_is_not_run(tmp_path: Path, fake_llm) -> None:
    model = Model(LS, LS, Reply(content=plan_json([], "ok")))
    chat, sink = await talk(tmp_path, fake_llm, model, max_tool_steps=1)
    await chat.ask("Plan it.", 1)
    assert len([m for m in chat.messages if m["role"] == "tool"]) == 1
    assert len(sink.of_type(PlannerParseError)) == 1  # a tool call is no answer once the steps are used


async def test_an_unusable_answer_is_answered_with_the_error_and_reported(tmp_path: Path, fake_llm) -> None:
    model = Model(Reply(content="Sure! Here is my plan."), Reply(content='{"tasks": "all of them"}'),
                  Reply(content=plan_json([], "third time")))
    chat, sink = await talk(tmp_path, fake_llm, model)
    answer = await chat.ask("Plan it.", 4)
    assert answer.scratchpad == "third time"
    errors = sink.of_type(PlannerParseError)
    assert [(e.task_id, e.iteration) for e in errors] == [("t1", 4), ("t1", 4)]
    assert "not valid JSON" in errors[0].error and '"tasks" list' in errors[1].error
    told = [str(m["content"]) for m in model.turns[2].messages if m["role"] == "user"]
    assert told[-1].startswith("Your answer could not be used: ") and '"tasks" list' in told[-1]


async def test_the_conversation_gives_up_after_max_parse_retries(tmp_path: Path, fake_llm) -> None:
    model = Model(Reply(content="no json here"))
    chat, sink = await talk(tmp_path, fake_llm, model, max_parse_retries=2)
    with pytest.raises(PlanParseError, match="the planner gave no usable answer in 3 tries"):
        await chat.ask("Plan it.", 1)
    assert len(model.turns) == 3 and len(sink.of_type(PlannerParseError)) == 3


async def test_an_answer_without_a_scratchpad_keeps_the_last_one(tmp_path: Path, fake_llm) -> None:
    model = Model(Reply(content=plan_json([], "goals: A, B")), Reply(content='{"tasks": []}'))
    chat, _ = await talk(tmp_path, fake_llm, model)
    await chat.ask("Plan it.", 1)
    await chat.ask("Again.", 2)
    assert chat.scratchpad == "goals: A, B"


async def test_near_the_window_old_turns_are_replaced_by_the_scratchpad_and_summary(tmp_path: Path,
                                                                                    fake_llm) -> None:
    model = Model(Reply(content=plan_json([], "remember the parser")))
    chat, sink = await talk(tmp_path, fake_llm, model, window=3000)
    await chat.ask("x" * 2000, 1)
    chat.keep_summary("t1 landed")
    await chat.ask("y" * 9000, 2)  # with what came before, over 70% of the window
    [warning] = compactions(sink)
    assert warning.task_id == "t1" and "(1 so far)" in warning.message
    sent = model.turns[-1].messages
    assert [m["role"] for m in sent] == ["system", "user", "user"]
    memory = str(sent[1]["content"])
    assert "compacted" in memory and "remember the parser" in memory and "t1 landed" in memory
    assert "x" * 2000 not in str(sent) and sent[-1]["content"] == "y" * 9000


async def test_a_context_overflow_mid_turn_compacts_and_asks_the_same_question_again(tmp_path: Path,
                                                                                      fake_llm) -> None:
    model = Model(Reply(content=plan_json([], "pad")), Reply(context_overflow=True), Reply(content=plan_json([], "after")))
    chat, sink = await talk(tmp_path, fake_llm, model)
    await chat.ask("first", 1)
    answer = await chat.ask("second question", 2)
    assert answer.scratchpad == "after" and chat.compactions == 1
    retried = model.turns[-1].messages
    assert [m["role"] for m in retried] == ["system", "user", "assistant", "user"]
    assert "pad" in str(retried[1]["content"]) and retried[-1]["content"] == "second question"
    assert len(compactions(sink)) == 1


async def test_an_overflow_with_nothing_to_compact_is_raised(tmp_path: Path, fake_llm) -> None:
    chat, _ = await talk(tmp_path, fake_llm, Model(Reply(context_overflow=True)))
    with pytest.raises(LLMContextOverflow):
        await chat.ask("the very first question", 1)
    assert chat.compactions == 0


async def test_a_restored_conversation_starts_from_its_memory(tmp_path: Path, fake_llm) -> None:
    model = Model(Reply(content=plan_json([], "next")))
    chat, _ = await talk(tmp_path, fake_llm, model)
    chat.restore("goals: ship it", "t1 landed; t2 failed")
    await chat.ask("What now?", 7)
    sent = model.turns[0].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "resumed" in str(sent[1]["content"]) and "goals: ship it" in str(sent[1]["content"])
    assert "t1 landed; t2 failed" in str(sent[1]["content"]) and sent[0]["content"] == "You plan."
