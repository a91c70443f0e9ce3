"""The end of a run: a summary on the terminal and a report per run (Markdown plus charts).

Both are made from the run log alone (the same reducer as the dashboard), so they agree
with it and can be made again later (`longshot report LOG`). The report of
``logs/run-<time>-<id>.ndjson`` goes to ``logs/report-<time>-<id>/report.md``, with its
charts beside it as PNG files.
"""

from __future__ import annotations

import subprocess

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from longshot.dashboard.feature_table import features_markdown
from longshot.dashboard.board import Board
from longshot.dashboard.draw import cost_text, duration
from longshot.dashboard.nextsteps import result_lines, what_next
from longshot.events import read_events
from longshot.clip import clip


@dataclass
class Outcome:
    """The figures the summary and the report give."""

    duration_s: float
    tasks: int
    by_status: dict[str, int]
    landed: int
    merge_failures: int
    conflicts: int
    predicted: int
    avoided: int
    hot_files: dict[str, str]
    gate_refusals: int
    fix_tasks: int
    conflict_fixes: int
    checks: list[tuple[str, bool]]
    tokens: int
    cost_usd: float
    exit_code: int | None
    green: bool | None
    p50_to_land: float | None
    p95_to_land: float | None
    peak_workers: int
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    features: dict[str, int] = field(default_factory=dict)
    """Features per status (empty when the run had none)."""
    checked_by: str = ""
    """Landings vouched for by tests, only by collection, by exit codes alone (empty: no gate)."""


def load(path: Path) -> Board:
    """The state at the end of a run log."""
    state = Board()
    for event in read_events(path):
        state.apply(event)
    return state


def report_dir(log_path: Path) -> Path:
    """``logs/run-X.ndjson`` -> ``logs/report-X`` (the report's folder beside the log)."""
    name = log_path.name.removesuffix(".ndjson")
    return log_path.with_name("report-" + name.removeprefix("run-"))


def outcome(state: Board) -> Outcome:
    fin = state.finished
    waits = sorted(state.waits)
    tokens, cost = (fin.tokens, fin.cost_usd) if fin is not None else (state.tokens, state.cost_usd)
    return Outcome(
        duration_s=state.elapsed(), tasks=len(state.tasks), by_status=dict(Counter(t.status for t in state.tasks.values())),
        landed=state.merge_landed, merge_failures=state.merge_failed, conflicts=state.conflicts,
        predicted=state.predicted, avoided=state.avoided, hot_files=dict(state.hot_files),
        gate_refusals=state.gate_refused, checked_by=_checked_by(state),
        fix_tasks=sum(t.kind == "fix" for t in state.tasks.values()),
        conflict_fixes=sum(t.kind == "conflict-fix" for t in state.tasks.values()),
        checks=[(c.command, c.ok) for c in state.checks], tokens=tokens, cost_usd=cost,
        exit_code=fin.exit_code if fin else None, green=fin.green if fin else None,
        p50_to_land=waits[len(waits) // 2] if waits else None,
        p95_to_land=waits[min(len(waits) - 1, int(0.95 * len(waits)))] if waits else None,
        peak_workers=max((n for _, n in state.active_series), default=0), verdict=fin.summary if fin else "",
        notes=[f"+{duration(i.ts - (state.started or i.ts))} {i.level}: {Text.from_markup(i.text).plain}"
               for i in state.feed if i.level != "info"], unpriced=list(state.unpriced),
        features=state.feature_counts() if state.features else {})


def _checked_by(state: Board) -> str:
    c = state.checked_by
    if c is None:
        return ""
    return f"{c.by_tests} by tests, {c.by_collection} only by collection, {c.by_commands} by exit codes alone"


def _statuses(o: Outcome) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(o.by_status.items(), key=lambda x: (-x[1], x[0]))) or "none"


def _exit(o: Outcome) -> str:
    if o.exit_code is None:
        return "unfinished (the log ends before run.finished)"
    if o.green and o.exit_code == 0:
        return f"{o.exit_code} (green)"
    if o.green:
        return f"{o.exit_code} (checks green, but work is left unlanded or unproven: see below)"
    if not o.checks:
        return f"{o.exit_code} (no checks ran)"
    return f"{o.exit_code} (not green)"


def rows(o: Outcome) -> list[tuple[str, str]]:
    """The figures as (name, value) rows: one list for the terminal and the report."""
    checks = ", ".join(f"{c}: {'ok' if ok else 'FAILED'}" for c, ok in o.checks) or "none ran"
    land = "-" if o.p50_to_land is None else f"{o.p50_to_land:.1f} s / {o.p95_to_land:.1f} s"
    return [("duration", duration(o.duration_s)), ("tasks", f"{o.tasks} ({_statuses(o)})"),
            ("landed commits", str(o.landed)), ("merge failures", str(o.merge_failures)),
            ("merge conflicts", str(o.conflicts)), ("conflict-fix tasks", str(o.conflict_fixes)),
            ("conflicts predicted", f"{o.predicted} ({o.avoided} avoided after a warning)"),
            *([("hot files", ", ".join(sorted(o.hot_files)))] if o.hot_files else []),
            ("gate refusals", str(o.gate_refusals)),
            *([("landings checked", o.checked_by)] if o.checked_by else []), ("reconciler fix tasks", str(o.fix_tasks)),
            ("time to land p50 / p95", land), ("peak workers", str(o.peak_workers)), ("final checks", checks),
            *([("features", ", ".join(f"{n} {s}" for s, n in o.features.items()))] if o.features else []),
            ("tokens", f"{o.tokens:,}"), ("cost", cost_text(o.cost_usd, o.unpriced)), ("exit status", _exit(o))]


