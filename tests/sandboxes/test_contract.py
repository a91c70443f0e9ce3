"""The sandbox contract (`longshot.sandboxes.base`), the same tests for every provider.

Each test runs against ``local`` (bubblewrap here), ``ray`` (an actor on a real local Ray
cluster), ``modal-fake`` (the real Modal adapter driving the fake SDK) and ``modal`` (the
real service; skipped without MODAL_TOKEN_ID): exec, timeouts, output caps, files, result
transfer with the snapshot rules, clean-up, no network, set-up, and no credentials.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from longshot.errors import FileRefused, PathOutsideSandbox, SandboxError, SetupFailed
from longshot.sandboxes.snapshot import SnapshotRefused
from longshot.testing.repos import git

from provider_cases import BRANCH, CANARY_KEY, CANARY_TOKEN, FILES, MAX_FILE, MAX_FILES, OUTPUT_LIMIT, Case


async def test_exec_runs_in_the_checkout_with_exit_code_and_both_streams(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        r = await sb.exec("cat README.md; ls; echo oops >&2; exit 3", 30)
    assert r.exit_code == 3 and not r.timed_out and not r.truncated and r.limit is None
    assert r.stdout.splitlines() == ["# demo", "README.md", "pkg"]
    assert r.stderr == "oops\n"


async def test_a_command_over_its_timeout_is_killed_and_says_so(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        r = await sb.exec("echo started; sleep 60; echo late > late.txt", 2)
        await asyncio.sleep(0.5)
        after = await sb.exec("ls; cat late.txt 2>&1 || true", 30)
    assert r.timed_out and r.exit_code == 124 and r.limit and r.limit.startswith("time")
    assert r.stdout == "started\n"  # it did not run to its end: no "late"
    assert "late.txt" not in after.stdout.split()


async def test_output_is_capped_keeping_head_and_tail(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        r = await sb.exec("seq 1 200000; seq 1 50000 >&2", 60)
    assert r.exit_code == 0 and r.truncated
    assert r.stdout.startswith("1\n2\n3\n") and r.stdout.endswith("199999\n200000\n")
    assert "omitted" in r.stdout and len(r.stdout) < OUTPUT_LIMIT + 200
    assert r.stderr.endswith("50000\n") and len(r.stderr) < OUTPUT_LIMIT + 200


async def test_files_round_trip_and_list(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        await sb.write_file("new/deep/data.bin", bytes(range(256)) * 4)
        await sb.write_file("README.md", b"changed\n")
        assert await sb.read_file("new/deep/data.bin") == bytes(range(256)) * 4
        assert await sb.read_file("README.md") == b"changed\n"
        assert await sb.read_file("pkg/core.py") == FILES["pkg/core.py"].encode()
        assert await sb.list_dir("") == ["README.md", "new/", "pkg/"]
        assert await sb.list_dir("pkg") == ["__init__.py", "core.py"]
        seen = await sb.exec("cat new/deep/data.bin | wc -c; cat README.md", 30)
        await sb.exec("mkdir -p made && echo hi > made/x && ln -s x made/link", 30)
        assert await sb.list_dir("made") == ["link", "x"]
    assert seen.stdout == "1024\nchanged\n"


async def test_file_errors_are_the_protocol_s(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        await sb.exec("ln -s /etc/passwd passwd-link; ln -s ../../.. up-link", 30)
        with pytest.raises(FileNotFoundError):
            await sb.read_file("no/such/file")
        with pytest.raises(IsADirectoryError):
            await sb.read_file("pkg")
        for path in ("../outside", "/etc/passwd", "pkg/../../outside", "passwd-link", "up-link/etc/hostname"):
            with pytest.raises(PathOutsideSandbox):
                await sb.read_file(path)
        with pytest.raises(PathOutsideSandbox):
            await sb.write_file("../escape.txt", b"x")
        with pytest.raises(PathOutsideSandbox):
            await sb.list_dir("/")


async def test_only_regular_files_are_opened_and_reads_stop_at_the_limit(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        made = await sb.exec("mkfifo pipe && head -c 100000 /dev/zero | tr '\\0' a > big.txt", 30)
        assert made.exit_code == 0, made.stderr
        for op in (sb.read_file("pipe"), sb.write_file("pipe", b"x")):
            with pytest.raises(FileRefused):  # at once: a FIFO with no writer is never waited on
                await asyncio.wait_for(op, 60)
        assert await sb.read_file("big.txt", 10) == b"a" * 10
        assert len(await sb.read_file("big.txt")) == 100000


async def test_the_result_lands_on_the_task_branch_in_the_hub_and_nowhere_else(case: Case) -> None:
    main_before = git("rev-parse", "refs/heads/main", cwd=case.hub)
    async with case.provider.open(case.spec()) as sb:
        assert await sb.snapshot("nothing yet") is None
        await sb.write_file("pkg/new.py", b"VALUE = 2\n")
        await sb.exec("rm pkg/core.py && mkdir -p docs && echo guide > docs/guide.md && echo cache > x.pyc", 30)
        # Whatever the commands try with git, the hub's target branch stays where it was.
        await sb.exec("git update-ref refs/heads/main HEAD 2>/dev/null; git push origin HEAD:main 2>/dev/null; "
                      "git --git-dir=/longshot/git update-ref refs/heads/main HEAD 2>/dev/null; true", 30)
        first = await sb.snapshot("Task t1: first")
        await sb.write_file("docs/more.md", b"more\n")
        second = await sb.snapshot("Task t1: second")
        assert await sb.snapshot("Task t1: nothing new") is None
    assert first and second and first != second
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=case.hub) == second
    assert git("rev-parse", f"{second}^", cwd=case.hub) == first
    assert git("rev-parse", f"{first}^", cwd=case.hub) == case.base
    assert git("log", "-1", "--format=%an <%ae>|%s", first, cwd=case.hub) == "Longshot Test <lt@localhost>|Task t1: first"
    files = git("ls-tree", "-r", "--name-only", second, cwd=case.hub).splitlines()
    assert sorted(files) == ["README.md", "docs/guide.md", "docs/more.md", "pkg/__init__.py", "pkg/new.py"]
    assert git("show", f"{second}:pkg/new.py", cwd=case.hub) == "VALUE = 2"
    assert git("rev-parse", "refs/heads/main", cwd=case.hub) == main_before
    refs = git("for-each-ref", "--format=%(refname)", cwd=case.hub).splitlines()
    assert sorted(refs) == ["refs/heads/main", f"refs/heads/{BRANCH}"]


RULES = {
    "symlink": ("ln -s /etc/passwd leak", "symlinks must point inside"),
    "nested": ("mkdir -p vendor/lib && git -C vendor/lib init -q", "submodules and nested repositories"),
    "big": (f"head -c {MAX_FILE + 1} /dev/zero > big.bin", "files larger than"),
    "many": (f"mkdir -p many && for i in $(seq 1 {MAX_FILES + 1}); do echo $i > many/f$i; done", "changed files"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
async def test_a_result_breaking_a_snapshot_rule_is_refused(case: Case, rule: str) -> None:
    command, words = RULES[rule]
    async with case.provider.open(case.spec()) as sb:
        r = await sb.exec(command, 60)
        assert r.exit_code == 0, r
        with pytest.raises(SnapshotRefused, match=words):
            await sb.snapshot("Task t1")
    assert git("for-each-ref", "--format=%(refname)", "refs/heads/worker", cwd=case.hub) == ""


async def test_leaving_the_block_destroys_the_sandbox(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        ident = await case.identify(sb)
        await sb.exec("echo alive", 30)
    assert await case.gone(ident)


async def test_an_error_or_a_cancellation_inside_destroys_the_sandbox(case: Case) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with case.provider.open(case.spec("t1")) as sb:
            raised = await case.identify(sb)
            raise RuntimeError("boom")
    idents: list[object] = []

    async def hang() -> None:
        async with case.provider.open(case.spec("t2")) as sb2:
            idents.append(await case.identify(sb2))
            await sb2.exec("sleep 120", 200)

    task = asyncio.ensure_future(hang())
    deadline = time.monotonic() + 60
    while not idents and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # the command is running now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await case.gone(raised)
    assert idents and await case.gone(idents[0])


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on this host's loopback that records every connection and any data sent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                seen.append(conn.recv(100).decode("utf-8", "replace") or "connected")
            except OSError:
                seen.append("connected")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


async def test_the_network_is_off_by_default(case: Case, listener: tuple[int, list[str]]) -> None:
    port, seen = listener
    async with case.provider.open(case.spec()) as sb:
        r = await sb.exec(f"echo hello > /dev/tcp/127.0.0.1/{port} && echo SENT; "
                          "getent hosts example.com && echo RESOLVED; "
                          "timeout 5 bash -c 'echo x > /dev/tcp/1.1.1.1/53' && echo OUT; true", 30)
    assert "SENT" not in r.stdout and "RESOLVED" not in r.stdout and "OUT" not in r.stdout
    assert seen == []


async def test_setup_runs_first_and_its_failure_is_set_up_failed(case: Case) -> None:
    async with case.provider.open(case.spec(setup="echo ready > $HOME/.ready && echo built > built.txt")) as sb:
        r = await sb.exec("cat $HOME/.ready built.txt", 30)
    assert r.stdout == "ready\nbuilt\n"
    with pytest.raises(SetupFailed, match="exit 7"):
        async with case.provider.open(case.spec("t2", setup="echo failing; exit 7")):
            pass


async def test_no_credential_reaches_the_sandbox(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_API_KEY", CANARY_KEY)
    monkeypatch.setenv("GITHUB_TOKEN", CANARY_KEY)
    async with case.provider.open(case.spec(setup="env > $HOME/setup-env.txt")) as sb:
        r = await sb.exec("env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; git config --list 2>&1; "
                          "cat $HOME/setup-env.txt; grep -rl -e sk-canary -e ghp_canary /workspace $HOME /tmp "
                          "/longshot 2>/dev/null; true", 60)
        if case.kind == "ray":
            assert CANARY_KEY not in str(await sb.probe())
    seen = r.stdout + r.stderr
    assert "PATH=" in seen  # the probe really printed the environment
    assert CANARY_KEY not in seen and CANARY_TOKEN not in seen and "sk-canary" not in seen
    if case.fake is not None:
        sent = case.fake.transcript()
        assert "refs/longshot/base" in sent  # the transcript really holds what went in
        assert CANARY_KEY not in sent and CANARY_TOKEN not in sent


async def test_socket_path_is_local_only(case: Case) -> None:
    async with case.provider.open(case.spec()) as sb:
        if case.remote:
            with pytest.raises(SandboxError, match="WORKER_HARNESS=builtin"):
                sb.socket_path("llm.sock")
        else:
            host, inside = sb.socket_path("llm.sock")
            assert host.name == "llm.sock" and inside.endswith("llm.sock")


async def test_describe_and_a_repeated_sweep_finds_nothing_more(case: Case) -> None:
    profile = case.provider.describe()
    assert profile.description and not profile.weakened
    first = await case.provider.sweep_orphans()
    assert all(isinstance(line, str) for line in first)
    assert await case.provider.sweep_orphans() == []
