"""Resource limits of a local sandbox: rlimits, a cgroup per sandbox, and a disk watch.

- **rlimits** (always): open files, file size, no core dumps; address space only when no
  memory cgroup is available (it upsets runtimes that reserve large virtual ranges).
- **cgroup** (when the host lets us create one: cgroup v1 with writable ``pids``/``memory``
  /``cpu`` hierarchies, or a delegated cgroup v2 subtree): process count, memory and CPU
  quota for everything the sandbox runs, and a reliable way to kill all of it.
- **disk watch**: the checkout, HOME and TMPDIR are bind mounts of host directories, so a
  watcher sums their size and file count while a command runs and kills it at the cap.

Which of these are in force is reported once per run (`describe`), so a weaker host is
never silent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from longshot.procs import alive

V1_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    """Per-sandbox caps. The names in brackets are the settings that set them."""

    memory_mb: int = 8192  # [SANDBOX_MEMORY_MB]
    cpu_cores: float = 4  # [SANDBOX_CPU_CORES]
    processes: int = 512  # [SANDBOX_MAX_PROCESSES]
    open_files: int = 4096  # [SANDBOX_MAX_OPEN_FILES]
    disk_mb: int = 10240  # [SANDBOX_DISK_MB]
    files: int = 200_000  # [SANDBOX_MAX_FILES] files and directories under the writable dirs


class Cgroup:
    """One sandbox's cgroup (v1: one directory per controller; v2: one directory)."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs = dirs
        self.version = version

    @classmethod
    def create(cls, name: str, limits: Limits) -> "Cgroup | None":
        """Create and configure the cgroup, or None when the host does not allow it."""
        made = _create_v2(name) or _create_v1(name)
        if made is None:
            return None
        group = cls(*made)
        try:
            group._configure(limits)
        except OSError:
            group.remove()
            return None
        return group

    def _configure(self, limits: Limits) -> None:
        memory = str(limits.memory_mb * 1024 * 1024)
        quota = str(int(limits.cpu_cores * 100_000))
        if self.version == 2:
            d = self.dirs["unified"]
            _write(d / "pids.max", str(limits.processes))
            _write(d / "memory.max", memory)
            with suppress(OSError):
                _write(d / "memory.swap.max", "0")
            _write(d / "cpu.max", f"{quota} 100000")
            return
        _write(self.dirs["pids"] / "pids.max", str(limits.processes))
        _write(self.dirs["memory"] / "memory.limit_in_bytes", memory)
        with suppress(OSError):
            _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", memory)
        if "cpu" in self.dirs:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", "100000")
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", quota)

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def counters(self) -> dict[str, int]:
        """Events that mean a limit was hit: OOM kills and refused forks."""
        if self.version == 2:
            d = self.dirs["unified"]
            return {"memory": _field(d / "memory.events", "oom_kill"), "processes": _field(d / "pids.events", "max")}
        return {"memory": _field(self.dirs["memory"] / "memory.oom_control", "oom_kill"),
                "processes": _field(self.dirs["pids"] / "pids.events", "max")}

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files:
            with suppress(OSError):
                found |= {int(x) for x in Path(f).read_text().split()}
        return found

    def kill(self, rounds: int = 50) -> None:
        """SIGKILL everything in the cgroup, including double-forked daemons."""
        for _ in range(rounds):
            if not self._kill_once():
                return

    async def settle(self, rounds: int = 50) -> None:
        """`kill`, and wait until the cgroup is empty, looking again after a pause that grows
        (1 ms to 20 ms, about a second in all) instead of spinning while the killed processes
        exit: after every command a few of them are still on their way out."""
        for i in range(rounds):
            if not self._kill_once():
                return
            await asyncio.sleep(0.001 * min(2 ** i, 20))

    def _kill_once(self) -> bool:
        """SIGKILL what the cgroup holds now; whether it held anything."""
        pids = self.pids()
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return bool(pids)

    def remove(self) -> None:
        self.kill()
        for d in self.dirs.values():
            for _ in range(50):  # a killed process can keep the cgroup busy for a moment
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def sweep_stale(prefix: str = "longshot-") -> list[str]:
    """Remove empty cgroups left by dead Longshot processes (named ``<prefix>...-<pid>-<n>``)."""
    removed: list[str] = []
    roots = [V1_ROOT / c for c in ("pids", "memory", "cpu")] + [V1_ROOT]
    found: set[Path] = set()
    for root in roots:
        for depth in ("", "*/", "*/*/"):
            with suppress(OSError):  # another run may remove a cgroup while we look
                found.update(root.glob(f"{depth}{prefix}*"))
    for child in sorted(found):
        with suppress(OSError):
            parts = child.name.rsplit("-", 2)
            if len(parts) < 3 or not parts[1].isdigit() or not child.is_dir():
                continue
            if alive(int(parts[1])):
                continue
            if not (child / "cgroup.procs").read_text().strip():
                child.rmdir()
                removed.append(str(child))
    return removed


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _field(path: Path, key: str) -> int:
    with suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def _own_path(controller: str) -> str:
    """This process's cgroup path in a v1 hierarchy (or v2 for controller "")."""
    with suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(",") or (controller == "" and names == ""):
                return path
    return "/"


