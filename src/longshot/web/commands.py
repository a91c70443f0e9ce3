"""``longshot serve``: the web view of every run in a log folder. Added to the CLI by `register`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from longshot.errors import ConfigError
from longshot.web.serve import DEFAULT_PORT, Started, start

LOG_DIR = typer.Option("--log-dir", help="Where run logs are (default: LONGSHOT_LOG_DIR or ./logs).")
PORT = typer.Option(help="Port (the next free one is taken if it is busy; 0: any).", min=0, max=65535)
HOST = typer.Option(help="Address to bind. Anything but 127.0.0.1 exposes the runs to the network "
                         "(the token still guards them).")
WORK_DIR = typer.Option("--work-dir", help="Where Longshot keeps its hubs, to read diffs from "
                                           "(default: LONGSHOT_WORK_DIR or ./.longshot).")


def announce(started: Started, log_dir: Path) -> None:
    """Print the address with its token on stderr (stdout may be NDJSON)."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"web view of the runs in {log_dir.resolve()}:\n    [bold]{started.url}[/]\n"
                  "(the token in the address is the only way in; keep it to yourself)")


def register(app: typer.Typer, secrets: Callable[[], list[str]]) -> None:
    """Add ``serve`` to the CLI; ``secrets`` gives the configured API keys to redact (the CLI reads the config)."""

    def serve(
        log_dir: Annotated[Path | None, LOG_DIR] = None,
        port: Annotated[int, PORT] = DEFAULT_PORT,
        host: Annotated[str, HOST] = "127.0.0.1",
        work_dir: Annotated[Path | None, WORK_DIR] = None,
    ) -> None:
        """Serve a web view of every run in the log folder, live ones included, until Ctrl-C."""
        where = log_dir or Path(os.environ.get("LONGSHOT_LOG_DIR", "logs"))
        hubs = work_dir or Path(os.environ.get("LONGSHOT_WORK_DIR", ".longshot"))
        try:
            started, run = start(where, host=host, port=port, secrets_=secrets(), work_dir=hubs)
        except ConfigError as e:
            Console(stderr=True, highlight=False).print(f"[red]configuration error[/]\n{escape(str(e))}")
            raise typer.Exit(2) from None
        announce(started, where)
        run()

    app.command()(serve)
