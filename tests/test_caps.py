"""Model free text is capped where it becomes data (`longshot.caps`, issue 15 item 7)."""

from __future__ import annotations

from longshot.caps import NOTE, NOTES, SUMMARY, cut, cut_list
from longshot.harnesses.base import HarnessResult
from longshot.tools.toolbox import HandoffArgs
from longshot.types import Handoff

BIG = "y" * 3_000_000


def test_cut_says_how_much_was_cut() -> None:
    assert cut("short", 10) == "short"
    assert cut("abcdef" * 10, 40) == "abcdefabcde\n[... 49 more characters cut]"
    assert len(cut("z" * 10**6, 100)) == 100 and cut(cut("z" * 10**6, 100), 100) == cut("z" * 10**6, 100)
    assert cut_list(["a", "bb", "ccc"], 2, 50) == ["a", "[... 2 more cut]"]
    assert cut_list(["a", "b", "c"], 2, 5, marker=False) == ["a", "b"]


def test_a_3mb_handoff_is_cut_as_the_result_is_built() -> None:
    args = HandoffArgs(status="complete", summary=BIG, concerns=[BIG] * 100, suggestions=[BIG])
    result = HarnessResult(status=args.status, summary=args.summary, concerns=args.concerns, suggestions=args.suggestions)
    assert len(result.summary) == SUMMARY
    assert len(result.concerns) == NOTES and result.concerns[-1] == "[... 81 more cut]"
    assert all(len(c) <= NOTE for c in result.concerns)
    handoff = Handoff(task_id="t", status="complete", summary=BIG, concerns=[BIG] * 100, suggestions=[BIG] * 100)
    assert len(handoff.model_dump_json()) < 2 * (SUMMARY + 2 * NOTES * (NOTE + 100))
    # what was cut stays cut through a round trip (the run state)
    assert Handoff.model_validate_json(handoff.model_dump_json()) == handoff
