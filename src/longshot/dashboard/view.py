"""The dashboard's frame: a function of the run state, the view settings and a clock.

`render` draws a header (elapsed time, workers, the planning indicator, landings), the
metrics and merge-queue panels, recent alerts, a tab with the task tree or the activity
feed, and a progress bar. `ViewState` (`dashboard/keys.py`) holds what the keys change (tab, scrolling, tree
depth, details); it is separate from the run state, which only events change.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from longshot.dashboard.draw import Lines, amount, box, cell, cost_text, duration, pairs, sparkline
from longshot.dashboard.keys import TABS, ViewState
from longshot.dashboard.lines import describe, level
from longshot.dashboard.board import ACTIVE, FeedItem, Board
from longshot.dashboard.tree import tree_rows
from longshot.events import Event

LEVEL_STYLE = {"error": "red", "warning": "yellow", "info": ""}
LEFT = 44
"""Width of the left column (metrics, merge queue, alerts)."""
VALUE = LEFT - 20
"""Cells a value gets in the left panels (`pairs`: a 15-cell label, borders and gaps)."""
KEYS_HELP = "tab/←→ switch · ↑↓ PgUp/PgDn scroll · +/- tree depth · d details"


def render(state: Board, view: ViewState, now: float, height: int = 40, width: int = 140) -> Lines:
    """One frame for a terminal of ``width`` x ``height``."""
    width, height = max(60, width), max(12, height)
    body = height - 7
    left = box("metrics", metrics_rows(state, now), LEFT, 11, "blue") + \
        box("merge queue", merge_rows(state, now), LEFT, 10 + 2 * bool(state.features), "cyan")
    alerts = [i for i in reversed(state.feed) if i.level != "info"]
    left += box(f"alerts ({state.errors} errors, {state.warnings} warnings)",
                [feed_line(state, i) for i in alerts[: max(0, body - len(left) - 2)]] or [Text("none", style="dim")],
                LEFT, max(0, body - len(left)), "red" if state.errors else "yellow")
    right = tab_panel(state, view, now, body, width - LEFT)
    middle = [Text.assemble(a, b) for a, b in zip(left[:body], right)]
    return Lines(header(state, now, width) + middle + footer(state, view, width))


def header(state: Board, now: float, width: int) -> list[Text]:
    f = state.figures()
    line = Text.assemble(("LONGSHOT ", "bold magenta"), (f"⏱ {duration(state.elapsed(now))}  ", "bold"),
                         ("workers ", "dim"), (f"{f.workers_active}/{f.workers_total}  ", "bold blue"))
    if state.planner_since is not None:
        dots = "●" * (1 + int(now * 2) % 3)
        line.append(f"PLANNING {dots:<3} {duration(now - state.planner_since)}  ", style="bold magenta")
    line.append("landed ", style="dim")
    line.append(f"{f.landed}  ", style="bold green")
    if state.finished is not None:
        ok = state.finished.exit_code == 0
        line.append("✓ FINISHED  " if ok else f"✗ EXIT {state.finished.exit_code}  ", style="bold green" if ok else "bold red")
    elif state.interrupted:
        line.append("INTERRUPTED  ", style="bold yellow")
    line.append(state.request[:200], style="italic")
    return box(state.run_id or "waiting for events", [line], width, 3, "magenta", title_right=True)


def metrics_rows(state: Board, now: float) -> list[Text]:
    f = state.figures()
    pct = f" ({f.done / f.total:.0%})" if f.total else ""
    rate = f.merge_success_rate
    rate_style = "" if rate is None else "green" if rate > 0.9 else "yellow" if rate > 0.7 else "red"
    cost = f"${f.cost_usd:.4f}" if f.cost_usd < 1 else f"${f.cost_usd:.2f}"
    cost = cost_text(f.cost_usd, state.unpriced) if state.unpriced else cost
    if len(cost) > VALUE:  # too long to show whole: the alerts name the models without a price (price.unknown)
        cost = "unknown (no price)" if f.cost_usd == 0 else f"≥ ${f.cost_usd:.4f} (no price)"
    tokens = amount(f.tokens)
    if state.max_cost_usd:
        cost += f" of ${state.max_cost_usd:g} ({f.cost_usd / state.max_cost_usd:.0%})"
    elif state.max_tokens:
        tokens += f" ({f.tokens / state.max_tokens:.0%} of {amount(state.max_tokens)})"
    counts, width = state.velocity(buckets=16, now=now)
    per_min = sum(counts) / (width * len(counts)) * 60
    return pairs([
        ("Sprint", f"{state.planner_iteration}" + (" (planning)" if state.planner_since is not None else "")),
        ("Landed / hour", f"{state.landed_per_hour(now):.1f}"),
        ("Tasks done", f"{f.done}/{f.total}{pct}"),
        ("Failed", Text(str(f.failed), style="red" if f.failed else "")),
        ("Pending", str(f.pending)),
        ("Merge success", Text("-" if rate is None else f"{rate:.0%}", style=rate_style)),
        ("Tokens", tokens),
        ("Cost", cost),
        ("Velocity", Text.assemble((sparkline(counts), "green"), f" {per_min:.1f}/min")),
    ], LEFT)


def merge_rows(state: Board, now: float) -> list[Text]:
    h = state.health
    if h is not None:
        p50, p95 = h.p50_seconds_to_land, h.p95_seconds_to_land
    else:
        waits = sorted(state.waits)
        p50 = waits[len(waits) // 2] if waits else 0.0
        p95 = waits[min(len(waits) - 1, int(0.95 * len(waits)))] if waits else 0.0
    b = state.batch
    batch = "-" if b is None else f"last {b.size} {'✓' if b.ok else '✗'}" + (f" · mean {h.mean_batch:g}" if h else "")
    g = state.gate
    if g is None:
        gate = Text("no verdict yet", style="dim")
    else:
        gate = Text("✓ passed " if g.ok else "✗ refused ", style="green" if g.ok else "bold red")
        gate.append(f"{g.task_id or ''} {duration(now - g.ts)} ago")
        if g.preexisting:
            gate.append(f" · {len(g.preexisting)} pre-existing", style="yellow")
    rows: list[tuple[str, Text | str]] = [
        ("Queue depth", str(state.figures().queue_depth)),
        ("Time to land", f"p50 {p50:.1f}s · p95 {p95:.1f}s"),
        ("Batch", batch),
        ("Landed · failed", Text.assemble((str(state.merge_landed), "green"), " · ",
                                          (str(state.merge_failed), "red" if state.merge_failed else ""))),
        ("Conflicts", Text(str(state.conflicts), style="yellow" if state.conflicts else "")),
        ("Flakes", str(h.flakes if h else 0)),
        ("Gate", gate),
    ]
    if state.sweep is not None:
        sw = state.sweep
        rows.append(("Sweep", Text(f"#{sw.sweep} " + ("green" if sw.green else f"red ({len(sw.failures)})"),
                                   style="green" if sw.green else "red")))
    if state.features:
        counts = list(state.feature_counts().items())
        rows += [("Features", feature_counts(dict(counts[:2]))), ("", feature_counts(dict(counts[2:])))]
    return pairs(rows, LEFT)


FEATURE_STYLES = {"verified": "green", "claimed": "yellow", "failing": "red", "missing": "dim"}


def feature_counts(counts: dict[str, int]) -> Text:
    """``7 verified · 1 claimed``, each count in its status's colour."""
    parts: list[tuple[str, str] | str] = []
    for status, n in counts.items():
        parts += [" · "] if parts else []
        parts.append((f"{n} {status}", FEATURE_STYLES[status] if n else "dim"))
    return Text.assemble(*parts)


