"""Least exposure, in the README's own layout (issue 15 item 1).

A clone under HOME with its ``.venv`` inside and a ``.env`` holding the API key beside it,
``~/.cargo/bin`` on PATH with ``~/.cargo/credentials.toml`` beside it, another task's
checkout in the work directory, a file only host root may read inside a folder the sandbox
does see, and host sockets (a file socket in that folder, an abstract one). The real CLI
runs from the clone with its venv's interpreter; the scripted worker probes all of that
through the bash tool, and runs pytest. Nothing may be read or reached, the checks still
run, and no canary shows in model requests, logs, reports, git or the host.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn
from longshot.testing.repos import git

from helpers import plan_json, planner_then_done

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PID = os.getpid()
CANARIES = {"env": f"sk-canary-env-{PID}", "cargo": f"cargo-canary-{PID}", "other": f"other-task-canary-{PID}",
            "root": f"root-only-canary-{PID}"}
TARGET = {"calc/__init__.py": "", "tests/test_smoke.py": "def test_smoke():\n    import calc\n"}


def readme_layout(tmp_path: Path) -> dict[str, Path]:
    """HOME with ~/longshot (a clone, .venv inside, .env beside it) and ~/.cargo (bin, credentials)."""
    home = tmp_path / "home"
    clone = home / "longshot"
    clone.mkdir(parents=True)
    home.chmod(0o700)
    git("init", "--quiet", str(clone), cwd=tmp_path)
    (clone / ".env").write_text(f"LLM_API_KEY={CANARIES['env']}\n")
    venv = clone / ".venv"
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    # Longshot itself and its dependencies, from this checkout (what `pip install -e .` gives).
    site = next(venv.glob("lib/python3*/site-packages"))
    here = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    (site / "longshot-dev.pth").write_text(f"{Path(__file__).parents[2] / 'src'}\n{here}\n")
    cargo = home / ".cargo"
    (cargo / "bin").mkdir(parents=True)
    (cargo / "credentials.toml").write_text(f'[registry]\ntoken = "{CANARIES["cargo"]}"\n')
    root_only = venv / "bin" / "root-only.txt"  # in a folder the sandbox sees, readable by host root only
    root_only.write_text(CANARIES["root"])
    root_only.chmod(0o600)
    other = clone / ".longshot" / "tasks" / "other-1-1" / "checkout"  # pid 1 lives: never swept
    other.mkdir(parents=True)
    (other / "notes.txt").write_text(CANARIES["other"])
    return {"home": home, "clone": clone, "venv": venv, "cargo": cargo, "root_only": root_only, "other": other}


def probes(paths: dict[str, Path], sock: Path, abstract: str) -> str:
    """One bash command printing ``LEAK:<what>`` or ``DENIED:<what>`` per probe."""
    reads = {"env": paths["clone"] / ".env", "cargo": paths["cargo"] / "credentials.toml",
             "other": paths["other"] / "notes.txt", "root": paths["root_only"], "shadow": Path("/etc/shadow")}
    lines = [f"cat {p} >/dev/null 2>&1 && echo LEAK:{name} || echo DENIED:{name}" for name, p in reads.items()]
    lines.append(f"ls -A {paths['clone']} | grep -vx .venv | sed 's/^/LEAK:listed-/'")
    lines.append(f"ls -A {paths['cargo']} | grep -vx bin | sed 's/^/LEAK:listed-/'")
    for name, address in (("socket", str(sock)), ("abstract", "\\0" + abstract)):
        code = (f"import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(2); "
                f"s.connect({address!r}.replace(chr(92) + '0', chr(0))); s.sendall(b'leak')")
        lines.append(f"python3 -c \"{code}\" 2>/dev/null && echo LEAK:{name} || echo DENIED:{name}")
    return "\n".join(lines)


def worker(command: str):
    def play(turn: Turn) -> Reply:
        steps = [ToolCallSpec("bash", {"command": command}),
                 ToolCallSpec("bash", {"command": "python -m pytest -q -p no:cacheprovider"}),
                 ToolCallSpec("write", {"path": "calc/add.py", "content": "def add(a, b):\n    return a + b\n"}),
                 ToolCallSpec("handoff", {"status": "complete", "summary": "probed"})]
        return Reply(tool_calls=[steps[min(turn.turn, len(steps) - 1)]])
    return play


def tool_results(fake) -> list[str]:
    return [str(m.get("content")) for r in fake.requests for m in r.body["messages"] if m.get("role") == "tool"]


def test_readme_layout_exposes_no_key_credential_other_task_root_file_or_socket(tmp_path: Path, fake_llm, remote) -> None:
    target = remote(TARGET)
    paths = readme_layout(tmp_path)
    sock_path = paths["venv"] / "bin" / "agent.sock"
    abstract = f"longshot-canary-{PID}"
    listeners = []
    for family, address in ((socket.AF_UNIX, str(sock_path)), (socket.AF_UNIX, "\0" + abstract)):
        s = socket.socket(family)
        s.bind(address)
        s.listen(8)
        s.setblocking(False)
        listeners.append(s)
    os.chmod(sock_path, 0o755)  # as a root daemon leaves it; world-writable sockets are a known limit (docs)
    command = probes(paths, sock_path, abstract)
    tasks = [{"id": "t1", "description": "add calc/add.py", "scope": ["calc/add.py"]}]
    fake = fake_llm(RoleScript({"planner": planner_then_done(plan_json(tasks)), "worker": worker(command)}))
    env = {"HOME": str(paths["home"]), "PATH": f"{paths['cargo']}/bin:{paths['venv']}/bin:/usr/bin:/bin",
           "GIT_REPO_URL": str(target), "LLM_BASE_URL": fake.base_url, "LLM_MODEL": "fake-worker",
           "PLANNER_MODEL": "fake-planner", "WORKER_MODEL": "fake-worker", "RECONCILER_MODEL": "fake-reconciler",
           "SUBPLANNER_MODEL": "fake-subplanner", "CHECK_COMMANDS": "python -m pytest -q -p no:cacheprovider",
           "RECONCILER_INTERVAL": "1000"}
    try:
        done = subprocess.run([str(paths["venv"] / "bin" / "python"), "-m", "longshot", "add it"], env=env,
                              cwd=paths["clone"], capture_output=True, text=True, timeout=300)
        accepted = []
        for s in listeners:
            try:
                accepted.append(s.accept())
            except BlockingIOError:
                pass
    finally:
        for s in listeners:
            s.close()

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert accepted == [], "a host socket accepted a connection from the sandbox"
    results = tool_results(fake)
    report = next(r for r in results if "DENIED:" in r or "LEAK:" in r)
    assert "LEAK:" not in report, report
    for name in ("env", "cargo", "other", "root", "shadow", "socket", "abstract"):
        assert f"DENIED:{name}" in report, report
    assert any("1 passed" in r for r in results), results  # python and pytest still run inside
    # Nowhere: model requests, the run's logs and reports, git, stdout.
    seen = json.dumps([r.body for r in fake.requests]) + done.stdout + done.stderr
    written = [p for p in paths["clone"].rglob("*") if p.is_file() and "other-1-1" not in p.parts
               and ({".longshot", "logs"} & set(p.relative_to(paths["clone"]).parts))]
    assert any(p.name.startswith("run-") for p in written), "no run log or report found"
    logs = "".join(p.read_text(errors="replace") for p in written)
    objects = git("log", "--all", "-p", "--format=%B", cwd=target)
    for canary in CANARIES.values():
        assert canary not in seen and canary not in logs and canary not in objects, canary
    assert (paths["clone"] / ".env").read_text() == f"LLM_API_KEY={CANARIES['env']}\n"
    assert (paths["other"] / "notes.txt").read_text() == CANARIES["other"]