def summary(state: Board) -> RenderableType:
    """The end-of-run figures in a box (`print_summary` adds the result, report and log)."""
    o = outcome(state)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    for name, value in rows(o):
        style = "" if name != "exit status" else "bold green" if o.exit_code == 0 else "bold red"
        grid.add_row(name, Text(value, style=style))
    parts: list[RenderableType] = [grid]
    if o.verdict and (o.exit_code != 0 or state.plan is not None):
        parts.append(Text(o.verdict, style="yellow"))
    ok = o.exit_code == 0
    title = "✓ plan recorded, no worker ran" if state.plan is not None and ok else "✓ run finished" if ok \
        else "✗ run summary"
    return Panel(Group(*parts), title=title, title_align="left",
                 border_style="green" if ok else "red")


def print_summary(console: Console, state: Board, report: Path | None = None) -> None:
    """The summary box, then where the result is and how to take it, the report and the log as
    whole lines (never wrapped or cut inside the box: they are meant to be copied)."""
    console.print(summary(state), soft_wrap=False)  # the box wraps its text; a soft-wrapping console would cut it
    for label, text in result_lines(state, report):
        console.print(Text.assemble((f"{label:<8} ", "dim"), (text, "bold" if label == "take it" else "")),
                      soft_wrap=True)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(state: Board, charts: list[tuple[str, str]]) -> str:
    o = outcome(state)
    started = datetime.fromtimestamp(state.started or 0, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = [f"# Longshot run {state.run_id}", "",
           f"**Request:** {state.request}", "",
           f"**Repository:** `{state.repo}` → `{state.target_branch}` · **Started:** {started} · "
           f"**Workers:** {state.max_workers} · **Log:** `{state.log_path}`", "",
           "## Outcome", "", "| figure | value |", "|---|---|"]
    out += [f"| {name} | {_cell(value)} |" for name, value in rows(o)]
    if o.verdict:
        out += ["", "```", o.verdict, "```"]
    results = [(label, text) for label, text in result_lines(state) if label not in ("log", "report")]
    if results:
        out += ["", "## Result", ""] + [f"- **{label}:** `{text}`" if label == "take it" else f"- **{label}:** {text}"
                                         for label, text in results]
    steps = what_next(state)
    if steps:
        out += ["", "## What next", ""] + [f"- {_cell(step)}" for step in steps]
    if charts:
        out += ["", "## Charts", ""]
        out += [f"![{caption}]({name})\n\n*{caption}.*\n" for name, caption in charts]
    out += ["", "## Tasks", "",
            "| task | kind | parent | status | worked | time to land | lines +/- | files | tokens | cost | description |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in state.tasks.values():
        worked = duration(t.worked - t.started) if t.worked and t.started else "-"
        land = f"{t.seconds_to_land:.1f} s" if t.seconds_to_land is not None else "-"
        lines = f"+{t.handoff.lines_added}/-{t.handoff.lines_removed}" if t.handoff else "-"
        out.append(f"| {t.id} | {t.kind} | {t.parent or '-'} | {t.status} | {worked} | {land} | {lines} | {t.files} | "
                   f"{t.tokens:,} | {'?' if o.unpriced else f'${t.cost_usd:.4f}'} | {_cell(clip(t.description, 100))} |")
    out += features_markdown(state)
    if state.checks:
        out += ["", "## Final checks", "", "| command | exit | result |", "|---|---|---|"]
        out += [f"| `{_cell(c.command)}` | {c.exit_code} | {'ok' if c.ok else 'FAILED'} |" for c in state.checks]
    if o.notes:
        out += ["", "## Warnings and errors", ""] + [f"- {_cell(n)}" for n in o.notes]
    return "\n".join(out) + "\n"


def write_report(log_path: Path, state: Board | None = None) -> Path:
    """Write the report of the run logged at ``log_path`` (already reduced: ``state``); the path of ``report.md``."""
    state = state or load(log_path)
    directory = report_dir(log_path)
    directory.mkdir(parents=True, exist_ok=True)
    from longshot.dashboard.charts import draw_in_child

    failed = ""
    try:  # in a child: matplotlib's memory and CPU stay out of the orchestrator
        charts = draw_in_child(log_path, directory)
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        charts, failed = [], f"\n*The charts could not be drawn: {type(e).__name__}: {e}*\n"
    path = directory / "report.md"
    path.write_text(markdown(state, charts) + failed, encoding="utf-8")
    return path
