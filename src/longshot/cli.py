"""The command line: ``longshot "<request>"`` runs a job; ``longshot demo`` runs offline.

Exit codes (DESIGN §3.1): 0 finished green with every completed task landed; 1 finished
but not green or work left unlanded; 2 bad configuration or usage; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longshot import __version__
from longshot.budget import RunBudget
from longshot.config import Config, load_config
from longshot.dashboard.commands import register
from longshot.web.commands import register as register_web
from longshot.dashboard.output import RunOutput, choose_mode
from longshot.errors import ConfigError
from longshot.events import Bus, NdjsonSink, new_run_id
from longshot.dashboard.features import render_features
from longshot.pipeline.status import RunStatus, feature_events, read_status, status_document
from longshot.procs import pidfd_child_watcher

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Massively parallel autonomous coding.")
SUBCOMMANDS = {"run", "demo", "status", "replay", "watch", "report", "serve"}
DASHBOARD_HELP = "The live dashboard (the default on a terminal), or plain lines."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"longshot {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Longshot plans a build request into tasks, runs workers in parallel, and lands their work."""


@app.command()
def run(
    request: Annotated[str | None, typer.Argument(help='What to build, e.g. "Build the API in SPEC.md".')] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print NDJSON events on stdout, nothing else.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Print every event, with details.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume the unfinished run recorded in the repository.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Start over: show what would be deleted, ask, back up, delete.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --reset: do it without asking, and rewind the target branch.")] = False,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard", help=DASHBOARD_HELP)] = None,
    web: Annotated[bool, typer.Option("--web", help="Also serve the web view (like `longshot serve`) during the run.")] = False,
) -> None:
    """Run a job on GIT_REPO_URL (configured by environment variables or .env)."""
    try:
        config = load_config()
    except ConfigError as e:
        _fail_config(e)
    if resume and reset:
        _fail_config(ConfigError("--resume and --reset: choose one. Fix: --resume continues the recorded run; "
                                 "--reset starts over"))
    if not request and not resume and not reset:
        _fail_config(ConfigError('a request is needed. Fix: longshot "<what to build>", or longshot --resume'))
    if web:
        _start_web(config)
    raise typer.Exit(execute(config, request, json_out=json_out, debug=debug, resume=resume, reset=reset, yes=yes,
                             dashboard=dashboard))


@app.command()
def demo(
    json_out: Annotated[bool, typer.Option("--json", help="Print NDJSON events on stdout, nothing else.")] = False,
    keep: Annotated[Path | None, typer.Option(help="Directory for the demo (default: a new temporary one).")] = None,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard", help=DASHBOARD_HELP)] = None,
    pace: Annotated[float, typer.Option(min=0, help="Scales the scripted model's thinking time (0: at once).")] = 1.0,
) -> None:
    """Build the bundled sample project offline with the bundled scripted model."""
    from longshot.demo.runner import run_demo

    raise typer.Exit(run_demo(keep, _execute_settings, json_out=json_out, dashboard=dashboard, pace=pace))


def _execute_settings(settings: dict[str, str], request: str, *, json_out: bool, dashboard: bool | None) -> int:
    """`execute` with exactly ``settings`` (the demo's): no ``.env`` file is read."""
    return execute(load_config(settings, env_file=None), request, json_out=json_out, dashboard=dashboard)


@app.command()
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the recorded run and its feature ledger as JSON.")] = False,
) -> None:
    """Show the run recorded in GIT_REPO_URL: its plan, its features, and what is running, landed and failed."""
    try:
        # status only reads git: the model settings a run needs are not asked for
        config = load_config(overrides={"llm_endpoints": None, "llm_base_url": "http://unused.invalid",
                                        "llm_model": "unused"})
        found = asyncio.run(read_status(config.git_repo_url, config.git_main_branch,
                                        (config.git_commit_name, config.git_commit_email)))
    except ConfigError as e:
        _fail_config(e)
    console = Console(highlight=False, soft_wrap=True)
    if found is None:
        console.print(f"No run is recorded in {config.git_repo_url} for branch {config.git_main_branch}.")
        raise typer.Exit(1)
    if json_out:
        typer.echo(json.dumps(status_document(found), indent=1))
        return
    _render_status(console, found)
    render_features(console, feature_events(found))


