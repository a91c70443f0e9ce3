"""Who owns a remote sandbox, so that a later run can tell the leftovers of a crashed one.

Every remote sandbox (a Ray actor, a Modal container) is labelled with its run id and its
owner: the orchestrator's host name, pid and process start time, so a pid the system
reused is never taken for the owner. At its start a run destroys the sandboxes whose
owner ran on this host and is gone. Sandboxes of owners on other hosts are left alone:
nothing here can tell whether they still run (they end at their own timeout).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from longshot.procs import alive, state


@dataclass(frozen=True)
class Owner:
    """An orchestrator process, identified across hosts and pid reuse."""

    host: str
    pid: int
    started: int
    """Start time of the process in clock ticks after boot (``/proc/<pid>/stat``); 0 if unknown."""

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), start_time(os.getpid()) or 0)

    @property
    def tag(self) -> str:
        return f"{self.host}/{self.pid}/{self.started}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner a tag names, or None for a tag this module did not write."""
        host, _, rest = text.rpartition("/")
        host, _, pid = host.rpartition("/")
        if not host or not pid.isdigit() or not rest.isdigit():
            return None
        return cls(host, int(pid), int(rest))

    def dead(self) -> bool:
        """True only when the owner certainly ended: it ran on this host and is gone."""
        if self.host != socket.gethostname():
            return False
        now = start_time(self.pid)
        return now is None or (self.started != 0 and now != self.started) or state(self.pid) in ("Z", "X")


OWNER_FILE = "owner"
"""In a local sandbox's directory (never mounted into it): the `Owner` tag of the run that made it."""


def write_owner(root: Path) -> None:
    (root / OWNER_FILE).write_text(Owner.current().tag)


def owner_dead(root: Path) -> bool:
    """Whether the run that made the sandbox directory ``root`` (``<task>-<pid>-<n>``) is gone.

    Its owner file names the process exactly (a reused pid or a zombie is not taken for it);
    a directory without one that matches its name (made by an older Longshot, or killed before
    it was written) falls back to the pid in its name.
    """
    parts = root.name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) == os.getpid():
        return False  # not a sandbox directory of ours, or one of this run's
    try:
        owner = Owner.parse((root / OWNER_FILE).read_text())
    except OSError:
        owner = None
    if owner is not None and owner.pid == int(parts[1]):
        return owner.dead()
    return not alive(int(parts[1]))


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None
