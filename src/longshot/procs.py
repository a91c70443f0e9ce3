"""Process facts shared by the run lock and the sandbox providers, and how child processes are awaited."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (someone else's process counts as alive).

    A zombie does not: a process killed in a container whose PID 1 never reaps its children
    stays in the process table, dead, until its parent waits for it.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return state(pid) not in ("Z", "X")


def state(pid: int) -> str | None:
    """The state letter of process ``pid`` (``R``, ``S``, ``Z`` ...), or None when /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0] if fields else None


@contextmanager
def pidfd_child_watcher() -> Iterator[bool]:
    """While inside, asyncio learns that a child process ended from a pidfd on the event loop
    (what Python 3.12 does by default) instead of a new thread blocked in ``waitpid`` per
    process, the Python 3.11 default. A run starts thousands of git and sandbox processes;
    that thread was a quarter of each one's cost in the orchestrator. Yields whether it is
    in force: only on Python 3.11, in the main thread (the only one asyncio attaches a
    watcher to the loop in) and where the kernel has pidfds; the previous watcher comes back
    at the end.
    """
    if sys.version_info >= (3, 12) or threading.current_thread() is not threading.main_thread() or \
            not hasattr(asyncio, "PidfdChildWatcher") or not _pidfd_works():
        yield False
        return
    previous = asyncio.get_child_watcher()
    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    try:
        yield True
    finally:
        asyncio.set_child_watcher(previous)


def _pidfd_works() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True
