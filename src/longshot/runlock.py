"""One run at a time per hub: a lock file naming the host and process that holds it.

A second run on the same repository and work directory would fight the first over the hub
and its refs, so it is refused with a clear message. A lock left by a run that died
(SIGKILL, a reboot) is stale: its process is gone, so the lock is taken over with a warning.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from longshot.errors import ConfigError
from longshot.procs import alive


class RunLock:
    """``<hub>.lock`` beside the hub directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False

    def acquire(self, run_id: str) -> str | None:
        """Take the lock; return a message when a stale one was replaced. Raises ConfigError when
        a live run holds it."""
        stale: str | None = None
        host = socket.gethostname()
        if self.path.exists():
            try:
                held = json.loads(self.path.read_text())
            except (OSError, ValueError):
                held = {}
            pid, where = int(held.get("pid") or 0), str(held.get("host") or "")
            if pid and where == host and pid != os.getpid() and alive(pid):
                raise ConfigError(
                    f"LONGSHOT_WORK_DIR: another Longshot run (pid {pid}, {held.get('run_id', '?')}) is using "
                    f"{self.path.parent}. Fix: wait for it to finish or stop it (Ctrl-C), or use another LONGSHOT_WORK_DIR")
            stale = (f"removed the stale lock of run {held.get('run_id', '?')} (pid {pid or '?'} on "
                     f"{where or '?'}, no longer running)")
            self.path.unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise ConfigError(f"LONGSHOT_WORK_DIR: another Longshot run took {self.path} just now. "
                              "Fix: wait for it to finish, or use another LONGSHOT_WORK_DIR") from None
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": host, "run_id": run_id, "since": time.time()}, f)
        self.held = True
        return stale

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