def _create_v1(name: str) -> tuple[dict[str, Path], int] | None:
    dirs: dict[str, Path] = {}
    for controller in ("pids", "memory", "cpu"):
        mount = V1_ROOT / controller
        if not (mount / "cgroup.procs").exists():
            if controller == "cpu":
                continue
            _undo(dirs)
            return None
        parent = mount / _own_path(controller).lstrip("/")
        if not parent.is_dir():
            parent = mount
        try:
            (parent / name).mkdir(exist_ok=True)
        except OSError:
            _undo(dirs)
            return None
        dirs[controller] = parent / name
    return dirs, 1


def _create_v2(name: str) -> tuple[dict[str, Path], int] | None:
    root = V1_ROOT if (V1_ROOT / "cgroup.controllers").exists() else None
    if root is None:
        return None
    parent = root / _own_path("").lstrip("/")
    try:
        enabled = (parent / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    if not {"pids", "memory"} <= set(enabled):
        return None
    try:
        (parent / name).mkdir(exist_ok=True)
    except OSError:
        return None
    return {"unified": parent / name}, 2


def _undo(dirs: dict[str, Path]) -> None:
    for d in dirs.values():
        with suppress(OSError):
            d.rmdir()


LAUNCHER = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; '
    'ulimit -n "$1" -c 0 -f "$2" || exit 125; shift 2; '
    'if [ "$1" != - ]; then ulimit -v "$1" || exit 125; fi; shift; '
    'if [ "$1" != - ]; then ulimit -u "$1" || exit 125; fi; shift; exec "$@"'
)
"""Joins the cgroup and sets rlimits in the child, then execs the command. A shell does it
instead of a Python ``preexec_fn``, which would force fork() instead of vfork() on every
command."""


def launcher(limits: Limits, procs_files: list[str], *, memory_rlimit: bool) -> list[str]:
    """The argv prefix that puts a command into the cgroup under the rlimits."""
    kib = str(limits.disk_mb * 1024)
    memory = str(limits.memory_mb * 1024) if memory_rlimit else "-"
    processes = str(limits.processes) if os.getuid() != 0 else "-"  # root ignores RLIMIT_NPROC
    return ["bash", "-c", LAUNCHER, "longshot-launcher", str(len(procs_files)), *procs_files,
            str(limits.open_files), kib, memory, processes]


def usage(dirs: list[Path], stop_bytes: int, stop_files: int) -> tuple[int, int]:
    """(bytes, entries) under ``dirs``, giving up early once either cap is passed."""
    total = count = 0
    stack = [str(d) for d in dirs]
    while stack:
        with suppress(OSError), os.scandir(stack.pop()) as it:
            for entry in it:
                count += 1
                with suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                if total > stop_bytes or count > stop_files:
                    return total, count
    return total, count


def disk_over(dirs: list[Path], limits: Limits) -> str | None:
    """The name of the disk limit the directories exceed, or None."""
    cap_bytes, cap_files = limits.disk_mb * 1024 * 1024, limits.files
    size, files = usage(dirs, cap_bytes, cap_files)
    if size > cap_bytes:
        return f"disk limit: more than {limits.disk_mb} MB written (SANDBOX_DISK_MB)"
    if files > cap_files:
        return f"file count limit: more than {cap_files} files (SANDBOX_MAX_FILES)"
    return None


class DiskGuard:
    """Decides when a full scan of a sandbox's directories is worth its cost.

    A scan walks every file (milliseconds for a thousand). The file system's own counters
    (statvfs: used blocks and inodes) cost one system call, so after each command the
    guard scans only when the file system grew noticeably since the last scan, counted
    across commands. Other writers on the same file system can only cause extra scans,
    never a missed one.
    """

    BYTES = 1024 * 1024
    INODES = 64

    def __init__(self, dirs: list[Path], limits: Limits) -> None:
        self.dirs = dirs
        self.limits = limits
        self._grown = (0, 0)

    def counters(self) -> tuple[int, int] | None:
        try:
            st = os.statvfs(self.dirs[0])
        except OSError:
            return None
        if st.f_files == 0:  # no inode accounting (some tmpfs): counters cannot tell
            return None
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree

    def after(self, before: tuple[int, int] | None) -> str | None:
        """Call when a command ended, with `counters()` taken before it started."""
        now = self.counters()
        if before is not None and now is not None:
            grown = (self._grown[0] + max(0, now[0] - before[0]), self._grown[1] + max(0, now[1] - before[1]))
            if grown[0] < self.BYTES and grown[1] < self.INODES:
                self._grown = grown
                return None
        self._grown = (0, 0)
        return disk_over(self.dirs, self.limits)


async def watch_disk(dirs: list[Path], limits: Limits, interval: float = 0.5) -> str:
    """Return the name of the disk limit once it is exceeded (runs until cancelled).

    The first look is after ``interval``: a command shorter than that is checked once, at
    its end, by the caller.
    """
    while True:
        await asyncio.sleep(interval)
        over = await asyncio.to_thread(disk_over, dirs, limits)
        if over:
            return over


def describe(cgroup: Cgroup | None) -> str:
    if cgroup is None:
        return ("no cgroup could be created: process count, memory and CPU of sandboxes are not capped "
                "(open files, file size and disk are)")
    kind = "cgroup v2" if cgroup.version == 2 else "cgroup v1"
    return f"sandbox limits enforced with {kind} ({', '.join(sorted(cgroup.dirs))}) and rlimits"
