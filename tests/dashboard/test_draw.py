"""The dashboard's drawing primitives: every row exactly as wide as asked, whatever goes in
(wide characters, long titles, too many rows), and numbers in the forms the panels show."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from longshot.dashboard.draw import SPARK, Lines, amount, box, cell, duration, pairs, sparkline

WIDE = "任务进行中✓"  # two cells per CJK character


@pytest.mark.parametrize("seconds, shown", [(0, "0:00"), (59.9, "0:59"), (75, "1:15"), (3725, "1:02:05"),
                                            (-5, "0:00")])
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize("n, shown", [(0, "0"), (999, "999"), (1234, "1.2k"), (3_456_789, "3.5M"),
                                      (2_000_000_000, "2.0G"), (-1500, "-1.5k")])
def test_amount(n: float, shown: str) -> None:
    assert amount(n) == shown


def test_sparkline_scales_to_the_highest_value_and_is_flat_when_all_are_zero() -> None:
    assert sparkline([0, 0, 0]) == SPARK[0] * 3
    assert sparkline([]) == ""
    line = sparkline([1, 4, 8])
    assert len(line) == 3 and line[-1] == SPARK[-1] and line[0] < line[1] < line[2]


@given(st.text(max_size=60), st.integers(min_value=0, max_value=80), st.booleans())
def test_a_cell_is_exactly_its_width(text: str, width: int, right: bool) -> None:
    assert cell(text, width, right=right).cell_len == width


def test_a_cell_cuts_with_an_ellipsis_and_pads_on_the_side_asked() -> None:
    assert cell("abcdefgh", 5).plain == "abcd…"
    assert cell("ab", 5, right=True).plain == "   ab"
    assert cell(WIDE, 7).cell_len == 7


@pytest.mark.parametrize("title", ["merge queue", WIDE * 5])
@pytest.mark.parametrize("rows", [0, 3, 20])
def test_a_box_is_exactly_its_size_with_borders(title: str, rows: int) -> None:
    drawn = box(title, [Text(f"row {i} {WIDE}") for i in range(rows)], 30, 8, "blue", subtitle=Text("sub"))
    assert len(drawn) == 8
    assert all(r.cell_len == 30 for r in drawn), [r.cell_len for r in drawn]
    assert drawn[0].plain.startswith("╭") and drawn[-1].plain.endswith("─╯")
    assert all(r.plain.startswith("│") and r.plain.endswith("│") for r in drawn[1:-1])


def test_pairs_align_labels_and_values() -> None:
    rows = pairs([("workers", "3 of 8"), ("landed", Text("12", style="green"))], 40)
    assert [r.plain.split()[0] for r in rows] == ["workers", "landed"]
    assert len({r.plain.index(v) for r, v in zip(rows, ("3 of 8", "12"))}) == 1  # values start in one column


def test_lines_crop_rows_wider_than_the_terminal_and_add_no_trailing_newline() -> None:
    out = io.StringIO()
    Console(file=out, width=10, color_system=None, legacy_windows=False).print(
        Lines([Text("x" * 25), Text("short")]), end="")
    assert out.getvalue().split("\n") == ["x" * 10, "short"]
