"""The feature ledger as read (dashboard/feature_table.py): the status table on a fixed-width
terminal and the report's Markdown, with text that could break either."""

from __future__ import annotations

import io

from rich.console import Console

from longshot.dashboard.board import Board
from longshot.dashboard.feature_table import features_markdown, render_features
from longshot.events import ClaimChecked, Event, FeatureStatus


def table(features: list[FeatureStatus], width: int = 120) -> str:
    out = io.StringIO()
    render_features(Console(file=out, width=width, color_system=None), features)
    return out.getvalue()


def test_the_status_table_shows_names_as_they_are_and_cuts_only_the_short_columns() -> None:
    text = table([FeatureStatus(feature="F[bold]1[/]", name="a name " * 10, status="failing", tasks=["t1", "t2"],
                                commits=["0123456789abcdef"], tests=["tests/test_x.py::test_y"]),
                  FeatureStatus(feature="F2", status="missing")])
    lines = text.splitlines()

    assert lines[0].rstrip() == "features (the evidence: longshot status --json)"
    assert lines[1].split() == ["feature", "status", "name", "tasks", "commits", "tests"]
    assert "F[bold]1[/]" in text and "failing" in text and "[red]" not in text
    assert "a name a name" in text and "…" in lines[2] and "0123456789 " in text and "0123456789a" not in text
    assert "t1, t2" in text and "tests/test_x.py::test_y" in text
    assert lines[3].split() == ["F2", "missing", "-", "-", "-"]


def test_no_features_print_nothing() -> None:
    assert table([]) == ""


def fold(*events: Event) -> Board:
    state = Board()
    for event in events:
        state.apply(event)
    return state


def test_markdown_cells_keep_their_row_whatever_the_text() -> None:
    state = fold(FeatureStatus(feature="F|1", name="pipes | and\nnewlines", status="claimed", asked=False,
                               evidence="x" * 400 + "never shown"))

    rows = [line for line in features_markdown(state) if line.startswith("| F")]

    assert len(rows) == 1 and rows[0].count(" | ") == 5
    assert rows[0].startswith("| F\\|1 (pipes \\| and newlines) (not asked) | claimed | - | - | - | ")
    assert rows[0].endswith("x" * 300 + " |")


def test_claims_without_features_list_only_the_claims_and_at_most_twenty_unverified() -> None:
    claims = [ClaimChecked(ts=i, task_id=f"t{i}", verified=False, role="worker", model="m", command="make | test",
                           exit_code=2, commit="abcdef0123456789", evidence="head " + "e" * 1000 + " tail")
              for i in range(25)] + [ClaimChecked(ts=30, task_id="ok", verified=True, role="worker", model="n")]
    text = "\n".join(features_markdown(fold(*claims)))

    assert "## Features" in text and "| feature | status |" not in text and "### Claims checked" in text
    assert "| worker/m | 25 | 25 | 100% |" in text and "| worker/n | 1 | 0 | 0% |" in text
    assert text.count("said complete, but") == 20 and "**t19**" in text and "**t20**" not in text
    assert "`make \\| test` exits 2 on abcdef0123:" in text
    assert text.count("e" * 795 + " tail\n```") == 20 and "head" not in text
