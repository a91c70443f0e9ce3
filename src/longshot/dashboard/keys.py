"""What the dashboard's keys change: the tab, scrolling, tree depth and details.

`ViewState` is separate from the run state (`dashboard/state.py`), which only events change;
the frame (`dashboard/view.py`) and the task tree (`dashboard/tree.py`) read both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABS = ("tasks", "activity")


@dataclass
class ViewState:
    """What the keys change. Timers turn yellow after ``warn_after`` and red after ``alert_after`` seconds."""

    tab: int = 0
    scroll: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABS, 0))
    depth: int = 4
    debug: bool = False
    warn_after: float = 180.0
    alert_after: float = 300.0
    footer: str = ""
    """An extra line for the footer (e.g. ``replay finished · q quits``)."""
    page: int = 10

    def key(self, key: str) -> bool:
        """Apply one key; False when it is not a dashboard key."""
        name = TABS[self.tab]
        moves = {"up": -1, "k": -1, "w": -1, "down": 1, "j": 1, "s": 1, "pgup": -self.page, "pgdn": self.page,
                 " ": self.page}
        if key in ("tab", "right", "l", "]"):
            self.tab = (self.tab + 1) % len(TABS)
        elif key in ("shift-tab", "left", "h", "["):
            self.tab = (self.tab - 1) % len(TABS)
        elif key in ("1", "t", "2", "a"):
            self.tab = 0 if key in ("1", "t") else 1
        elif key in moves:
            self.scroll[name] = max(0, self.scroll[name] + moves[key])
        elif key == "home":
            self.scroll[name] = 0
        elif key in ("+", "=", "-", "_"):
            self.depth = min(9, self.depth + 1) if key in ("+", "=") else max(1, self.depth - 1)
        elif key == "d":
            self.debug = not self.debug
        else:
            return False
        return True