def _render_status(console: Console, found: RunStatus) -> None:
    state = found.state
    done = "finished (exit {})".format(state.exit_code) if state.finished else "unfinished (resume with --resume)"
    console.print(f"[bold]{state.run_id}[/]: {escape(state.request[:200])}")
    console.print(f"  {state.target_branch} from {state.start_commit[:10]} to {found.tip[:10]}; {done}; "
                  f"{state.spent.tokens:,} tokens, ${state.spent.cost_usd:.4f}")
    groups = found.by_status()
    console.print("  " + ", ".join(f"{len(ts)} {name}" for name, ts in sorted(groups.items())))
    table = Table(box=None, pad_edge=False)
    for column in ("task", "status", "attempts", "description", "why"):
        table.add_column(column, overflow="fold")
    for task in found.tasks:
        table.add_row(task.id, str(task.status), str(task.attempts), escape(task.description[:80]),
                      escape(task.reason[:120]))
    console.print(table)


def _ask(question: str) -> bool:
    return typer.confirm(question, default=True)


def execute(config: Config, request: str | None, *, json_out: bool = False, debug: bool = False,
            resume: bool = False, reset: bool = False, yes: bool = False, dashboard: bool | None = None) -> int:
    """Run one job with ``config``; return the exit code. Used by `run` and `demo`."""
    run_id = new_run_id()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_path = config.longshot_log_dir / f"run-{stamp}-{run_id[-4:]}.ndjson"
    log = NdjsonSink.open(log_path)
    bus = Bus(run_id, [log])
    console = Console(stderr=json_out, highlight=False, soft_wrap=True)
    output = RunOutput(choose_mode(dashboard, json_out), console, debug=debug)
    bus.add_sink(output.sink)
    confirm = _ask if sys.stdin.isatty() and not json_out else None
    try:
        with output, pidfd_child_watcher():
            return asyncio.run(_run(config, bus, request, log_path, resume=resume, reset=reset, yes=yes,
                                    confirm=confirm, show=console.print))
    except ConfigError as e:
        _fail_config(e)
    except KeyboardInterrupt:
        if not json_out:
            console.print("[yellow]interrupted[/]")
        return 130
    finally:
        log.close()
        output.finish(log_path)
    return 1


async def _run(config: Config, bus: Bus, request: str | None, log_path: Path, *, resume: bool, reset: bool,
               yes: bool, confirm: Callable[[str], bool] | None, show: Callable[[str], None]) -> int:
    from longshot.build import build_model, build_provider  # heavy: only a run needs them
    from longshot.orchestrator import Orchestrator

    provider = build_provider(config, bus.run_id)
    budget = RunBudget(max_tokens=config.run_max_tokens, max_cost_usd=config.run_max_cost_usd)
    requests = log_path.with_name(log_path.name.replace("run-", "requests-", 1))
    model = build_model(config, bus, budget, requests)
    try:
        orchestrator = Orchestrator(config, bus, model, provider, budget)
        if reset:
            if not await orchestrator.reset(yes=yes, confirm=confirm, show=show):
                return 2
            if not request:
                return 0
            orchestrator = Orchestrator(config, bus, model, provider, budget)
        result = await orchestrator.run(request, log_path=str(log_path), resume=resume, confirm=confirm)
        return result.exit_code
    finally:
        await model.aclose()


def _configured_secrets() -> list[str]:
    """The API keys of the configuration here, when there is one (the web view redacts them)."""
    try:
        return load_config().secrets()
    except (ConfigError, ValueError):
        return []


def _start_web(config: Config) -> None:
    from longshot.web.commands import announce
    from longshot.web.serve import start_in_thread

    try:
        started = start_in_thread(config.longshot_log_dir, secrets_=config.secrets(), work_dir=config.longshot_work_dir)
    except ConfigError as e:
        _fail_config(e)
    announce(started, config.longshot_log_dir)


def _fail_config(e: ConfigError) -> None:
    Console(stderr=True, highlight=False).print(f"[red]configuration error[/]\n{escape(str(e))}", markup=True)
    raise typer.Exit(2)


register(app)
register_web(app, _configured_secrets)


def main() -> None:
    """Entry point: ``longshot "<request>"`` is ``longshot run "<request>"``, and so are its flags."""
    args = sys.argv[1:]
    if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h", "--version"):
        args = ["run", *args]
    app(args=args, prog_name="longshot")
