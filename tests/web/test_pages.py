"""Every page of the web view over the recorded demo run, read through the real ASGI app."""

from __future__ import annotations

import json
import re
from pathlib import Path

from web.webkit import RUN, client, demo_logs, lines, signed_in, task_ids, write_lines

from longshot.web.model import RunView


def test_runs_list_shows_each_run_with_its_figures(tmp_path: Path) -> None:
    logs = demo_logs(tmp_path)
    with signed_in(client(logs)) as c:
        page = c.get("/").text
    row = re.search(r'<tr class="run-row">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
    assert cells[0] == RUN
    assert cells[1].startswith("Build wordkit according to SPEC.md")
    assert cells[2].startswith("2026-12-01 07:54:32")
    assert cells[4] == "green"
    assert cells[5:8] == ["10", "9", "0"]  # tasks, landed, failed
    assert cells[8].startswith("$0.0")
    assert 'http-equiv="refresh"' not in page  # every run finished: nothing to follow


def test_run_page_draws_the_tree_merge_queue_charts_and_alerts(tmp_path: Path) -> None:
    with signed_in(client(demo_logs(tmp_path))) as c:
        page = c.get(f"/runs/{RUN}").text
    for task in task_ids():
        assert f'data-task="{task}"' in page
    assert "sprint 1" in page and "reconciler fixes" in page
    assert page.count('data-status="landed"') == 9
    assert "9 landed · 1 refused" in page
    assert "<polyline" in page and "landings: 9 of 10 tasks" in page
    assert "merge conflict" in page  # the conflict the demo provokes, in the alerts
    assert 'data-stream="/runs/' in page


def test_every_task_page_renders(tmp_path: Path) -> None:
    with signed_in(client(demo_logs(tmp_path))) as c:
        for task in task_ids():
            page = c.get(f"/runs/{RUN}/tasks/{task}")
            assert page.status_code == 200, task
            assert "Status history" in page.text and "Diff" in page.text
        slug = c.get(f"/runs/{RUN}/tasks/slug").text
        assert c.get(f"/runs/{RUN}/tasks/no-such-task").status_code == 404
        assert c.get("/runs/run-none/tasks/slug").status_code == 404
    assert "Implement slugify in wordkit/slug.py" in slug
    assert "wordkit/slug.py" in slug and "Handoff: complete" in slug
    assert "landed as" in slug  # the landing commit
    assert "not readable here" in slug  # the recorded run's repository is long gone: said, not an error


def test_replay_steps_through_the_run(tmp_path: Path) -> None:
    events = lines(demo_logs(tmp_path) / f"{RUN}.ndjson")
    with signed_in(client(tmp_path / "logs")) as c:
        assert 'id="replay-time"' in c.get(f"/runs/{RUN}/replay").text
        start = c.get(f"/runs/{RUN}/frame?upto=0").json()
        first_task = next(i for i, e in enumerate(events) if e["type"] == "task.created") + 1
        one = c.get(f"/runs/{RUN}/frame?upto={first_task}").json()
        end = c.get(f"/runs/{RUN}/frame?at=100000").json()
        middle = c.get(f"/runs/{RUN}/frame?at={(events[-1]['ts'] - events[0]['ts']) / 2}").json()
        assert c.get(f"/runs/{RUN}/frame?upto=x").status_code == 400
    assert start["upto"] == 0 and "No tasks yet" in start["parts"]["tree"]
    assert one["parts"]["tree"].count("data-task=") == 1
    assert end["upto"] == end["total"] == len(events)
    assert end["parts"]["tree"].count('data-status="landed"') == 9
    assert 0 < middle["upto"] < len(events)
    assert middle["parts"]["tree"].count('data-status="landed"') < 9


def test_replay_frames_agree_with_folding_the_events_from_scratch(tmp_path: Path) -> None:
    """Frames come from checkpoints: every one must equal the view folded from the first event."""
    from longshot.web.replay import Replay
    from longshot.events import read_events

    events = list(read_events(demo_logs(tmp_path) / f"{RUN}.ndjson"))
    replay = Replay(events)
    replay.every = 7  # many checkpoints, also between the frames asked for
    for upto in (0, 13, 70, 9, 150, len(events), 3):
        fresh = RunView()
        for e in events[:upto]:
            fresh.apply(e)
        got = replay.view_at(upto)
        assert (got.events, got.state.statuses, got.state.merge_landed, len(got.alerts)) == \
               (fresh.events, fresh.state.statuses, fresh.state.merge_landed, len(fresh.alerts))


def test_features_page_without_and_with_feature_events(tmp_path: Path) -> None:
    with signed_in(client(demo_logs(tmp_path))) as c:
        assert "no feature ledger events" in c.get(f"/runs/{RUN}/features").text
        assert f"/runs/{RUN}/features" not in c.get(f"/runs/{RUN}").text
    log = tmp_path / "logs" / f"{RUN}.ndjson"
    records = lines(log)
    end = records.pop()
    base = {"run_id": end["run_id"], "ts": end["ts"]}
    records += [
        {**base, "type": "feature.status", "feature": "F1", "name": "slugify", "status": "claimed", "tasks": ["slug"]},
        {**base, "type": "feature.status", "feature": "F2", "status": "missing"},
        {**base, "type": "feature.status", "feature": "F1", "name": "slugify", "status": "verified", "before": "claimed",
         "tasks": ["slug"], "commits": ["a" * 40], "tests": ["tests/test_slug.py"], "evidence": "4 tests passed"},
        {**base, "type": "claim.checked", "task_id": "wrap", "verified": False, "model": "demo-worker",
         "command": "python -m unittest tests.test_wrap", "exit_code": 1, "evidence": "FAILED (failures=1)"},
        end,
    ]
    write_lines(log, records)
    with signed_in(client(tmp_path / "logs")) as c:
        run_page = c.get(f"/runs/{RUN}").text
        page = c.get(f"/runs/{RUN}/features").text
        wrap = c.get(f"/runs/{RUN}/tasks/wrap").text
    assert f'href="/runs/{RUN}/features"' in run_page
    assert "said complete, but `python -m unittest tests.test_wrap` exits 1" in run_page
    rows = dict(re.findall(r'<tr data-feature="(\w+)">(.*?)</tr>', page, re.S))
    assert set(rows) == {"F1", "F2"}
    assert ">verified<" in rows["F1"] and "tests/test_slug.py" in rows["F1"] and "aaaaaaaaaa" in rows["F1"]
    assert ">missing<" in rows["F2"]
    assert "<b>1</b> verified" in page and "worker/demo-worker" in page
    assert "claim unverified" in wrap and "FAILED (failures=1)" in wrap


def test_a_torn_last_line_waits_for_its_end(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    records = lines(demo_logs(tmp_path) / f"{RUN}.ndjson")
    log = logs / f"{RUN}.ndjson"
    write_lines(log, records[:20])
    torn = json.dumps(records[20])
    with log.open("a") as f:
        f.write(torn[:30])
    with signed_in(client(logs)) as c:
        before = c.get(f"/runs/{RUN}/frame").json()["total"]
        with log.open("a") as f:
            f.write(torn[30:] + "\n")
        after = c.get(f"/runs/{RUN}").text
        assert before == 20
        assert c.get(f"/runs/{RUN}/frame").json()["total"] == 21
    assert "21 events" in after


def test_a_run_without_news_and_without_an_end_is_silent(tmp_path: Path) -> None:
    import os
    import time

    logs = tmp_path / "logs"
    logs.mkdir()
    records = lines(demo_logs(tmp_path) / f"{RUN}.ndjson")[:-1]  # no run.finished
    for name in ("run-20261201T000000Z-aaaa", "run-20261202T000000Z-bbbb"):
        write_lines(logs / f"{name}.ndjson", records)
    hour_ago = time.time() - 3600
    os.utime(logs / "run-20261201T000000Z-aaaa.ndjson", (hour_ago, hour_ago))
    (logs / f"{RUN}.ndjson").unlink()
    with signed_in(client(logs)) as c:
        page = c.get("/").text
    statuses = dict(re.findall(r'<a href="/runs/([^"]+)">.*?<span class="badge [^"]*"[^>]*>(\w+)</span>', page, re.S))
    assert statuses == {"run-20261201T000000Z-aaaa": "silent", "run-20261202T000000Z-bbbb": "running"}
    assert 'http-equiv="refresh"' in page  # the list follows while a run is running


def test_warnings_show_their_code(tmp_path: Path) -> None:
    log = demo_logs(tmp_path) / f"{RUN}.ndjson"
    records = lines(log)
    for r in records:
        if r["type"] == "warning":
            r["code"] = "checks.preexisting"
    write_lines(log, records)
    with signed_in(client(tmp_path / "logs")) as c:
        alerts = c.get(f"/runs/{RUN}/frame").json()["parts"]["alerts"]
    assert "warning · checks.preexisting" in alerts and "already failing when the run started" in alerts
