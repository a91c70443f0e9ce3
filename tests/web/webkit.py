"""Helpers of the web view's tests: a log folder holding the recorded demo run, a signed-in client."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from longshot.redaction import Redactor
from longshot.web.app import Settings, build_app

DEMO = Path(__file__).resolve().parents[1] / "dashboard" / "data" / "demo.ndjson"
RUN = "run-20261201T075431Z-e3b0"
TOKEN = "test-token-7f3a"
PORT = 8765


def demo_logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    shutil.copyfile(DEMO, logs / f"{RUN}.ndjson")
    return logs


def client(logs: Path, secrets: list[str] | None = None, work_dir: Path | None = None) -> TestClient:
    app = build_app(Settings(logs, TOKEN, PORT, Redactor(secrets or []), work_dir))
    return TestClient(app)


def signed_in(c: TestClient) -> TestClient:
    answer = c.get(f"/?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 303 and "token" not in answer.headers["location"]
    return c


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def task_ids() -> list[str]:
    return [r["task_id"] for r in lines(DEMO) if r["type"] == "task.created"]
