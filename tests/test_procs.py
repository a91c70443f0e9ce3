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
