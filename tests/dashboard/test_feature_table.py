"""The feature ledger in the dashboard, the feed and the report: folded from its events only."""

from __future__ import annotations

from rich.console import Console

from longshot.dashboard.feature_table import features_markdown
from longshot.dashboard.board import Board
from longshot.dashboard.view import ViewState, render
from longshot.events import ClaimChecked, FeatureStatus, RunStarted

EVENTS = [
    RunStarted(request="build", repo="r", target_branch="main", max_workers=2, ts=1.0),
    FeatureStatus(feature="F1", name="slug", status="missing", ts=2.0),
    FeatureStatus(feature="F2", name="wrap", status="missing", ts=2.0),
    FeatureStatus(feature="F3", name="cli", status="missing", ts=2.0),
    FeatureStatus(feature="F1", name="slug", status="claimed", before="missing", tasks=["slug"], ts=3.0),
    ClaimChecked(task_id="slug", verified=True, model="m1", command="pytest tests/test_slug.py", ts=4.0),
    ClaimChecked(task_id="wrap", verified=False, model="m1", command="pytest tests/test_wrap.py", exit_code=1,
                 evidence="E   assert 'a b' == 'a\\nb'\n1 failed", commit="c0ffee00", ts=5.0),
    FeatureStatus(feature="F1", name="slug", status="verified", before="claimed", tasks=["slug"],
                  tests=["tests/test_slug.py"], evidence="tests/test_slug.py passed in `pytest`", ts=6.0),
    FeatureStatus(feature="F2", name="wrap", status="failing", before="missing", tasks=["wrap"],
                  evidence="tests/test_wrap.py failed in `pytest`", ts=6.0),
]


def folded() -> Board:
    state = Board()
    for event in EVENTS:
        state.apply(event)
    return state


def test_counts_per_status_and_claims_per_model_are_folded_from_events() -> None:
    state = folded()
    assert state.feature_counts() == {"verified": 1, "claimed": 0, "failing": 1, "missing": 1}
    assert state.claims == {"worker/m1": [2, 1]} and [c.task_id for c in state.unverified] == ["wrap"]
    alerts = [i.text for i in state.feed if i.level != "info"]
    assert any("F2" in a and "failing" in a for a in alerts) and any("unverified claim" in a for a in alerts)
    assert not any("F1" in i.text for i in state.feed if i.level != "info")


def test_the_dashboard_shows_the_counts_and_the_report_lists_what_needs_attention_first() -> None:
    console = Console(width=140, height=44, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(render(folded(), ViewState(), 7.0, 44, 140))
    screen = console.export_text()
    assert "Features        1 verified · 0 claimed" in screen and "1 failing · 1 missing" in screen
    report = "\n".join(features_markdown(folded()))
    assert report.index("| F2 (wrap) | failing") < report.index("| F3 (cli) | missing") < report.index("| F1 (slug)")
    assert "| worker/m1 | 2 | 1 | 50% |" in report and "1 failed" in report
    assert features_markdown(Board()) == []
