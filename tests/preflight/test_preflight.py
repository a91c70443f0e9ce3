"""The preflight through the real CLI: a wrong endpoint, key, model or a server without tool
calling stops a run with exit 2 before any planning, naming the setting and the URL (never
the key); ``longshot doctor`` shows the same checks. (How fast: bench/preflight_bench.py.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from longshot.testing.fake_script import Reply

from helpers import run_cli, run_env

KEY = "sk-secret-canary-1234"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def never(turn: object) -> Reply:
    raise AssertionError("the script must not be asked: the run stops before planning")


def test_an_unreachable_endpoint_exits_2_naming_the_variable_and_the_url(tmp_path: Path, fake_llm, remote) -> None:
    fake = fake_llm(never)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    env = run_env(tmp_path, remote(), fake, LLM_BASE_URL=url, LLM_API_KEY=KEY)

    done = run_cli(["do it", "--no-dashboard"], env, tmp_path)

    assert done.returncode == 2, done.stderr
    assert "LLM_BASE_URL" in done.stderr and f"{url}/models" in done.stderr and "Fix:" in done.stderr
    assert KEY not in done.stdout + done.stderr
    assert not list((tmp_path / "logs").glob("report-*"))  # nothing started, nothing to report


def test_a_refused_key_exits_2_naming_the_key_variable_and_the_url(tmp_path: Path, fake_llm, remote) -> None:
    fake = fake_llm(never, api_key="the-right-key")
    env = run_env(tmp_path, remote(), fake, LLM_API_KEY=KEY)

    done = run_cli(["do it", "--no-dashboard"], env, tmp_path)

    assert done.returncode == 2, done.stderr
    assert "LLM_API_KEY" in done.stderr and fake.base_url in done.stderr and "401" in done.stderr
    assert KEY not in done.stdout + done.stderr and fake.count() == 0


def test_an_unserved_model_and_a_server_without_tools_exit_2_naming_the_role_variable(
        tmp_path: Path, fake_llm, remote) -> None:
    fake, target = fake_llm(never), remote()
    env = run_env(tmp_path, target, fake, WORKER_MODEL="no-such-model")
    done = run_cli(["do it", "--no-dashboard"], env, tmp_path)
    assert done.returncode == 2 and "WORKER_MODEL" in done.stderr and "'no-such-model'" in done.stderr

    plain = fake_llm(never, tool_calling=False)
    done = run_cli(["do it", "--no-dashboard"], run_env(tmp_path, target, plain), tmp_path)
    assert done.returncode == 2 and "refused tool calling" in done.stderr and "PLANNER_MODEL" in done.stderr
    assert fake.count() == 0 and plain.count() == 0


def test_an_endpoint_list_names_the_entry_at_fault(tmp_path: Path, fake_llm, remote) -> None:
    good, locked = fake_llm(never), fake_llm(never, api_key="other")
    endpoints = [{"name": "good", "endpoint": good.base_url, "apiKey": KEY},
                 {"name": "locked", "endpoint": locked.base_url, "apiKey": KEY}]
    env = run_env(tmp_path, remote(), good, LLM_ENDPOINTS=json.dumps(endpoints))

    done = run_cli(["doctor"], env, tmp_path)

    assert done.returncode == 2
    assert "LLM_ENDPOINTS (apiKey of 'locked')" in done.stdout and locked.base_url in done.stdout
    assert "'good'" not in done.stdout.split("FAIL")[1] and KEY not in done.stdout


def test_doctor_passes_a_good_setup_and_says_what_it_cost(tmp_path: Path, fake_llm, remote) -> None:
    fake = fake_llm(never, context_length=32768)
    env = run_env(tmp_path, remote({"SPEC.md": "# what to build\n"}), fake)

    done = run_cli(["doctor"], env, tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    for finding in ("tool calling works", "context window 32,768 tokens (said by the server)", "bubblewrap",
                    "branch main found", "SPEC.md present"):
        assert finding in done.stdout
    assert "FAIL" not in done.stdout and "tokens" in done.stdout.splitlines()[-2]
    assert sorted(set(fake.probes)) == ["fake-planner", "fake-reconciler", "fake-subplanner", "fake-worker"]
    assert fake.count() == 0  # probes never reach the script


def test_a_missing_spec_is_a_warning_and_a_bad_features_file_a_failure(tmp_path: Path, fake_llm, remote) -> None:
    fake = fake_llm(never)
    bad = json.dumps({"features": [{"id": "F1", "name": "a"}, {"id": "F1", "status": "finished", "uses": ["F9"]}]})
    env = run_env(tmp_path, remote({"FEATURES.json": bad}), fake)

    done = run_cli(["doctor"], env, tmp_path)

    assert done.returncode == 2
    out = " ".join(done.stdout.split())
    assert "has no SPEC.md" in out and "FEATURES.json" in out
    for problem in ('"name" is missing or empty', "status", "used by more than one",
                    "unknown feature(s) F9"):
        assert problem in out, problem
