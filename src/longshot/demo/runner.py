"""Runs the demo: a fresh copy of the sample project, the scripted model, a real run.

The sample becomes a bare repository (the "remote") in a temporary directory; the fake
model serves on a free loopback port; the run is configured explicitly (no environment or
``.env`` is read) and ends with a clone of the result next to it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from importlib.resources import as_file, files
from pathlib import Path
from typing import Protocol

from rich.console import Console

from longshot.dashboard.report import report_dir
from longshot.dashboard.sources import newest_log
from longshot.demo.script import MODELS, REQUEST, demo_script
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.repos import git, make_remote


def command_name() -> str:
    """How to type ``longshot`` here: the bare name when it is on PATH (and is this install),
    else the path of the script that is running, else ``python -m longshot``."""
    me = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("longshot")
    if found and me is not None and Path(found).resolve() == me:
        return "longshot"
    if me is not None and me.name == "longshot" and me.is_file():
        return str(me)
    return f"{sys.executable} -m longshot"


class Execute(Protocol):
    """Runs ``request`` with the settings ``settings`` (no ``.env``); the CLI passes it in, so the demo
    imports neither the CLI nor `Config`."""

    def __call__(self, settings: dict[str, str], request: str, *, json_out: bool, dashboard: bool | None) -> int:
        ...


def run_demo(directory: Path | None, execute: Execute, *, json_out: bool = False, dashboard: bool | None = None,
             pace: float = 1.0) -> int:
    """Run the demo in ``directory`` (a new temporary one by default) with ``execute``; the run's exit code."""
    console = Console(stderr=json_out, highlight=False, soft_wrap=True)
    base = (directory or Path(tempfile.mkdtemp(prefix="longshot-demo-"))).resolve()
    base.mkdir(parents=True, exist_ok=True)
    with as_file(files("longshot.demo").joinpath("sample")) as sample:
        remote = make_remote(base, source=sample, name="wordkit.git")
    isolation = "bubblewrap" if shutil.which("bwrap") else "none"
    if isolation == "none":
        console.print("[yellow]bubblewrap is not installed: the demo's scripted workers run without isolation.[/]")
    prices = base / "prices.json"  # the scripted models, priced like a small hosted model
    prices.write_text(json.dumps({name: [0.4, 1.6] for name in MODELS}))
    with FakeLLM(demo_script(sys.executable, pace), models=MODELS) as fake:
        settings = {
            "GIT_REPO_URL": str(remote), "LLM_BASE_URL": fake.base_url, "LLM_API_KEY": "demo",
            "PLANNER_MODEL": "demo-planner", "WORKER_MODEL": "demo-worker", "LLM_MODEL": "demo-worker",
            "RECONCILER_MODEL": "demo-reconciler",
            "MAX_WORKERS": "4", "SANDBOX_ISOLATION": isolation,
            "CHECK_COMMANDS": json.dumps([f"{sys.executable} -m unittest discover -s tests -t ."]),
            "LONGSHOT_WORK_DIR": str(base / ".longshot"), "LONGSHOT_LOG_DIR": str(base / "logs"),
            "LLM_PRICES_FILE": str(prices),
        }
        code = execute(settings, REQUEST, json_out=json_out, dashboard=dashboard)
        unscripted = fake.errors
    result = base / "wordkit"
    git("clone", "--quiet", str(remote), str(result), cwd=base)
    log = newest_log(base / "logs")
    report = report_dir(log) / "report.md" if log is not None else base / "logs"
    console.print(f"\nThe result is in [bold]{result}[/] (remote: {remote}).\nThe report is in [bold]{report}[/]; "
                  f"the event log is {log}.", soft_wrap=True)
    console.print(f"Watch it again: {command_name()} replay {log}", soft_wrap=True, markup=False)
    if unscripted:
        console.print(f"[red]the scripted model was asked for something it had no answer to: {unscripted[0]}[/]")
        return code or 1
    return code
