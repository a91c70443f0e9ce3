"""Benchmark of the web view (issue 20): server CPU and event-to-page latency on a busy live run.

Run: ``.venv/bin/python bench/web_bench.py [--quick] [--seconds N] [--browsers N]``. Prints ONE
JSON object on stdout; progress goes to stderr. Needs /usr/bin/chromium and the ``playwright``
package (the dev extra); everything lives in a temporary directory removed at the end.

Targets (issue 20): with 100 workers writing 50 events a second into a live run watched by 3
browsers, the server costs at most 10% of one core, and an event shows on the pages within
1 s at the 95th percentile.

How: the synthetic run of ``bench/dashboard_bench.py`` (100 worker slots, about 50 events
a second, seeded) is written to a run log at its recorded pace by this process, each event
stamped with the wall clock as it is written. ``longshot serve`` runs as its own process;
3 headless Chromium browsers (each its own browser process) open the run page and keep it
open. The page's script records, for every update it applies, when it arrived and the time
of the newest event it reflects (``window.longshotUpdates``). An event's latency is the
arrival of the first update on a page reflecting it, minus the time it was written; every
page counts. Server CPU is its process's user+system time (from /proc) over the writing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import SMOKE_HELP, machine, stats
from dashboard_bench import WORKERS, synthetic_run

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def log(msg: str) -> None:
    print(f"[web_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def write_live(path: Path, events: list[Any], written: list[float]) -> None:
    """Append the events at their recorded pace, each stamped with the time it is written."""
    t0, start = events[0].ts, time.time()
    with path.open("a", encoding="utf-8") as f:
        for event in events:
            delay = start + (event.ts - t0) - time.time()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            f.write(event.model_copy(update={"ts": now}).model_dump_json() + "\n")
            f.flush()
            written.append(now)


def latencies(written: list[float], updates: list[list[float]]) -> tuple[list[float], int]:
    """Per event, the wait until the first update reflecting it; and how many events no update reflected."""
    out, missed, i = [], 0, 0
    updates = sorted(updates, key=lambda u: u[1])
    arrivals = [u[0] for u in updates]
    # the earliest arrival among updates reflecting at least ts: a suffix minimum over updates sorted by last_ts
    suffix = arrivals[:]
    for k in range(len(suffix) - 2, -1, -1):
        suffix[k] = min(suffix[k], suffix[k + 1])
    for ts in sorted(written):
        while i < len(updates) and updates[i][1] < ts - 1e-6:
            i += 1
        if i == len(updates):
            missed += 1
        else:
            out.append(max(0.0, suffix[i] - ts))
    return out, missed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="a 20 s run instead of 60 s")
    ap.add_argument("--seconds", type=float, help="length of the synthetic run")
    ap.add_argument("--browsers", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP + " (3 s, one browser)")
    args = ap.parse_args()
    if args.smoke:
        args.browsers = 1
    seconds = args.seconds or (3.0 if args.smoke else 20.0 if args.quick else 60.0)
    from playwright.sync_api import sync_playwright

    began = time.time()
    events = synthetic_run(seconds)
    with tempfile.TemporaryDirectory(prefix="longshot-web-bench-") as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        path = logs / "run-web-bench.ndjson"
        path.write_text(events[0].model_copy(update={"ts": time.time()}).model_dump_json() + "\n")
        server = subprocess.Popen([sys.executable, "-m", "longshot", "serve", "--log-dir", str(logs), "--port", "0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert server.stderr is not None
        url = next(m.group(0) for line in server.stderr
                   if (m := re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line)))
        run_url = url.split("/?")[0] + "/runs/run-web-bench"
        try:
            with sync_playwright() as pw:
                browsers = [pw.chromium.launch(executable_path=CHROMIUM, args=ARGS) for _ in range(args.browsers)]
                pages = []
                for browser in browsers:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(url)
                    page.goto(run_url)
                    page.wait_for_selector("#live-state")
                    pages.append(page)
                log(f"{len(pages)} browsers on {run_url}; writing {len(events) - 1} events over {seconds:.0f}s "
                    f"({(len(events) - 1) / seconds:.1f}/s), {WORKERS} workers")
                written: list[float] = []
                writer = threading.Thread(target=write_live, args=(path, events[1:], written))
                cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
                writer.start()
                while writer.is_alive():  # keep Playwright's connection served while the pages work
                    pages[0].wait_for_timeout(250)
                writer.join()
                cpu, wall = cpu_seconds(server.pid) - cpu0, time.monotonic() - wall0
                pages[0].wait_for_timeout(2000)  # the last updates
                per_page = [page.evaluate("window.longshotUpdates") for page in pages]
                for browser in browsers:
                    browser.close()
        finally:
            server.terminate()
            server.wait(10)
    waits, missed = [], 0
    for updates in per_page:
        w, m = latencies(written, updates)
        waits += w
        missed += m
    latency = stats(waits, 3)
    cpu_percent = round(100 * cpu / wall, 2)
    result = {
        "benchmark": "web", "machine": machine(), "seconds": seconds, "workers": WORKERS, "browsers": args.browsers,
        "events": len(written), "events_per_second": round(len(written) / wall, 1),
        "server": {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "cpu_percent_of_one_core": cpu_percent},
        "latency_s": latency, "events_never_shown": missed,
        "updates_per_page": [len(u) for u in per_page],
        "targets": {"server_cpu_percent_of_one_core_max": 10, "latency_p95_s_max": 1.0},
        "met": {"cpu": cpu_percent <= 10, "latency": latency["p95"] <= 1.0 and missed == 0},
        "took_s": round(time.time() - began, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
