"""Drawing primitives of the dashboard: fixed-width cells, boxed panels, a frame of lines, number formats.

A frame is a list of `Text` rows, each exactly as wide as the terminal, drawn by `Lines`
as they are: no wrapping, measuring or nested layouts. That keeps a 200x60 frame to a few
milliseconds (bench/dashboard_bench.py), where rich's Layout, Panel and Table cost several
times more at 4 frames a second.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.text import Text

SPARK = "▁▂▃▄▅▆▇█"


def duration(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def amount(n: float) -> str:
    """1234 -> 1.2k, 3456789 -> 3.5M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{n:.0f}"


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, round(v / top * (len(SPARK) - 1)))] for v in values)


def cell(text: Text | str, width: int, *, right: bool = False) -> Text:
    """``text`` in exactly ``width`` cells: cut with an ellipsis, or padded (on the left when ``right``).

    A `Text` passed in is changed: callers build their texts afresh for every frame.
    """
    if width <= 0:  # a panel squeezed to nothing: rich would still leave its ellipsis
        return Text("")
    t = Text(text) if isinstance(text, str) else text
    if right and t.cell_len < width:
        t = Text(" " * (width - t.cell_len)) + t
    t.truncate(max(0, width), overflow="ellipsis", pad=True)
    return t


def box(title: Text | str, rows: list[Text], width: int, height: int, style: str, *,
        subtitle: Text | None = None, title_right: bool = False) -> list[Text]:
    """A panel ``width`` x ``height`` with a rounded border, ``title`` on it and ``rows`` inside."""
    inner = width - 4
    head = Text(f" {title} ", style="bold") if isinstance(title, str) else Text.assemble(" ", title, " ")
    head.truncate(max(0, width - 5), overflow="ellipsis")
    rule = "─" * max(0, width - 3 - head.cell_len)
    top = Text.assemble(("╭", style), (rule, style), head, ("─╮", style)) if title_right else \
        Text.assemble(("╭─", style), head, (rule + "╮", style))
    out = [top]
    for row in rows[: max(0, height - 2)]:
        out.append(Text.assemble(("│ ", style), cell(row, inner), (" │", style)))
    blank = Text.assemble(("│", style), " " * (width - 2), ("│", style))
    out += [blank] * (height - 1 - len(out))
    tail = Text("") if subtitle is None else subtitle
    tail.truncate(max(0, width - 3), overflow="ellipsis")
    out.append(Text.assemble(("╰" + "─" * max(0, width - 3 - tail.cell_len), style), tail, ("─╯", style)))
    return out[:height]


def pairs(rows: list[tuple[str, Text | str]], width: int, label: int = 15) -> list[Text]:
    """``label  value`` rows for the left panels."""
    return [Text.assemble(cell(Text(name, style="dim"), label), " ", cell(value, width - 5 - label))
            for name, value in rows]


class Lines:
    """Rows drawn as they are, one per line (each is already as wide as the screen)."""

    def __init__(self, rows: list[Text]) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for i, row in enumerate(self.rows):
            if row.cell_len > width:
                row.truncate(width, overflow="crop")
            yield from row.render(console)
            if i < len(self.rows) - 1:
                yield Segment.line()


def cost_text(cost_usd: float, unpriced: list[str]) -> str:
    """``$0.1234``; with a model of unknown price, never a bare $0: ``unknown (no price for m)``."""
    if not unpriced:
        return f"${cost_usd:.4f}"
    names = ", ".join(unpriced)
    return f"unknown (no price for {names})" if cost_usd == 0 else f"at least ${cost_usd:.4f} (no price for {names})"