def feed_line(state: Board, item: FeedItem) -> Text:
    at = duration(item.ts - state.started) if state.started else "-"
    text = Text(f"+{at} ", style="dim")
    text.append_text(Text.from_markup(item.text.split("\n", 1)[0], style=LEVEL_STYLE.get(item.level, "")))
    return text


def debug_line(state: Board, event: Event) -> Text:
    """Every event, with its fields (the activity feed with ``--debug`` or the ``d`` key)."""
    line = describe(event)
    if line is None:
        fields = event.model_dump_json(exclude={"ts", "run_id", "type", "task_id"})
        shown = f"{event.task_id or ''} {fields}"  # escaped as one: escaped apart, a "[x" in the task id and
        line = f"[dim]{event.type} {escape(shown)}[/]"  # a "]" in the fields would make a tag together
    return feed_line(state, FeedItem(event.ts, level(event), line, event.task_id))


def tab_panel(state: Board, view: ViewState, now: float, height: int, width: int) -> list[Text]:
    bar = Text()
    for i, name in enumerate(TABS):
        bar.append(f" {i + 1} {name.capitalize()} ", style="reverse bold" if i == view.tab else "dim")
        bar.append(" ")
    name, rows, inner = TABS[view.tab], max(1, height - 3), width - 4
    made = tree_rows(state, view, now) if name == "tasks" else []
    events = list(reversed(state.recent)) if name != "tasks" and view.debug else []
    items = list(reversed(state.feed)) if name != "tasks" and not view.debug else []
    total = len(made) + len(events) + len(items)
    view.page = max(1, rows - 1)
    view.scroll[name] = start = min(view.scroll[name], max(0, total - rows))
    if name == "tasks":
        bar.append(f"depth {view.depth}", style="dim")
        shown = [make() for make in made[start:start + rows]]
        label = min(48, max((r[0].cell_len for r in shown), default=10))
        detail = max(10, inner - label - 19)
        body = [Text.assemble(cell(a, label), " ", cell(b, 10), " ", cell(c, 6, right=True), " ", cell(d, detail))
                for a, b, c, d in shown]
    else:
        body = [debug_line(state, e) for e in events[start:start + rows]] + \
            [feed_line(state, i) for i in items[start:start + rows]]
    more = Text(f" rows {start + 1}-{start + len(body)} of {total} ", style="dim") if total > rows else None
    return box(name, [bar, *body], width, height, "white", subtitle=more)


def progress_bar(state: Board, width: int = 40) -> Text:
    f = state.figures()
    total = max(1, f.total)
    s = state.statuses
    active = sum(s[x] for x in ACTIVE)
    parts = [(f.done, "green", "█"), (f.failed + s["cancelled"] + s["partial"], "red", "█"), (active, "blue", "▒"),
             (f.pending, "dim", "░")]
    bar = Text()
    used = 0
    for count, style, char in parts:
        cells = min(round(count / total * width), width - used)
        bar.append(char * cells, style=style)
        used += cells
    bar.append("░" * (width - used), style="dim")
    bar.append(f" {f.done}/{f.total} done · {f.failed} failed · {active} active · {f.pending} pending")
    return bar


def footer(state: Board, view: ViewState, width: int) -> list[Text]:
    help_line = Text(KEYS_HELP, style="dim")
    if view.footer:
        help_line.append(f" · {view.footer}", style="bold")
    return box("progress", [progress_bar(state), help_line], width, 4, "green")
