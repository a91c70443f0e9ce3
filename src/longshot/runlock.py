"""One run at a time per hub: an advisory lock the kernel holds for the run's process.

A second run on the same repository and work directory would fight the first over the hub
and its refs, so it is refused with a clear message. The lock is ``flock`` on ``<hub>.lock``,
held on a descriptor no child inherits: the kernel releases it the moment the holder's
process ends, however it ends (SIGKILL, OOM, a reboot). Nothing depends on the holder's pid:
a dead orchestrator left as a zombie by a PID 1 that does not reap, or a pid the system
has since given to another process, never keeps the lock. The file's JSON (pid, host, run)
only names the holder in messages.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from longshot.errors import ConfigError


class RunLock:
    """``<hub>.lock`` beside the hub directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, run_id: str) -> str | None:
        """Take the lock; return a message when a dead run's lock was taken over. Raises
        ConfigError when a live run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = _read(fd)
                os.close(fd)
                raise ConfigError(
                    f"LONGSHOT_WORK_DIR: another Longshot run (pid {held.get('pid', '?')}, {held.get('run_id', '?')}) "
                    f"is using {self.path.parent}. Fix: wait for it to finish or stop it (Ctrl-C), or use another "
                    "LONGSHOT_WORK_DIR") from None
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a name nobody will find. Start again on the new file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        held = _read(fd)
        stale = None
        if held:
            stale = (f"removed the stale lock of run {held.get('run_id', '?')} (pid {held.get('pid', '?')} on "
                     f"{held.get('host', '?')}, no longer running)")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id, "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        self._fd = fd
        return stale

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still locked: a waiting run re-opens the new name
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
