"""Process facts shared by the run lock and the sandbox providers, and how child processes are awaited."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


async def run_process(argv: list[str], *, cwd: Path, env: dict[str, str],
                      stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``argv`` to its end: (exit status, stdout, stderr), as asyncio's ``communicate`` gives.

    The lean path a run's thousands of git processes take: the pipes and a pidfd of the
    child are watched on the event loop directly, with no transports, protocols, stream
    readers and tasks per process (half of each process's cost in the orchestrator: see
    ``bench/spawn_bench.py``). A status < 0 is the signal that ended it, as in asyncio.
    Cancelled, the process is killed and reaped. Without pidfds (kernels before 5.3) it is
    asyncio's own path.
    """
    if not _PIDFD:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL)
        out, err = await proc.communicate(stdin)
        assert proc.returncode is not None
        return proc.returncode, out, err
    return await _Lean(argv, cwd, env, stdin).run()


class _Lean:
    """One child process watched through its pipes and pidfd (see `run_process`)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self.stdin = memoryview(stdin) if stdin is not None else None
        self.open: set[int] = set()
        self.status: int | None = None
        self.writing = False  # waiting for the stdin pipe to take more
        fds: list[int] = []
        try:
            r_out, w_out = os.pipe2(os.O_CLOEXEC)  # the child's ends stay blocking, as it expects
            fds += (r_out, w_out)
            r_err, w_err = os.pipe2(os.O_CLOEXEC)
            fds += (r_err, w_err)
            os.set_blocking(r_out, False)
            os.set_blocking(r_err, False)
            r_in = w_in = -1
            if stdin is not None:
                r_in, w_in = os.pipe2(os.O_CLOEXEC)
                fds += (r_in, w_in)
                os.set_blocking(w_in, False)
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=w_out, stderr=w_err,
                                         stdin=r_in if stdin is not None else subprocess.DEVNULL)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        for fd in (w_out, w_err, r_in):
            if fd >= 0:
                os.close(fd)
        self.pidfd = -1  # watched only if the child outlives its pipes (most end with them)
        for fd, buf in ((r_out, self.out), (r_err, self.err)):
            self.open.add(fd)
            self.loop.add_reader(fd, self._read, fd, buf)
        self.w_in = w_in
        if w_in >= 0:
            self.open.add(w_in)
            self._write()

    async def run(self) -> tuple[int, bytes, bytes]:
        try:
            await self.done
        except asyncio.CancelledError:
            self._abandon()
            raise
        assert self.status is not None
        return self.status, b"".join(self.out), b"".join(self.err)

    def _read(self, fd: int, buf: list[bytes]) -> None:
        data = _read_chunk(fd)
        if data:
            buf.append(data)
        elif data is not None:
            self._close(fd, reader=True)

    def _write(self) -> None:
        assert self.stdin is not None
        try:
            while self.stdin:
                self.stdin = self.stdin[os.write(self.w_in, self.stdin[: 1 << 16]):]
        except BlockingIOError:
            if not self.writing:
                self.writing = True
                self.loop.add_writer(self.w_in, self._write)
            return
        except OSError:  # the child closed its stdin (BrokenPipeError): it does not want the rest
            pass
        if self.writing:
            self.writing = False
            self.loop.remove_writer(self.w_in)
        self._close(self.w_in, reader=False)

    def _close(self, fd: int, *, reader: bool) -> None:
        if fd not in self.open:
            return
        self.open.discard(fd)
        if reader:
            self.loop.remove_reader(fd)
        os.close(fd)
        self._check()

    def _exited(self) -> None:
        self.loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        self.status = self.proc.wait()  # the pidfd is readable: the child has ended, this does not block
        self._check()

    def _check(self) -> None:
        if self.open or self.done.done():
            return
        if self.status is None and self.pidfd < 0:
            self.status = self.proc.poll()
            if self.status is None:
                self.pidfd = os.pidfd_open(self.proc.pid)
                self.loop.add_reader(self.pidfd, self._exited)
        if self.status is not None:
            self.done.set_result(None)

    def _abandon(self) -> None:
        """Cancelled: kill the child, stop watching, and reap it when it is gone."""
        if self.status is None:
            with suppress(ProcessLookupError):
                self.proc.kill()
        for fd in list(self.open):
            if fd == self.w_in:
                if self.writing:
                    self.loop.remove_writer(fd)
                self.open.discard(fd)
                os.close(fd)
            else:
                self._close(fd, reader=True)
        reaped = self.status is not None or self.proc.returncode is not None  # kill() polls first: it may reap
        if self.pidfd >= 0:
            self.loop.remove_reader(self.pidfd)
            if reaped:
                os.close(self.pidfd)
                self.pidfd = -1
                return
        elif reaped:
            return
        else:
            try:
                self.pidfd = os.pidfd_open(self.proc.pid)
            except ProcessLookupError:  # gone and reaped meanwhile
                return
        self.loop.add_reader(self.pidfd, self._reap)

    def _reap(self) -> None:
        self.loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1
        self.proc.wait()


class Streamed:
    """A child whose output goes to ``on_out`` / ``on_err`` as it arrives, watched on the event
    loop as `run_process` watches its children (no transports, protocols or tasks per process).

    Its end is known (`exit`, the status; < 0 the signal) as soon as it exits, even while a
    child it left in the background still holds the pipes; `drained` then waits a grace
    period for the pipes to close and stops reading. `close` (always call it, in a
    ``finally``) stops watching the pipes and reaps the child whenever it ends.
    """

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str], on_out: Callable[[bytes], None],
                 on_err: Callable[[bytes], None], start_new_session: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.exit: asyncio.Future[int] = self.loop.create_future()
        self.status: int | None = None
        """The exit status once the child has ended (< 0: the signal that ended it)."""
        self._eof: asyncio.Future[None] = self.loop.create_future()
        self._sinks: dict[int, Callable[[bytes], None]] = {}
        fds: list[int] = []
        try:
            r_out, w_out = os.pipe2(os.O_CLOEXEC)
            fds += (r_out, w_out)
            r_err, w_err = os.pipe2(os.O_CLOEXEC)
            fds += (r_err, w_err)
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=w_out, stderr=w_err,
                                         start_new_session=start_new_session)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        os.close(w_out)
        os.close(w_err)
        self.pid = self.proc.pid
        for fd, sink in ((r_out, on_out), (r_err, on_err)):
            os.set_blocking(fd, False)
            self._sinks[fd] = sink
            self.loop.add_reader(fd, self._read, fd)
        self._pidfd = -1
        self._poll: asyncio.Future[None] | None = None
        if _PIDFD:
            self._pidfd = os.pidfd_open(self.pid)  # not reaped yet: it names this child even if it ended
            self.loop.add_reader(self._pidfd, self._ended)
        else:  # kernels before 5.3: look, then look again later (5 ms, doubling up to 100 ms)
            self._poll = asyncio.ensure_future(self._polled())

    async def drained(self, grace: float) -> None:
        """Until both pipes are closed, or ``grace`` seconds (a background child holding them):
        then stop reading."""
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._eof), grace)
        self._stop_reading()

    def close(self) -> None:
        """Stop reading; the child is reaped when it ends (at once if it has)."""
        self._stop_reading()
        if not self.exit.done():
            self.exit.cancel()  # nobody waits any more; the watch below still reaps it

    def _read(self, fd: int) -> None:
        data = _read_chunk(fd)
        if data is None:
            return
        if data:
            self._sinks[fd](data)
            return
        self.loop.remove_reader(fd)
        os.close(fd)
        del self._sinks[fd]
        if not self._sinks and not self._eof.done():
            self._eof.set_result(None)

    def _stop_reading(self) -> None:
        for fd in list(self._sinks):
            self.loop.remove_reader(fd)
            os.close(fd)
            del self._sinks[fd]

    def _ended(self) -> None:
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self._done(self.proc.wait())  # the pidfd is readable: the child has ended, this does not block

    async def _polled(self) -> None:
        delay = 0.005
        while (code := self.proc.poll()) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        self._done(code)

    def _done(self, code: int) -> None:
        self.status = code
        if not self.exit.done():
            self.exit.set_result(code)


def _read_chunk(fd: int) -> bytes | None:
    """What a non-blocking pipe holds now: None when nothing yet, b"" at its end (or on an error)."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None
    except OSError:
        return b""


_PIDFD = _pidfd_works()
