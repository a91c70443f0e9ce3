"""Live pages: server-sent events carrying the parts of a page that changed.

One `Broadcaster` task polls the logs that someone is watching (every ``poll`` seconds),
and when a log brought events it renders the watched page's parts once, at most every
``coalesce`` seconds, and sends only the parts that changed to every subscriber of that
page, as one ``parts`` event: ``{"parts": {id: html}, "events": n, "last_ts": t}``. A
hundred workers writing fifty events a second thus cost a few renders a second, however
many browsers look; a page that takes long to draw (a run of thousands of tasks) is drawn
less often (`COST_RATIO`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from longshot.web.runs import RunIndex, RunLog

Render = Callable[[RunLog, str], dict[str, str]]
"""(run, page key) -> {element id: inner HTML}; the page key is ``run`` or ``task:<id>``."""
KEEPALIVE = 15.0
COST_RATIO = 20
"""A page is drawn again no sooner than this many times its last drawing's CPU time, so however
large a run grows, drawing it live costs at most 1/COST_RATIO of a core (5%)."""
LOG = logging.getLogger("longshot.web")


@dataclass
class Page:
    """One watched page of one run."""

    run: RunLog
    key: str
    queues: set[asyncio.Queue[str]] = field(default_factory=set)
    version: int = -1
    parts: dict[str, str] = field(default_factory=dict)
    rendered_at: float = 0.0
    cost: float = 0.0
    """CPU seconds its last drawing took."""


class Broadcaster:
    def __init__(self, index: RunIndex, render: Render, *, poll: float = 0.1, coalesce: float = 0.2) -> None:
        self.index, self.render, self.poll, self.coalesce = index, render, poll, coalesce
        self.pages: dict[tuple[str, str], Page] = {}
        self.renders = 0

    async def run(self) -> None:
        """Poll and push until cancelled."""
        while True:
            await asyncio.sleep(self.poll)
            self.tick()

    def tick(self) -> None:
        now = time.monotonic()
        for run in {p.run.id: p.run for p in self.pages.values()}.values():
            while run.refresh():
                pass
        for page in list(self.pages.values()):
            if page.run.version != page.version and now - page.rendered_at >= max(self.coalesce, page.cost * COST_RATIO):
                self._push(page, now)

    def _push(self, page: Page, now: float) -> None:
        started = time.thread_time()
        try:
            parts = self.render(page.run, page.key)
        except Exception:  # a page that cannot be drawn must not stop the others' updates
            page.version, page.rendered_at = page.run.version, now
            LOG.exception("could not draw %s of %s", page.key, page.run.id)
            return
        self.renders += 1
        page.cost = time.thread_time() - started
        changed = {k: v for k, v in parts.items() if page.parts.get(k) != v}
        page.parts, page.version, page.rendered_at = parts, page.run.version, now
        if changed:
            message = _message(changed, page.run)
            for queue in page.queues:
                _offer(queue, message, lambda: _message(parts, page.run))

    async def subscribe(self, run: RunLog, key: str, since: int) -> AsyncIterator[str]:
        """SSE lines for one browser: everything at once if the page it has is older than ``since``, then changes."""
        page = self.pages.setdefault((run.id, key), Page(run, key))
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=8)
        page.queues.add(queue)
        try:
            while run.refresh():
                pass
            if since != run.version:
                yield _message(self.render(run, key), run)
            yield ": connected\n\n"
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
        finally:
            page.queues.discard(queue)
            if not page.queues:
                self.pages.pop((run.id, key), None)


def _message(parts: dict[str, str], run: RunLog) -> str:
    data = json.dumps({"parts": parts, "events": run.view.events, "last_ts": run.view.state.now,
                       "version": run.version})
    return f"event: parts\ndata: {data}\n\n"


def _offer(queue: asyncio.Queue[str], message: str, whole: Callable[[], str]) -> None:
    """A browser that does not keep up gets its queue replaced by the whole page, so no change is lost."""
    try:
        queue.put_nowait(message)
    except asyncio.QueueFull:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(whole())
