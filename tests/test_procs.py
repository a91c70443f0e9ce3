"""How the orchestrator awaits its child processes."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from longshot.procs import pidfd_child_watcher


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 watches children with pidfds by default")
def test_children_end_without_a_thread_each_and_the_old_watcher_comes_back() -> None:
    before = asyncio.get_child_watcher()

    async def many() -> tuple[list[int], int]:
        peak = threading.active_count()
        procs = [await asyncio.create_subprocess_exec("sleep", "0.2") for _ in range(20)]
        peak = max(peak, threading.active_count())
        return [await p.wait() for p in procs], peak

    with pidfd_child_watcher() as on:
        assert on
        codes, threads = asyncio.run(many())
    assert codes == [0] * 20
    assert threads < 20  # the 3.11 default would have one thread per running child
    assert asyncio.get_child_watcher() is before


def test_outside_the_main_thread_it_changes_nothing() -> None:
    seen: list[bool] = []

    def elsewhere() -> None:
        with pidfd_child_watcher() as on:
            seen.append(on)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert seen == [False]


def _fds() -> set[str]:
    import os
    return set(os.listdir("/proc/self/fd"))


def test_run_process_gives_what_communicate_gives_for_every_shape_of_child(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from longshot.procs import run_process

    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    big = bytes(range(256)) * 8192  # 2 MiB: more than a pipe holds, both ways

    async def main() -> None:
        before = _fds()
        assert await run_process(["cat"], cwd=tmp_path, env=env, stdin=big) == (0, big, b"")
        code, out, err = await run_process(["sh", "-c", "echo out; echo err >&2; exit 3"], cwd=tmp_path, env=env)
        assert (code, out, err) == (3, b"out\n", b"err\n")
        assert (await run_process(["sh", "-c", "pwd"], cwd=tmp_path, env=env))[1].decode().strip() == str(tmp_path)
        assert (await run_process(["sh", "-c", "echo $ONLY"], cwd=tmp_path, env={**env, "ONLY": "x"}))[1] == b"x\n"
        assert (await run_process(["sh", "-c", "kill -9 $$"], cwd=tmp_path, env=env))[0] == -9
        # a child that never reads its stdin: the writer stops at the broken pipe, no error, no hang
        assert (await run_process(["true"], cwd=tmp_path, env=env, stdin=big))[0] == 0
        # a child that closes its pipes and goes on: its end is awaited, and its status is its own
        assert await run_process(["sh", "-c", "exec >&- 2>&-; sleep 0.3; exit 7"], cwd=tmp_path, env=env) == (7, b"", b"")
        # no stdin given: the child reads end of file, not the orchestrator's terminal
        assert await run_process(["cat"], cwd=tmp_path, env=env) == (0, b"", b"")
        # many at once, interleaved on one loop
        results = await asyncio.gather(*(run_process(["sh", "-c", f"head -c {i * 1000} /dev/zero; echo {i} >&2"],
                                                     cwd=tmp_path, env=env) for i in range(40)))
        assert [(len(o), e) for _, o, e in results] == [(i * 1000, f"{i}\n".encode()) for i in range(40)]
        with pytest.raises(FileNotFoundError):
            await run_process(["no-such-program-here"], cwd=tmp_path, env=env)
        assert _fds() == before  # every pipe and pidfd closed

    asyncio.run(main())


def test_a_cancelled_run_process_kills_and_reaps_its_child(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from longshot.procs import run_process, state

    env = {"PATH": "/usr/bin:/bin"}
    pidfile = tmp_path / "pid"

    async def main() -> None:
        before = _fds()
        job = asyncio.create_task(run_process(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 600"], cwd=tmp_path,
                                              env=env, stdin=b"x" * (1 << 20)))
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.01)
        pid = int(pidfile.read_text())
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        for _ in range(500):  # reaped by the loop once the kill lands: no zombie left behind
            if state(pid) is None:
                break
            await asyncio.sleep(0.01)
        assert state(pid) is None
        assert _fds() == before
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    asyncio.run(main())


def test_a_child_that_ended_unseen_can_be_cancelled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The child ends while the loop is busy elsewhere (its end not yet seen), then the call is
    cancelled: killing it finds it dead and reaps it, and nothing else is raised or left open."""
    import time

    from longshot.procs import run_process

    env = {"PATH": "/usr/bin:/bin"}

    async def main() -> None:
        before = _fds()
        for argv, settle in ((["true"], 0.0), (["sh", "-c", "exec >&- 2>&-; sleep 0.1"], 0.05)):
            job = asyncio.create_task(run_process(argv, cwd=tmp_path, env=env))
            await asyncio.sleep(settle)  # started; for the second, its pipes closed and its pidfd watched
            time.sleep(0.3)  # the loop blocked while the child ends
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
        await asyncio.sleep(0.05)
        assert _fds() == before

    asyncio.run(main())


def test_a_streamed_child_hands_over_output_as_it_comes_and_ends_while_a_background_child_holds_its_pipes(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`Streamed`, what a sandbox command runs through: output reaches the callbacks while the
    child runs; its exit is known at once though a child it left (in a session of its own, out
    of reach of a kill of its group) still holds the pipes; the pipes are let go after the grace;
    a child abandoned while running is reaped once it ends; no descriptor is left open."""
    import os
    import signal
    import time

    from longshot.procs import Streamed, state

    env = {"PATH": "/usr/bin:/bin"}
    pidfile = tmp_path / "bg"

    async def main() -> None:
        before = _fds()
        out: list[bytes] = []
        err: list[bytes] = []
        child = Streamed(["sh", "-c", "echo one; echo warn >&2; sleep 0.3; echo two; exit 3"], cwd=tmp_path, env=env,
                         on_out=out.append, on_err=err.append)
        while not out:
            await asyncio.sleep(0.01)
        assert out == [b"one\n"] and not child.exit.done()  # handed over while it runs
        assert await child.exit == 3
        await child.drained(5)
        child.close()
        assert (b"".join(out), b"".join(err), child.status) == (b"one\ntwo\n", b"warn\n", 3)

        # a background child in a session of its own keeps the pipes open for a minute
        got: list[bytes] = []
        child = Streamed(["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 60' & echo main; exit 0"],
                         cwd=tmp_path, env=env, on_out=got.append, on_err=got.append, start_new_session=True)
        try:
            assert await asyncio.wait_for(child.exit, 10) == 0
            # the grace, not the background child's minute: waiting for that would time out here
            await asyncio.wait_for(child.drained(0.3), 30)
            child.close()
            assert b"".join(got) == b"main\n"
        finally:
            while not pidfile.exists() or not pidfile.read_text().strip():
                await asyncio.sleep(0.01)
            os.kill(int(pidfile.read_text()), signal.SIGKILL)

        # abandoned while running, killed afterwards: reaped by the loop, no zombie
        child = Streamed(["sleep", "60"], cwd=tmp_path, env=env, on_out=got.append, on_err=got.append,
                         start_new_session=True)
        child.close()
        os.killpg(child.pid, signal.SIGKILL)
        for _ in range(500):
            if state(child.pid) is None:
                break
            await asyncio.sleep(0.01)
        assert state(child.pid) is None
        with pytest.raises(FileNotFoundError):
            Streamed(["no-such-program-here"], cwd=tmp_path, env=env, on_out=got.append, on_err=got.append)
        assert _fds() == before

    asyncio.run(main())
