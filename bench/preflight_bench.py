"""How fast a bad setting stops a run (issue 18: exit 2 within 15 s) and what doctor takes.

Runs the real CLI in a subprocess against the fake model on loopback, for each case several
times, and prints one JSON object: seconds from start to exit (median, p95) and the exit
codes. Cases: a closed port (connection refused), a wrong key (401), an unknown model, and
``longshot doctor`` on a good setup. (A routed but silent address waits for the connect
timeout, `preflight.endpoints.CONNECT_TIMEOUT` seconds, and is not measured here: on this
machine's network every address answers.) ``--smoke`` runs each case once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import SMOKE_HELP, machine, stats

from longshot.build import preflight_options
from longshot.config import load_config
from longshot.preflight import preflight
from longshot.testing.fake_llm import FakeLLM
from longshot.testing.fake_script import Reply
from longshot.testing.repos import make_remote

MODELS = {"bench-worker": "worker"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "longshot", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    return time.perf_counter() - began, done.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    runs = 1 if args.smoke else args.runs
    results: dict[str, object] = {"machine": machine(), "runs": runs}
    with tempfile.TemporaryDirectory(prefix="longshot-preflight-bench-") as tmp, \
            FakeLLM(lambda turn: Reply(content="{}"), models=MODELS, api_key="right") as fake:
        base = Path(tmp)
        remote = make_remote(base, {"SPEC.md": "spec\n"})
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "GIT_REPO_URL": str(remote),
               "LLM_BASE_URL": fake.base_url, "LLM_API_KEY": "right", "LLM_MODEL": "bench-worker",
               "LONGSHOT_WORK_DIR": str(base / "work"), "LONGSHOT_LOG_DIR": str(base / "logs"),
               "CHECK_COMMANDS": "none"}
        cases = {
            "unreachable (connection refused)": (["do it", "--no-dashboard"],
                                                 {"LLM_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1"}),
            "wrong key (401)": (["do it", "--no-dashboard"], {"LLM_API_KEY": "wrong"}),
            "unknown model": (["do it", "--no-dashboard"], {"LLM_MODEL": "no-such-model"}),
            "doctor, good setup": (["doctor"], {}),
        }
        for name, (argv, extra) in cases.items():
            seconds, codes = [], []
            for _ in range(runs):
                took, code = timed(argv, {**env, **extra}, base)
                seconds.append(took)
                codes.append(code)
            results[name] = {"seconds": stats(seconds), "exit_codes": sorted(set(codes))}
            print(f"{name}: {stats(seconds)['median']} s, exit {sorted(set(codes))}", file=sys.stderr)
        startup = [timed(["--version"], env, base)[0] for _ in range(runs)]
        results["interpreter start and import (longshot --version)"] = {"seconds": stats(startup)}
        options = preflight_options(load_config(env, env_file=None))
        checks = []
        for _ in range(runs):
            began = time.perf_counter()
            asyncio.run(preflight(options))
            checks.append(time.perf_counter() - began)
        results["the checks alone, in process (good setup)"] = {"seconds": stats(checks)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
