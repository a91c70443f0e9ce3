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
from longshot.errors import ConfigError, LongshotError
from longshot.dashboard.recorded import register
from longshot.web.commands import register as register_web
from longshot.dashboard.output import RunOutput, choose_mode
from longshot.events import Bus, Event, NdjsonSink, new_run_id
from longshot.dashboard.feature_table import render_features
from longshot.preflight.doctor import register as register_doctor
from longshot.preflight import PreflightOptions
from longshot.preflight.start import EndSeen, check_before_run
from longshot.pipeline.status import RunStatus, feature_events, read_status, status_document
from longshot.procs import pidfd_child_watcher
from longshot.clip import clip

HELP = """Longshot plans a build request into tasks, runs workers in parallel, and lands their work.

\b
  longshot doctor                    check settings, endpoints and sandbox
  longshot "<request>" --plan-only   preview the plan and its cost, record it
  longshot --resume                  run the recorded plan
  longshot "<request>"               plan and run (the same as longshot run ...)
  longshot demo                      an offline run of a sample, no key needed
  longshot serve                     the web view of the runs in logs/

Settings come from environment variables or .env (see .env.example).
"""

app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})
SUBCOMMANDS = {"run", "demo", "status", "replay", "watch", "report", "doctor", "serve"}
DASHBOARD_HELP = "The live dashboard (the default on a terminal), or plain lines."


def _version(value: bool) -> None:
    if value:
        typer.echo(f"longshot {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Longshot: plan a build request, run workers in parallel, land their work."""


@app.command()
def run(
    request: Annotated[str | None, typer.Argument(help='What to build, e.g. "Build the API in SPEC.md".')] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print NDJSON events on stdout, nothing else.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Print every event, with details.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume the unfinished run recorded in the repository.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Start over: show what would be deleted, ask, back up, delete.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --reset: do it without asking, and rewind the target branch.")] = False,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard", help=DASHBOARD_HELP)] = None,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Plan, print the tasks and an estimate, record the "
                                                                "plan, and stop before any worker starts.")] = False,
    web: Annotated[bool, typer.Option("--web", help="Also serve the web view (like `longshot serve`) during the run.")] = False,
) -> None:
    """Run a job on GIT_REPO_URL (settings: environment or .env)."""
    try:
        config = load_config()
    except ConfigError as e:
        _fail_config(e)
    if resume and reset:
        _fail_config(ConfigError("--resume and --reset: choose one. Fix: --resume continues the recorded run; "
                                 "--reset starts over"))
    if request is not None and not request.strip():
        _fail_config(ConfigError('the request is blank. Fix: say what to build: longshot "<what to build>"'))
    if not request and not resume and not reset:
        _fail_config(ConfigError('a request is needed. Fix: longshot "<what to build>", or longshot --resume'))
    if plan_only and (resume or not request):
        _fail_config(ConfigError('--plan-only needs a request and no --resume. Fix: longshot "<request>" --plan-only, '
                                 "then longshot --resume to run the plan"))
    if web:
        _start_web(config)
    raise typer.Exit(execute(config, request, json_out=json_out, debug=debug, resume=resume, reset=reset, yes=yes,
                             dashboard=dashboard, plan_only=plan_only))


@app.command()
def demo(
    json_out: Annotated[bool, typer.Option("--json", help="Print NDJSON events on stdout, nothing else.")] = False,
    keep: Annotated[Path | None, typer.Option(help="Directory for the demo (default: a new temporary one).")] = None,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard", help=DASHBOARD_HELP)] = None,
    pace: Annotated[float, typer.Option(min=0, help="Scales the scripted model's thinking time (0: at once).")] = 1.0,
) -> None:
    """Build a bundled sample project offline (no key needed)."""
    from longshot.demo.runner import run_demo

    raise typer.Exit(run_demo(keep, _execute_settings, json_out=json_out, dashboard=dashboard, pace=pace))


def _execute_settings(settings: dict[str, str], request: str, *, json_out: bool, dashboard: bool | None) -> int:
    """`execute` with exactly ``settings`` (the demo's): no ``.env`` file is read."""
    return execute(load_config(settings, env_file=None), request, json_out=json_out, dashboard=dashboard)


