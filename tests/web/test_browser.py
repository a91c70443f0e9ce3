"""End to end in a real browser: Debian's Chromium, headless, driven by Playwright, against
`longshot serve` while `longshot demo` runs.

Marked ``browser`` (select with ``-m browser``, leave out with ``-m 'not browser'``). Needs
/usr/bin/chromium (scripts/setup.sh installs it) and the ``playwright`` package; Playwright
never downloads a browser of its own here. ``LONGSHOT_UPDATE_SCREENSHOTS=1`` copies the
screenshot it takes to docs/web-run.png for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(400),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (scripts/setup.sh installs it)"),
]


def serve(logs: Path, work: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "longshot", "serve", "--log-dir", str(logs), "--port", "0",
                             "--work-dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line)
        if found:
            return proc, found.group(0)
    raise AssertionError(f"longshot serve printed no address (exit {proc.wait()})")


def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll from here (the page's CSP forbids the eval that Playwright's wait_for_function uses)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds}s for: {what}"
        time.sleep(0.2)


@pytest.fixture
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra has it)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def test_live_run_in_the_browser(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    logs, work = tmp_path / "logs", tmp_path / ".longshot"
    server, url = serve(logs, work)
    demo = subprocess.Popen([sys.executable, "-m", "longshot", "demo", "--keep", str(tmp_path), "--no-dashboard",
                             "--pace", "1.5"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(url)
        assert "token" not in page.url  # it became a cookie
        deadline = time.monotonic() + 120
        while page.locator("table.runs a").count() == 0:  # the runs list is not live: look again
            assert time.monotonic() < deadline, "the demo's run never showed in the runs list"
            time.sleep(0.3)
            page.reload()
        page.locator("table.runs a").first.click()
        page.wait_for_selector("#live-state")
        page.evaluate("window.stillTheSamePage = true")
        landed_at_open = page.locator('li.task[data-status="landed"]').count()

        until(lambda: page.locator('li.task[data-status="landed"]').count() >= 3, 240, "three tasks landed")
        page.screenshot(path=str(tmp_path / "web-run.png"), full_page=True)  # mid-run: for the README
        until(lambda: page.locator('li.task[data-status="landed"]').count() >= 9, 240, "nine tasks landed")

        assert page.evaluate("window.stillTheSamePage") is True  # no reload: the parts came over SSE
        assert landed_at_open < 9
        assert page.evaluate("window.longshotUpdates.length") > 0
        assert page.locator("li.task").count() >= 10
        until(lambda: "green" in page.locator("#summary .fig b").first.inner_text(), 120, "the run ended green")
        assert "Build wordkit" in page.locator("#summary h1").inner_text()
        shot = tmp_path / "web-run.png"
        assert shot.stat().st_size > 10_000
        if os.environ.get("LONGSHOT_UPDATE_SCREENSHOTS"):
            shutil.copyfile(shot, DOCS / "web-run.png")

        page.locator('li.task[data-task="slug"] > a').first.click()
        page.wait_for_selector("pre.diff")
        diff = page.locator("pre.diff").inner_text()
        assert "diff --git a/wordkit/slug.py b/wordkit/slug.py" in diff
        page.locator("#landing-commit").click()
        page.wait_for_selector("pre.diff")
        assert "Longshot-Task: slug" in page.locator("pre.diff").inner_text()  # the landing commit's trailer

        page.goto(page.url.split("/commits/")[0] + "/replay")  # the finished run, stepped through in time
        page.evaluate("window.stillTheReplayPage = true")
        page.locator("#replay-start").click()
        until(lambda: "No tasks yet" in page.locator("#tree").inner_text(), 30, "the replay at its start")
        page.locator("#replay-speed").select_option("100")
        page.locator("#replay-play").click()
        until(lambda: page.locator('li.task[data-status="landed"]').count() >= 1, 60, "the replay reached a landing")
        until(lambda: page.locator('li.task[data-status="landed"]').count() >= 9, 90, "the replay reached the end")
        assert page.evaluate("window.stillTheReplayPage") is True  # the frames came without a reload

        stranger = browser.new_context()  # type: ignore[attr-defined]
        root = url.split("?")[0]
        assert stranger.new_page().goto(root).status == 401
        assert stranger.new_page().goto(root + "?token=not-the-token").status == 403
        assert stranger.new_page().goto(page.url).status == 401
        stranger.close()
        assert demo.wait(120) == 0
    finally:
        if demo.poll() is None:
            demo.terminate()
            demo.wait(30)
        server.terminate()
        server.wait(10)
