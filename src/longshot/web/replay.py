"""Replay in the browser: the state of a run after any number of its events.

The events are read once per run (and again when a live log grew); views at regular
checkpoints are kept, so a frame costs at most one checkpoint's copy plus the events
after it, not the whole run.
"""

from __future__ import annotations

import bisect
import copy

from longshot.events import Event
from longshot.web.model import RunView
from longshot.web.runs import RunLog

CHECKPOINTS = 40
KEPT = 3
"""Replays kept in memory (the runs replayed most recently)."""


class Replay:
    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.times = [e.ts for e in events]
        self.start = self.times[0] if self.times else 0.0
        self.duration = (self.times[-1] - self.start) if self.times else 0.0
        self.every = max(200, len(events) // CHECKPOINTS)
        self._checkpoints: dict[int, RunView] = {0: RunView()}

    def index_at(self, seconds: float) -> int:
        """How many events happened within ``seconds`` of the first."""
        return bisect.bisect_right(self.times, self.start + seconds)

    def offset(self, upto: int) -> float:
        return self.times[upto - 1] - self.start if upto > 0 else 0.0

    def view_at(self, upto: int) -> RunView:
        base = max(i for i in self._checkpoints if i <= upto)
        view = copy.deepcopy(self._checkpoints[base])
        for i in range(base, upto):
            view.apply(self.events[i])
            if (i + 1) % self.every == 0 and i + 1 not in self._checkpoints:
                self._checkpoints[i + 1] = copy.deepcopy(view)
        return view


class Replays:
    """The replay of each run asked for, read again when its log has grown."""

    def __init__(self) -> None:
        self._replays: dict[str, tuple[int, Replay]] = {}

    def get(self, run: RunLog) -> Replay:
        known = self._replays.pop(run.id, None)
        if known is None or known[0] != run.version:
            known = (run.version, Replay(run.events()))
        self._replays[run.id] = known  # most recently used last
        while len(self._replays) > KEPT:
            del self._replays[next(iter(self._replays))]
        return known[1]
