"""The local sandbox provider: a private checkout per task, commands under bubblewrap.

Layout of one sandbox (under ``<work_dir>/tasks/<task>-<n>/``)::

    git/        a bare ``clone --shared`` of the hub: the task's git metadata, kept OUTSIDE
                the checkout and never mounted into the sandbox
    checkout/   the work tree: the only project directory commands can write
    home/ tmp/  the sandbox's private HOME and TMPDIR

The orchestrator commits the checkout from outside (`snapshot`) with hooks disabled and
fetches the commit into the hub. Commands run with a clean environment built from an
allow-list, stdin closed, output capped (head and tail kept), in a new session whose whole
process group is killed at the timeout and after every command.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from longshot.errors import PathOutsideSandbox, SandboxError
from longshot.git import Git
from longshot.sandboxes.base import ExecResult, Sandbox, SandboxSpec
from longshot.sandboxes.output import CappedReader

EXCLUDES = "\n".join(
    ["__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "node_modules/",
     ".venv/", "*.egg-info/", ".coverage", ".DS_Store"]
)
"""Never snapshotted: generated artifacts a worker's checks leave behind."""

ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "TZ")


class LocalSandboxProvider:
    """Opens `LocalSandbox` es under ``work_dir``. ``isolation`` is "bubblewrap" or "none"."""

    def __init__(
        self,
        work_dir: Path,
        *,
        isolation: str = "bubblewrap",
        network: bool = False,
        author: tuple[str, str] = ("Longshot", "longshot@localhost"),
        output_limit: int = 64_000,
    ) -> None:
        self.work_dir = work_dir
        self.isolation = isolation
        self.network = network
        self.author = author
        self.output_limit = output_limit
        self._counter = 0

    @asynccontextmanager
    async def open(self, spec: SandboxSpec) -> AsyncIterator[Sandbox]:
        self._counter += 1
        root = self.work_dir / "tasks" / f"{spec.task_id}-{os.getpid()}-{self._counter}"
        if root.exists():
            shutil.rmtree(root)
        sandbox = LocalSandbox(root, spec, self)
        try:
            await sandbox.create()
            yield sandbox
        finally:
            sandbox.kill_all()
            shutil.rmtree(root, ignore_errors=True)


class LocalSandbox:
    """One task's checkout on this machine. See the module docstring for the layout."""

    def __init__(self, root: Path, spec: SandboxSpec, provider: LocalSandboxProvider) -> None:
        self.root = root
        self.spec = spec
        self.checkout = root / "checkout"
        self.home = root / "home"
        self.tmp = root / "tmp"
        self._provider = provider
        self._git = Git(root, git_dir=root / "git", work_tree=self.checkout, author=provider.author)
        self._groups: set[int] = set()

    async def create(self) -> None:
        for d in (self.checkout, self.home, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        hub = Git(self.spec.hub)
        await hub.run("clone", "--quiet", "--shared", "--bare", str(self.spec.hub), str(self.root / "git"))
        (self.root / "git" / "info").mkdir(exist_ok=True)
        (self.root / "git" / "info" / "exclude").write_text(EXCLUDES + "\n")
        await self._git.run("checkout", "--quiet", "--force", "-B", self.spec.branch, self.spec.base_commit)

    # -- commands --------------------------------------------------------------------

    def _argv(self, command: str) -> list[str]:
        if self._provider.isolation == "none":
            return ["bash", "-c", command]
        argv = [
            "bwrap", "--die-with-parent", "--new-session", "--unshare-all",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/var/tmp",
            "--bind", str(self.checkout), str(self.checkout),
            "--bind", str(self.home), str(self.home),
            "--bind", str(self.tmp), str(self.tmp),
            "--chdir", str(self.checkout),
        ]
        if self._provider.network:
            argv.append("--share-net")
        return [*argv, "bash", "-c", command]

    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(
            HOME=str(self.home), TMPDIR=str(self.tmp), TERM="dumb", PYTHONDONTWRITEBYTECODE="1",
            GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0",
        )
        return env

    async def exec(self, command: str, timeout: float) -> ExecResult:
        limit = self._provider.output_limit
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv(command),
                cwd=self.checkout,
                env=self._env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise SandboxError(f"could not start a command in {self.checkout}: {e}") from e
        self._groups.add(proc.pid)
        out, err = CappedReader(limit), CappedReader(limit)
        readers = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # also ends anything the command left in the background
            self._groups.discard(proc.pid)
        with suppress(TimeoutError):
            await asyncio.wait_for(readers, 5)
        code = proc.returncode if proc.returncode is not None else -9
        return ExecResult(
            exit_code=124 if timed_out else code,
            stdout=out.text(), stderr=err.text(), timed_out=timed_out,
            truncated=out.truncated or err.truncated,
        )

    def kill_all(self) -> None:
        for pgid in list(self._groups):
            _kill_group(pgid)
        self._groups.clear()

    # -- files -----------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """The host path for ``path``; refuses absolute paths and escapes (symlinks too)."""
        if "\x00" in path:
            raise PathOutsideSandbox(f"path contains a NUL byte: {path!r}")
        if path.startswith("/") or path.startswith("~"):
            raise PathOutsideSandbox(f"absolute paths are not allowed: {path} (use a path relative to the repository root)")
        root = os.path.realpath(self.checkout)
        real = os.path.realpath(os.path.join(root, path or "."))
        if real != root and not real.startswith(root + os.sep):
            raise PathOutsideSandbox(f"path escapes the repository root: {path}")
        return Path(real)

    async def read_file(self, path: str) -> bytes:
        return await asyncio.to_thread(self.resolve(path).read_bytes)

    async def write_file(self, path: str, data: bytes) -> None:
        target = self.resolve(path)
        if target == Path(os.path.realpath(self.checkout)):
            raise IsADirectoryError(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(target.write_bytes, data)

    async def list_dir(self, path: str) -> list[str]:
        target = self.resolve(path)
        entries = sorted(os.scandir(target), key=lambda e: e.name)
        return [e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries]

    # -- result ----------------------------------------------------------------------

    async def snapshot(self, message: str) -> str | None:
        await self._git.run("add", "--all", "--", ".")
        code, _, _ = await self._git.run_full("diff", "--cached", "--quiet")
        if code == 0:
            return None
        await self._git.run("commit", "--quiet", "--no-verify", "-m", message)
        sha = await self._git.run("rev-parse", "HEAD")
        hub = Git(self.spec.hub)
        branch = self.spec.branch
        await hub.run("fetch", "--quiet", "--no-tags", str(self.root / "git"), f"+refs/heads/{branch}:refs/heads/{branch}")
        return sha


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