@app.command()
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the recorded run and its feature ledger as JSON.")] = False,
) -> None:
    """Show the run recorded in GIT_REPO_URL: plan, features, task states."""
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
    console.print(f"[bold]{state.run_id}[/]: {escape(clip(state.request, 200))}")
    console.print(f"  {state.target_branch} from {state.start_commit[:10]} to {found.tip[:10]}; {done}; "
                  f"{state.spent.tokens:,} tokens, ${state.spent.cost_usd:.4f}")
    groups = found.by_status()
    console.print("  " + ", ".join(f"{len(ts)} {name}" for name, ts in sorted(groups.items())))
    table = Table(box=None, pad_edge=False)
    for column in ("task", "status", "attempts", "description", "why"):
        table.add_column(column, overflow="fold")
    for task in found.tasks:
        table.add_row(task.id, str(task.status), str(task.attempts), escape(clip(task.description, 80)),
                      escape(clip(task.reason, 120)))
    console.print(table)


def _ask(question: str) -> bool:
    return typer.confirm(question, default=True)


def execute(config: Config, request: str | None, *, json_out: bool = False, debug: bool = False,
            resume: bool = False, reset: bool = False, yes: bool = False, dashboard: bool | None = None,
            plan_only: bool = False) -> int:
    """Run one job with ``config``; return the exit code. Used by `run` and `demo`."""
    run_id = new_run_id()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_path = config.longshot_log_dir / f"run-{stamp}-{run_id[-4:]}.ndjson"
    log = NdjsonSink.open(log_path)
    bus = Bus(run_id, [log])
    console = Console(stderr=json_out, highlight=False, soft_wrap=True)
    mode = "plain" if plan_only and not json_out else choose_mode(dashboard, json_out)  # a plan is read, not watched
    output = RunOutput(mode, console, debug=debug)
    bus.add_sink(output.sink)
    ended = EndSeen()
    bus.add_sink(ended)
    confirm = _ask if sys.stdin.isatty() and not json_out else None
    try:
        with output, pidfd_child_watcher():
            return asyncio.run(_run(config, bus, request, log_path, resume=resume, reset=reset, yes=yes,
                                    confirm=confirm, show=console.print, plan_only=plan_only))
    except ConfigError as e:
        ended.fail(bus, 2, e)
        _fail_config(e)
    except LongshotError as e:  # after the start: the summary says so, with the exit status the process has
        ended.fail(bus, 1, e)
        Console(stderr=True, highlight=False).print(f"[red]the run stopped[/]: {escape(str(e))}")
        return 1
    except KeyboardInterrupt:
        if not json_out:
            console.print("[yellow]interrupted[/]")
        return 130
    finally:
        log.close()
        output.finish(log_path)
    return 1


async def _run(config: Config, bus: Bus, request: str | None, log_path: Path, *, resume: bool, reset: bool,
               yes: bool, confirm: Callable[[str], bool] | None, show: Callable[[str], None],
               plan_only: bool = False) -> int:
    from longshot.build import build_model, build_provider, default_budget, fit_to_machine, preflight_options
    from longshot.orchestrator import Orchestrator  # heavy: only a run needs them

    early: list[Event] = []  # said right after run.started (which is always the first event of a run)
    if request or resume:
        try:
            await check_before_run(preflight_options(config), early.append)
        except ConfigError:
            for event in early:
                bus.emit(event)
            raise
    config = fit_to_machine(config, early.append)
    provider = build_provider(config, bus.run_id)
    budget = default_budget(config, early.append)
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
        result = await orchestrator.run(request, log_path=str(log_path), resume=resume, confirm=confirm,
                                        plan_only=plan_only, early=early)
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
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # soft: a URL or path is never broken
    err.print("[red]configuration error[/]")
    err.print(str(e), markup=False)
    raise typer.Exit(2)


register(app)
register_web(app, _configured_secrets)
register_doctor(app, lambda: _doctor_options())


def _doctor_options() -> PreflightOptions:
    from longshot.build import preflight_options

    try:
        return preflight_options(load_config())
    except ConfigError as e:
        _fail_config(e)
        raise  # unreachable: _fail_config exits


def main() -> None:
    """Entry point: ``longshot "<request>"`` is ``longshot run "<request>"``, and so are its flags."""
    args = sys.argv[1:]
    if args and args[0] not in SUBCOMMANDS and args[0] not in ("--help", "-h", "--version"):
        args = ["run", *args]
    app(args=args, prog_name="longshot")
