"""One local sandbox: a private checkout per task, commands under bubblewrap (`LocalSandbox`).

Layout of one sandbox (under ``<work_dir>/tasks/<task>-<pid>-<n>/``)::

    git/        a bare repository borrowing the hub's objects (what ``clone --shared``
                makes, see `shared_git_dir`): the task's git metadata, kept OUTSIDE the
                checkout and never mounted into the sandbox
    checkout/   the work tree, seen inside as /workspace: the only project directory
                commands can write
    home/ tmp/  the sandbox's private HOME (/home/sandbox) and /tmp

Commands run under the bubblewrap profile of `longshot.sandboxes.bwrap`, with a clean
environment from an allow-list, stdin closed, output capped (head and tail kept), inside a
cgroup and rlimits (`longshot.sandboxes.limits`), and a disk watch. At its timeout, and
after it ends, everything the command started is killed. The orchestrator commits the
checkout from outside (`snapshot`), after the checks of `longshot.sandboxes.snapshot`,
with hooks disabled, and copies the commit's new objects into the hub (`copy_objects`).
The provider that opens these (and their copy-on-write kind, `longshot.sandboxes.cow`) is
`longshot.sandboxes.local`.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol
from pathlib import Path

from longshot.capture import CappedReader
from longshot.errors import PathOutsideSandbox, SandboxError, SetupFailed
from longshot.git import Git
from longshot.procs import Streamed
from longshot.sandboxes.base import READ_LIMIT, ExecResult, Measured, OnOutput, Peek, SandboxSpec
from longshot.sandboxes.bwrap import RUN_DIR, SANDBOX_HOME, WORKSPACE, bwrap_argv, give_to_sandbox
from longshot.sandboxes.gitdir import EXCLUDES as EXCLUDES, shared_git_dir
from longshot.sandboxes.egress import DEFAULT_HOSTS, LAUNCH, PORT, EgressProxy
from longshot.sandboxes.files import list_names, read_regular, write_regular
from longshot.sandboxes.limits import Cgroup, DiskGuard, Limits, launcher, watch_disk
from longshot.sandboxes.orphans import write_owner
from longshot.sandboxes.snapshot import check_nested_repos, check_staged, copy_objects
from longshot.sandboxes.worktree import peek_commit, put_tree
RUN_PREFIX = "longshot-run-"

ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "TZ", "PYENV_ROOT", "PYENV_VERSION", "CARGO_HOME", "RUSTUP_HOME",
             "GOROOT", "GOPATH", "JAVA_HOME", "NVM_DIR", "NODE_PATH")
"""The only host variables a sandbox sees (toolchain locations, never credentials)."""

@dataclass
class LocalOptions:
    """How the local provider isolates and limits (built from Config by the composition root)."""

    isolation: str = "bubblewrap"
    network: bool = False
    limits: Limits = field(default_factory=Limits)
    setup_command: str | None = None
    setup_timeout: float = 900.0
    setup_hosts: tuple[str, ...] = DEFAULT_HOSTS
    """What a set-up may reach, through `longshot.sandboxes.egress` (``*``: the whole network)."""
    ro_paths: list[str] = field(default_factory=list)
    max_file_bytes: int = 10 * 1024 * 1024
    max_changed_files: int = 5000
    output_limit: int = 64_000
    author: tuple[str, str] = ("Longshot", "longshot@localhost")
    tasks_dir: Path | None = None
    """Where task checkouts live (default ``<work_dir>/tasks``); a tmpfs makes sandboxes start faster."""
    overlay: str = field(default_factory=lambda: os.environ.get("SANDBOX_OVERLAY", "auto"))
    """Copy-on-write checkouts (`longshot.sandboxes.cow`): auto (where the host allows), on, off."""



class ProviderView(Protocol):
    """What a sandbox reads of the provider that opened it (`longshot.sandboxes.local`)."""

    options: LocalOptions
    ro_paths: list[str]
    cache_dir: Path


class LocalSandbox:
    """One task's checkout on this machine. See the module docstring for the layout."""

    def __init__(self, root: Path, spec: SandboxSpec, provider: ProviderView, cgroup: Cgroup | None) -> None:
        self.root = root
        self.spec = spec
        self.checkout = root / "checkout"
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.shm = root / "shm"
        # Unix socket paths are limited to 108 bytes, so sockets live in a short temp dir, named
        # like a sandbox directory (``longshot-run-<pid>-<random>``) so that a later run sweeps it.
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-"))
        self.run_dir.chmod(0o711)  # the sandbox's user reaches the sockets in it, and lists nothing
        write_owner(self.run_dir)
        self.cgroup = cgroup
        self._provider = provider
        self._opts = provider.options
        self._git = Git(root, git_dir=root / "git", work_tree=self.checkout, author=self._opts.author)
        self._groups: set[int] = set()
        self._head = spec.base_commit
        """What the task's branch points at: the base until the first snapshot commits."""
        self.writable = [self.checkout, self.home, self.tmp, self.shm]
        """Every place a command can write: all under the disk watch, all removed with the sandbox."""
        self._disk = DiskGuard(self.writable, provider.options.limits)
        self.measured: Measured | None = None
        """What the last snapshot's commit changes against the base (`longshot.sandboxes.base.Measuring`),
        when the snapshot counted it (an overlay's, whose written files' sizes are known)."""

    async def create(self) -> None:
        for d in self.writable:
            d.mkdir(parents=True, exist_ok=True)
        write_owner(self.root)
        await asyncio.to_thread(shared_git_dir, self.root / "git", self.spec.hub)
        await self._git.run("checkout", "--quiet", "--force", "-B", self.spec.branch, self.spec.base_commit)
        await asyncio.to_thread(give_to_sandbox, *self.writable, recursive=True)
        if self._opts.setup_command:
            await self._setup(self._opts.setup_command)
        if self.spec.setup:
            await self._setup(self.spec.setup)

    async def _setup(self, command: str) -> None:
        """The trusted set-up command: the package indexes reachable, the shared download cache mounted.

        Code it runs may come from the checkout, so it gets no network of its own: only the
        allow-listed proxy of `longshot.sandboxes.egress` (unless isolation is off, the network
        is on for every command, or ``SANDBOX_SETUP_HOSTS=*``).
        """
        self._provider.cache_dir.mkdir(parents=True, exist_ok=True)
        give_to_sandbox(self._provider.cache_dir)
        binds = ((self._provider.cache_dir, f"{SANDBOX_HOME}/.cache"),)
        if self._opts.isolation == "none" or self._opts.network or "*" in self._opts.setup_hosts:
            result = await self._run(command, self._opts.setup_timeout, network=True, binds=binds)
            refused: list[str] = []
        else:
            host_socket, inside = self.socket_path("egress.sock")
            async with EgressProxy(host_socket, self._opts.setup_hosts) as proxy:
                launch = shlex.join([os.path.realpath(sys.executable), "-I", "-S", "-c", LAUNCH, inside, str(PORT),
                                     command])
                result = await self._run(launch, self._opts.setup_timeout, network=False, binds=binds)
            refused = proxy.refused
        if result.exit_code != 0:
            note = f"\nrefused (not in SANDBOX_SETUP_HOSTS): {', '.join(sorted(set(refused)))}" if refused else ""
            tail = (result.stdout + result.stderr)[-2000:] + note
            raise SetupFailed(f"the set-up command failed (exit {result.exit_code}): {command}\n{tail}",
                              command=command, output=tail)

    # -- commands --------------------------------------------------------------------

    async def exec(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        return await self._run(command, timeout, network=self._opts.network, binds=(), on_output=on_output)

    def _argv(self, command: str, network: bool, binds: tuple[tuple[Path, str], ...]) -> list[str]:
        if self._opts.isolation == "none":
            return ["bash", "-c", command]
        prefix = bwrap_argv(checkout=self.checkout, home=self.home, tmp=self.tmp, network=network,
                            ro_paths=self._provider.ro_paths, extra_binds=binds, run_dir=self.run_dir, shm=self.shm)
        return [*prefix, "bash", "-c", command]

    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        isolated = self._opts.isolation != "none"
        env.update(
            HOME=SANDBOX_HOME if isolated else str(self.home), TMPDIR="/tmp" if isolated else str(self.tmp),
            PWD=WORKSPACE if isolated else str(self.checkout), TERM="dumb", PYTHONDONTWRITEBYTECODE="1",
            GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        return env

    async def _run(self, command: str, timeout: float, *, network: bool,
                   binds: tuple[tuple[Path, str], ...], on_output: OnOutput | None = None) -> ExecResult:
        limits = self._opts.limits
        before = self.cgroup.counters() if self.cgroup else {}
        disk_before = self._disk.counters()
        prefix = launcher(limits, self.cgroup.procs_files if self.cgroup else [], memory_rlimit=self.cgroup is None)
        out, err = CappedReader(self._opts.output_limit), CappedReader(self._opts.output_limit)
        if on_output is not None:
            out.on_output = err.on_output = lambda _: on_output(out.total + err.total)
        try:
            child = Streamed([*prefix, *self._argv(command, network, binds)], cwd=self.checkout, env=self._env(),
                             on_out=out.feed, on_err=err.feed, start_new_session=True)
        except OSError as e:
            raise SandboxError(f"could not start a command in {self.checkout}: {e}") from e
        self._groups.add(child.pid)
        watcher = asyncio.ensure_future(watch_disk(self.writable, limits))
        limit: str | None = None
        try:
            try:
                waits: set[asyncio.Future[Any]] = {child.exit, watcher}
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if watcher in done:
                    limit = watcher.result()
                elif not done:
                    limit = f"time limit: killed after {timeout:g}s"
            finally:
                watcher.cancel()
                self._kill(child.pid, rounds=1)  # the rest of the cgroup: settled below, without spinning
            if self.cgroup is not None:
                await self.cgroup.settle()
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.exit), 5)
            await child.drained(5)  # a background child that escaped the kill may hold the pipes: not forever
        finally:
            child.close()
        code = child.status if child.status is not None else -signal.SIGKILL
        # A burst that ended between two looks of the watch is caught here.
        limit = limit or self._limit_hit(before, code, err) or await asyncio.to_thread(self._disk.after, disk_before)
        if limit and code == 0:
            code = 1  # the command finished, but over a limit: report it as failed
        return ExecResult(
            exit_code=124 if limit and limit.startswith("time") else code,
            stdout=out.text(), stderr=err.text(), timed_out=bool(limit and limit.startswith("time")),
            truncated=out.truncated or err.truncated, limit=limit,
        )

    def _limit_hit(self, before: dict[str, int], code: int, err: CappedReader) -> str | None:
        limits = self._opts.limits
        after = self.cgroup.counters() if self.cgroup else {}
        if after.get("memory", 0) > before.get("memory", 0):
            return f"memory limit: {limits.memory_mb} MB (SANDBOX_MEMORY_MB)"
        if after.get("processes", 0) > before.get("processes", 0):
            return f"process limit: {limits.processes} processes (SANDBOX_MAX_PROCESSES)"
        if code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            return f"file size limit: {limits.disk_mb} MB (SANDBOX_DISK_MB)"
        if "Too many open files" in err.text()[-4000:]:
            return f"open files limit: {limits.open_files} (SANDBOX_MAX_OPEN_FILES)"
        return None

    def _kill(self, pgid: int, rounds: int = 50) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        self._groups.discard(pgid)
        if self.cgroup is not None:
            self.cgroup.kill(rounds)

    def close(self) -> None:
        """Kill everything still running and remove the cgroup."""
        for pgid in list(self._groups):
            self._kill(pgid)
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def socket_path(self, name: str) -> tuple[Path, str]:
        host = self.run_dir / name
        return host, (f"{RUN_DIR}/{name}" if self._opts.isolation != "none" else str(host))

    # -- files -----------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """The host path for ``path``; refuses absolute paths and escapes (symlinks too)."""
        if "\x00" in path:
            raise PathOutsideSandbox(f"path contains a NUL byte: {path!r}")
        if path.startswith(WORKSPACE + "/"):
            path = path[len(WORKSPACE) + 1 :]
        if path.startswith("/") or path.startswith("~"):
            raise PathOutsideSandbox(f"absolute paths are not allowed: {path} (use a path relative to the repository root)")
        root = os.path.realpath(self.checkout)
        real = os.path.realpath(os.path.join(root, path or "."))
        if real != root and not real.startswith(root + os.sep):
            raise PathOutsideSandbox(f"path escapes the repository root: {path}")
        return Path(real)

    async def read_file(self, path: str, limit: int = READ_LIMIT) -> bytes:
        return await asyncio.to_thread(read_regular, Path(os.path.realpath(self.checkout)), self.resolve(path), limit)

    async def write_file(self, path: str, data: bytes) -> None:
        await asyncio.to_thread(write_regular, Path(os.path.realpath(self.checkout)), self.resolve(path), data)

    async def list_dir(self, path: str) -> list[str]:
        return await asyncio.to_thread(list_names, Path(os.path.realpath(self.checkout)), self.resolve(path))

    # -- result ----------------------------------------------------------------------

    async def snapshot(self, message: str) -> str | None:
        await asyncio.to_thread(check_nested_repos, self.checkout)
        await self._git.run("add", "--all", "--", ".")
        if self._head != self.spec.base_commit:  # a second snapshot: is anything new since the first?
            code, _, _ = await self._git.run_full("diff", "--cached", "--quiet")
            if code == 0:
                return None
        changed = await check_staged(self._git, self.spec.base_commit, max_file_bytes=self._opts.max_file_bytes,
                                     max_files=self._opts.max_changed_files)
        if not changed:
            return None
        # No automatic gc in this short-lived repository: it could repack the objects being copied.
        await self._git.run("-c", "gc.auto=0", "-c", "maintenance.auto=false", "commit", "--quiet", "--no-verify",
                            "-m", message)
        sha = self._head = await self._git.run("rev-parse", "HEAD")
        # Into the hub: the objects this repository made (the rest it borrows from the hub), then
        # the branch, which git refuses to move to an object the hub does not have.
        await asyncio.to_thread(copy_objects, self.root / "git" / "objects", self.spec.hub / "objects")
        await Git(self.spec.hub).run("update-ref", f"refs/heads/{self.spec.branch}", sha)
        return sha


    async def peek(self, parents: Sequence[str], message: str) -> Peek | None:
        """The checkout as it is now, as a commit in the hub (see `longshot.sandboxes.worktree`)."""
        return await peek_commit(self._git, self.root / "git", self.spec.hub, parents, message,
                                 max_file_bytes=self._opts.max_file_bytes, max_files=self._opts.max_changed_files)

    async def put_tree(self, tree: str) -> None:
        await put_tree(self._git, tree)
