"""A task's diff comes from git of the run's repository, read-only; its conversation from the request log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from web.webkit import client, signed_in, write_lines

from longshot.hub import Hub

RUN = "run-20261206T000000Z-abcd"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def repository(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose configuration and attributes would run commands if git were let to."""
    repo = tmp_path / "target"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    git("config", "user.email", "t@example.com", cwd=repo)
    git("config", "user.name", "t", cwd=repo)
    (repo / "a.txt").write_text("one\n")
    (repo / ".gitattributes").write_text("*.txt diff=evil\n")
    git("add", ".", cwd=repo)
    git("commit", "-qm", "base", cwd=repo)
    git("checkout", "-qb", "worker/t1", cwd=repo)
    (repo / "a.txt").write_text("one\nhello web\n")
    git("commit", "-qam", "t1's work", cwd=repo)
    commit = git("rev-parse", "HEAD", cwd=repo)
    for marker, key in (("textconv", "diff.evil.textconv"), ("external", "diff.external"), ("pager", "core.pager")):
        git("config", key, f"sh -c 'touch {tmp_path / marker}'; cat", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    return repo, commit


def log(logs: Path, repo: str, commit: str) -> None:
    logs.mkdir(exist_ok=True)
    base = {"run_id": "r", "ts": 1.0}
    write_lines(logs / f"{RUN}.ndjson", [
        {**base, "type": "run.started", "request": "r", "repo": repo, "target_branch": "main", "max_workers": 1},
        {**base, "type": "task.created", "task_id": "t1", "description": "d", "branch": "worker/t1"},
        {**base, "type": "handoff.received", "task_id": "t1",
         "handoff": {"task_id": "t1", "status": "complete", "summary": "s", "commit": commit}},
    ])


def test_diff_is_read_from_the_run_repository_without_running_its_config(tmp_path: Path) -> None:
    repo, commit = repository(tmp_path)
    log(tmp_path / "logs", str(repo), commit)
    with signed_in(client(tmp_path / "logs")) as c:
        page = c.get(f"/runs/{RUN}/tasks/t1").text
    assert "diff --git a/a.txt b/a.txt" in page and "+hello web" in page
    assert f"read from {repo}" in page
    assert not any((tmp_path / m).exists() for m in ("textconv", "external", "pager"))


def test_diff_is_read_from_the_hub_when_the_repository_is_remote(tmp_path: Path) -> None:
    repo, commit = repository(tmp_path)
    url = "https://git.example.invalid/team/target.git"
    work = tmp_path / "work"
    hub = Hub.location(work, url)
    hub.parent.mkdir(parents=True)
    git("clone", "-q", "--bare", str(repo), str(hub), cwd=tmp_path)
    log(tmp_path / "logs", url, commit)
    with signed_in(client(tmp_path / "logs")) as c:
        without = c.get(f"/runs/{RUN}/tasks/t1").text
    with signed_in(client(tmp_path / "logs", work_dir=work)) as c:
        page = c.get(f"/runs/{RUN}/tasks/t1").text
    assert "+hello web" not in without and "not readable here" in without
    assert "+hello web" in page and f"read from {hub}" in page


def test_only_a_commit_id_is_ever_passed_to_git(tmp_path: Path) -> None:
    repo, _ = repository(tmp_path)
    for forged in (f"--output={tmp_path / 'written'}", "HEAD", "main~1", "-p"):
        log(tmp_path / "logs", str(repo), forged)
        with signed_in(client(tmp_path / "logs")) as c:
            page = c.get(f"/runs/{RUN}/tasks/t1").text
        assert "no commit recorded" in page, forged
    assert not (tmp_path / "written").exists()


def test_conversation_is_put_together_from_the_request_log_pieces(tmp_path: Path) -> None:
    repo, commit = repository(tmp_path)
    logs = tmp_path / "logs"
    log(logs, str(repo), commit)
    call = {"id": "c1", "type": "function", "function": {"name": "read", "arguments": '{"path": "a.txt"}'}}
    pieces = [
        {"role": "worker", "task_id": "t1", "messages_from": 0,
         "messages": [{"role": "system", "content": "SYSTEM"}, {"role": "user", "content": "TASK t1"}],
         "response": {"role": "assistant", "content": None, "tool_calls": [call]}},
        {"role": "worker", "task_id": "t2", "messages_from": 0, "messages": [{"role": "user", "content": "OTHER"}]},
        {"role": "worker", "task_id": "t1", "messages_from": 3,
         "messages": [{"role": "tool", "tool_call_id": "c1", "content": "FILE one"}], "error": "LLMTimeout: slow"},
        {"role": "worker", "task_id": "t1", "messages_from": 3,
         "messages": [{"role": "tool", "tool_call_id": "c1", "content": "FILE one"}],
         "response": {"role": "assistant", "content": "DONE"}},
    ]
    write_lines(logs / f"{RUN.replace('run-', 'requests-', 1)}.ndjson", pieces)
    with signed_in(client(logs)) as c:
        page = c.get(f"/runs/{RUN}/tasks/t1").text
    order = [page.index(s) for s in ("SYSTEM", "TASK t1", "<b>read</b>", "FILE one", "DONE")]
    assert order == sorted(order)
    assert page.count("FILE one") == 1 and "OTHER" not in page
    assert "3 requests" in page and "1 failed" in page and "LLMTimeout: slow" in page


def test_the_landing_commit_links_to_its_page(tmp_path: Path) -> None:
    repo, commit = repository(tmp_path)
    logs = tmp_path / "logs"
    log(logs, str(repo), commit)
    with (logs / f"{RUN}.ndjson").open("a") as f:
        f.write(json.dumps({"type": "merge.landed", "ts": 2.0, "run_id": "r", "task_id": "t1", "commit": commit,
                            "branch": "worker/t1"}) + "\n")
    with signed_in(client(logs)) as c:
        task = c.get(f"/runs/{RUN}/tasks/t1").text
        run = c.get(f"/runs/{RUN}").text
        page = c.get(f"/runs/{RUN}/commits/{commit}").text
        forged = c.get(f"/runs/{RUN}/commits/--output=x").text
    link = f'href="/runs/{RUN}/commits/{commit}"'
    assert link in task and link in run
    assert "+hello web" in page and 'href="/runs/' + RUN + '/tasks/t1"' in page
    assert "no commit recorded" in forged
