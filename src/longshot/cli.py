"""The command line: ``longshot "<request>"`` runs a job; ``longshot demo`` runs offline.

Exit codes (DESIGN §3.1): 0 finished green with every completed task landed; 1 finished
but not green or work left unlanded; 2 bad configuration or usage; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from longshot import __version__
from longshot.config import Config, load_config
from longshot.errors import ConfigError
from longshot.dashboard.commands import register
from longshot.dashboard.output import RunOutput, choose_mode
from longshot.events import Bus, NdjsonSink, new_run_id
from longshot.llm.budget import RunBudget

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Massively parallel autonomous coding.")
SUBCOMMANDS = {"run", "demo", "replay", "watch", "report"}
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
    request: Annotated[str, typer.Argument(help='What to build, e.g. "Build the API in SPEC.md".')],
    json_out: Annotated[bool, typer.Option("--json", help="Print NDJSON events on stdout, nothing else.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Print every event, with details.")] = False,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard", help=DASHBOARD_HELP)] = None,
) -> None:
    """Run a job on GIT_REPO_URL (configured by environment variables or .env)."""
    try:
        config = load_config()
    except ConfigError as e:
        _fail_config(e)
    raise typer.Exit(execute(config, request, json_out=json_out, debug=debug, dashboard=dashboard))


@app.command()
def demo(
    json_out: Annotated[bool, typer.Option("--json", help="Print NDJSON events on stdout, nothing else.")] = False,
    keep: Annotated[Path | None, typer.Option(help="Directory for the demo (default: a new temporary one).")] = None,
    dashboard: Annotated[bool | None, typer.Option("--dashboard/--no-dashboard", help=DASHBOARD_HELP)] = None,
    pace: Annotated[float, typer.Option(min=0.25, help="Scales the scripted model's thinking time (at least 0.25).")] = 1.0,
) -> None:
    """Build the bundled sample project offline with the bundled scripted model."""
    from longshot.demo.runner import run_demo

    raise typer.Exit(run_demo(keep, json_out=json_out, dashboard=dashboard, pace=pace))


def execute(config: Config, request: str, *, json_out: bool = False, debug: bool = False,
            dashboard: bool | None = None) -> int:
    """Run one job with ``config``; return the exit code. Used by `run` and `demo`."""
    run_id = new_run_id()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_path = config.longshot_log_dir / f"run-{stamp}-{run_id[-4:]}.ndjson"
    log = NdjsonSink.open(log_path)
    bus = Bus(run_id, [log])
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    output = RunOutput(choose_mode(dashboard, json_out), console, debug=debug)
    bus.add_sink(output.sink)
    try:
        with output:
            return asyncio.run(_run(config, bus, request, log_path))
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


async def _run(config: Config, bus: Bus, request: str, log_path: Path) -> int:
    from longshot.orchestrator import Orchestrator, build_model, build_provider  # heavy: only a run needs it

    provider = build_provider(config)
    budget = RunBudget(max_tokens=config.run_max_tokens, max_cost_usd=config.run_max_cost_usd)
    requests = log_path.with_name(log_path.name.replace("run-", "requests-", 1))
    model = build_model(config, bus, budget, requests)
    try:
        orchestrator = Orchestrator(config, bus, model, provider, budget)
        result = await orchestrator.run(request, log_path=str(log_path))
        return result.exit_code
    finally:
        await model.aclose()


def _fail_config(e: ConfigError) -> None:
    Console(stderr=True, highlight=False).print(f"[red]configuration error[/]\n{e}", markup=True)
    raise typer.Exit(2)


register(app)


def main() -> None:
    """Entry point: ``longshot "<request>"`` is ``longshot run "<request>"``."""
    args = sys.argv[1:]
    if args and args[0] not in SUBCOMMANDS and not args[0].startswith("-"):
        args = ["run", *args]
    elif args and args[0] in ("--json", "--debug", "--dashboard", "--no-dashboard"):
        args = ["run", *args]
    app(args=args, prog_name="longshot")
