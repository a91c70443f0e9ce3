"""The web application: pages over the runs of a log folder, live parts over server-sent events.

Pages: ``/`` (the runs), ``/runs/<run>`` (a run, live), ``/runs/<run>/tasks/<task>``,
``/runs/<run>/commits/<sha>`` (a landing commit), ``/runs/<run>/features`` and
``/runs/<run>/replay`` (a finished run stepped through in time, frames from ``/runs/<run>/frame``). Everything is drawn on the server from Jinja templates
(autoescaped); the browser runs one small script of our own and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from longshot.redaction import Redactor
from longshot.web import views
from longshot.web.guard import RedactBodies, TokenGate
from longshot.web.live import Broadcaster
from longshot.web.replay import Replays
from longshot.web.runs import RunIndex, RunLog, summarize
from longshot.web.task_sources import conversations, diff, repositories

PLAIN_KEPT = 5000
RUN_PARTS = ("summary", "tree", "workers", "merge", "charts", "alerts", "feed")


@dataclass
class Settings:
    log_dir: Path
    token: str
    port: int
    redact: Redactor
    work_dir: Path | None = None
    """Where Longshot keeps its hubs (LONGSHOT_WORK_DIR): a second place to read a task's diff from."""


class Pages:
    """Renders pages and their live parts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.index = RunIndex(settings.log_dir, settings.redact)
        self.env = Environment(loader=PackageLoader("longshot.web", "templates"), autoescape=select_autoescape(),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(v=views, when=views.when, duration=views.duration, status_class=views.status_class,
                                plain=self.plain)
        self._plain: dict[str, str] = {}
        self.replays = Replays()

    def plain(self, markup: str) -> str:
        """The text of a feed line; remembered, as the same lines are drawn again at every update."""
        text = self._plain.get(markup)
        if text is None:
            if len(self._plain) > PLAIN_KEPT:
                self._plain.clear()
            text = self._plain[markup] = views.plain(markup)
        return text

    def run_or_404(self, run_id: str) -> RunLog:
        run = self.index.get(run_id)
        if run is None:
            raise HTTPException(404, f"no run {run_id} in {self.settings.log_dir}")
        return run

    def run_context(self, run: RunLog, view: Any) -> dict[str, Any]:
        s = view.state
        return {"run": run, "view": view, "s": s, "figures": s.figures(), "now": s.now, "tree": views.tree(view),
                "busy": views.busy(view), "merging": views.merging(view), "landings": views.landings_chart(view),
                "cost": views.cost_chart(view), "alerts": list(view.alerts)[-50:][::-1],
                "feed": list(s.feed)[-60:][::-1]}

    def part(self, name: str, context: dict[str, Any]) -> str:
        return self.env.get_template(f"parts/{name}.html").render(context)

    def run_parts(self, run: RunLog, view: Any) -> dict[str, str]:
        context = self.run_context(run, view)
        return {name: self.part(name, context) for name in RUN_PARTS}

    def task_context(self, run: RunLog, task_id: str) -> dict[str, Any]:
        row = run.view.state.tasks.get(task_id)
        if row is None:
            raise HTTPException(404, f"no task {task_id} in run {run.id}")
        return {"run": run, "row": row, "extra": run.view.tasks.get(task_id), "s": run.view.state,
                "children": [run.view.state.tasks[c] for c in row.children if c in run.view.state.tasks]}

    def live(self, run: RunLog, key: str) -> dict[str, str]:
        if key.startswith("task:"):
            return {"task-live": self.part("task_live", self.task_context(run, key[5:]))}
        return self.run_parts(run, run.view)

    def page(self, template: str, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(template).render(context))


def build_app(settings: Settings, *, poll: float = 0.1, coalesce: float = 0.2) -> Any:
    """The ASGI application, behind the token gate and the body redaction."""
    pages = Pages(settings)
    broadcaster = Broadcaster(pages.index, pages.live, poll=poll, coalesce=coalesce)

    async def runs(request: Request) -> Response:
        now = time.time()
        found = [summarize(r, now) for r in pages.index.scan()]
        return pages.page("runs.html", runs=found, log_dir=settings.log_dir)

    async def run_page(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        return pages.page("run.html", **pages.run_context(run, run.view), parts=pages.run_parts(run, run.view),
                          live=True)

    async def replay_page(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        replay = pages.replays.get(run)
        view = replay.view_at(len(replay.events))
        return pages.page("run.html", **pages.run_context(run, view), parts=pages.run_parts(run, view), live=False,
                          replay=replay)

    async def frame(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        replay = pages.replays.get(run)
        try:
            upto = replay.index_at(float(request.query_params["at"])) if "at" in request.query_params \
                else int(request.query_params.get("upto", len(replay.events)))
        except ValueError:
            raise HTTPException(400, "at must be seconds, upto a number of events") from None
        upto = max(0, min(upto, len(replay.events)))
        view = replay.view_at(upto)
        return JSONResponse({"parts": pages.run_parts(run, view), "upto": upto, "total": len(replay.events),
                             "at": replay.offset(upto)})

    async def task_page(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        context = pages.task_context(run, request.path_params["task"])
        extra = context["extra"]
        commit = next((h.commit for h in reversed(extra.handoffs) if h.commit), None) if extra else None
        if commit is None and context["row"].commit:
            commit = context["row"].commit
        places = repositories(run.view.state.repo, settings.work_dir)
        where, text = await diff(commit or "", places, settings.redact)
        talks = await asyncio.to_thread(conversations, run.requests_path, context["row"].id, settings.redact)
        return pages.page("task.html", **context, commit=commit, diff_from=where, diff=text, conversations=talks,
                          live_part=pages.part("task_live", context))

    async def commit_page(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        commit = request.path_params["commit"]
        landed = next((t.id for t in run.view.state.tasks.values() if t.commit == commit), None)
        where, text = await diff(commit, repositories(run.view.state.repo, settings.work_dir), settings.redact)
        return pages.page("commit.html", run=run, commit=commit, task=landed, diff_from=where, diff=text)

    async def features(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        state = run.view.state
        return pages.page("features.html", run=run, s=state, features=list(state.features.values()),
                          counts=state.feature_counts(), claims=state.claims)

    async def stream(request: Request) -> Response:
        run = pages.run_or_404(request.path_params["run"])
        key = request.query_params.get("key", "run")
        if key.startswith("task:"):
            pages.task_context(run, key[5:])  # 404 for an unknown task
        elif key != "run":
            raise HTTPException(400, "key is run or task:<id>")
        try:
            since = int(request.query_params.get("since", "-1"))
        except ValueError:
            since = -1
        events = broadcaster.subscribe(run, key, since)
        return StreamingResponse(events, media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(broadcaster.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(routes=[
        Route("/", runs), Route("/runs/{run}", run_page), Route("/runs/{run}/stream", stream),
        Route("/runs/{run}/replay", replay_page), Route("/runs/{run}/frame", frame),
        Route("/runs/{run}/features", features), Route("/runs/{run}/tasks/{task}", task_page),
        Route("/runs/{run}/commits/{commit}", commit_page),
        Mount("/static", StaticFiles(packages=[("longshot.web", "static")]), name="static"),
    ], lifespan=lifespan)
    app.state.broadcaster = broadcaster
    app.state.pages = pages
    return TokenGate(RedactBodies(app, settings.redact), settings.token, settings.port)
