"""The live run page over real HTTP: `longshot serve` and its server-sent events as a log grows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from web.webkit import RUN, lines, write_lines, DEMO

from longshot.web.serve import Started, start

TOKEN = "live-token-31b"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Started, Path]]:
    logs = tmp_path / "logs"
    logs.mkdir()
    started, serve = start(logs, port=0, token=TOKEN)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{started.port}/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield started, logs
    started.stop()
    thread.join(10)


def read_parts(response: httpx.Response) -> Iterator[dict]:
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "parts":
            yield json.loads(line[6:])


def test_stream_sends_the_parts_that_change_as_the_log_grows(server: tuple[Started, Path]) -> None:
    started, logs = server
    records = lines(DEMO)
    log = logs / f"{RUN}.ndjson"
    write_lines(log, records[:5])
    base = f"http://127.0.0.1:{started.port}"
    auth = {"authorization": f"Bearer {TOKEN}"}
    page = httpx.get(f"{base}/runs/{RUN}", headers=auth).text
    since = re.search(r"since=(\d+)", page)
    assert since is not None and "No tasks yet" in page
    seen: list[dict] = []

    def grow() -> None:
        with log.open("a") as f:
            for r in records[5:]:
                f.write(json.dumps(r) + "\n")
                f.flush()
                time.sleep(0.01)  # about 2 s in all: updates come while it grows

    with httpx.stream("GET", f"{base}/runs/{RUN}/stream?key=run&since={since.group(1)}", headers=auth,
                      timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        threading.Thread(target=grow, daemon=True).start()
        for data in read_parts(response):
            seen.append(data)
            if data["events"] == len(records):
                break
    assert seen[0]["events"] < len(records)  # updates came while the log grew, not only at its end
    trees = [d["parts"]["tree"] for d in seen if "tree" in d["parts"]]
    assert trees and trees[-1].count('data-status="landed"') == 9
    assert all(set(d["parts"]) <= {"summary", "tree", "workers", "merge", "charts", "alerts", "feed"} for d in seen)
    assert seen[-1]["last_ts"] == records[-1]["ts"]
    assert httpx.get(f"{base}/runs/{RUN}/stream").status_code == 401


def test_serve_prints_an_address_with_a_token_and_refuses_without_it(tmp_path: Path) -> None:
    env = {**os.environ, "LLM_API_KEY": "sk-serve-canary-0123456789abcdef"}
    proc = subprocess.Popen([sys.executable, "-m", "longshot", "serve", "--log-dir", str(tmp_path), "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line)
            if found:
                url = found.group(0)
                break
        assert url is not None
        root = url.split("?")[0]
        for _ in range(100):
            try:
                refused = httpx.get(root, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert refused.status_code == 401
        with httpx.Client(follow_redirects=True) as c:
            assert "No run logs" in c.get(url).text
            assert c.get(root).status_code == 200  # the cookie now
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_without_the_extra_names_it() -> None:
    code = ("import sys; sys.modules['uvicorn'] = None; sys.argv = ['longshot', 'serve']; "
            "from longshot.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "longshot[web]" in done.stderr and "uvicorn" in done.stderr
