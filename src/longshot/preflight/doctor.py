"""``longshot doctor``: the preflight of every run, as a table (registered by `register`).

Exit 0 when nothing failed (warnings included), 2 when a check failed, as a run would.
The endpoint probes cost a few hundred tokens at most; the table says how many.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longshot.preflight import Findings, PreflightOptions, preflight
from longshot.preflight.endpoints import PROBE_MAX_TOKENS

MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def show(console: Console, findings: Findings) -> None:
    """The findings as a table, then what the probes cost."""
    table = Table(box=None, pad_edge=False, show_edge=False, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for c in findings.checks:
        detail = escape((f"{c.setting}: " if c.setting and c.status != "ok" else "") + c.detail)
        fix = f"\n[dim]Fix: {escape(c.fix)}[/]" if c.fix and c.status != "ok" else ""
        table.add_row(MARKS[c.status], escape(c.area), detail + fix)
    console.print(table)


def register(app: typer.Typer, load: Callable[[], PreflightOptions]) -> None:
    """Add ``longshot doctor`` to ``app``; ``load`` reads the settings into what is checked (exit 2 on a bad one)."""

    @app.command("doctor")
    def _doctor() -> None:
        """Check settings, endpoints, sandbox and target (seconds)."""
        options = load()
        console = Console(highlight=False, soft_wrap=True)
        endpoints = len(options.endpoints)
        console.print(f"Checking {endpoints} endpoint(s) with one tiny request per model (at most "
                      f"{PROBE_MAX_TOKENS} answer tokens each), the sandbox, git and {escape(options.repo_url)} ...")
        started = time.monotonic()
        findings = asyncio.run(preflight(options, content=True))
        show(console, findings)
        failed, warned = len(findings.failures), len(findings.warnings)
        console.print(f"\n{len(findings.checks)} checks in {time.monotonic() - started:.1f} s: {failed} failed, "
                      f"{warned} warning(s); the probes used {findings.tokens:,} tokens.")
        if failed:
            console.print("[red]A run would stop here (exit 2).[/] Fix the settings named above.")
            raise typer.Exit(2)
        console.print("[green]Ready to run.[/] Preview a plan first: longshot \"<request>\" --plan-only")
