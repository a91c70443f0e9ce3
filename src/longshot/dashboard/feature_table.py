"""The feature ledger as people read it: the report's Features section and the status table.

Both are made from ``feature.status`` and ``claim.checked`` events (the report, through the
reducer) or from events rebuilt from the recorded ledger (``longshot status``), so they
say the same thing. See docs/features.md for what each status means.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longshot.dashboard.board import Board
from longshot.dashboard.view import FEATURE_STYLES
from longshot.events import FeatureStatus

STATUS_ORDER = ("failing", "claimed", "missing", "verified")
"""The report lists what needs attention first."""


def _commits(f: FeatureStatus) -> str:
    return ", ".join(c[:10] for c in f.commits) or "-"


def features_markdown(state: Board) -> list[str]:
    """The report's Features section (nothing when the run had no features)."""
    if not state.features and not state.claims:
        return []
    out = ["", "## Features", ""]
    if state.features:
        counts = state.feature_counts()
        out += [", ".join(f"**{n}** {s}" for s, n in counts.items()) + " (verified: its tests exist on the final "
                "tree and pass; claimed: work landed but no test proves it; failing: its tests fail; missing: "
                "nothing landed)", "",
                "| feature | status | tasks | commits | tests | evidence |", "|---|---|---|---|---|---|"]
        ordered = sorted(state.features.values(), key=lambda f: STATUS_ORDER.index(f.status)
                         if f.status in STATUS_ORDER else 0)
        for f in ordered:
            name = f"{f.feature}" + (f" ({f.name})" if f.name else "") + ("" if f.asked else " (not asked)")
            out.append(f"| {_cell(name)} | {f.status} | {_cell(', '.join(f.tasks) or '-')} | {_commits(f)} | "
                       f"{_cell(', '.join(f.tests) or '-')} | {_cell(f.evidence[:300])} |")
    if state.claims:
        out += ["", "### Claims checked", "",
                "A worker's `complete` is checked by running its task's acceptance command on its own branch; "
                "an unverified claim is one whose command failed.", "",
                "| role / model | checked | unverified | rate |", "|---|---|---|---|"]
        for key, (checked, unverified) in sorted(state.claims.items()):
            out.append(f"| {_cell(key)} | {checked} | {unverified} | {unverified / checked:.0%} |")
        for claim in state.unverified[:20]:
            out.append(f"\n- **{claim.task_id}** said complete, but `{_cell(claim.command)}` exits {claim.exit_code} "
                       f"on {claim.commit[:10]}:\n\n```\n{claim.evidence[-800:]}\n```")
    return out


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_features(console: Console, features: Iterable[FeatureStatus]) -> None:
    """The ledger as a table (``longshot status``)."""
    rows = list(features)
    if not rows:
        return
    table = Table(box=None, pad_edge=False, title="features (the evidence: longshot status --json)",
                  title_justify="left")
    for column in ("feature", "status", "name"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=30)
    for column in ("tasks", "commits", "tests"):
        table.add_column(column, overflow="fold")
    for f in rows:
        table.add_row(escape(f.feature), f"[{FEATURE_STYLES.get(f.status, '')}]{f.status}[/]", escape(f.name),
                      escape(", ".join(f.tasks) or "-"), _commits(f), escape(", ".join(f.tests) or "-"))
    console.print(table)
