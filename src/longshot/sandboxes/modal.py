"""The Modal provider: each sandbox is a Modal cloud container (``SANDBOX_PROVIDER=modal``).

Needs the SDK (``pip install 'longshot[modal]'``) and Modal credentials in the
orchestrator's environment (``modal token new``, or MODAL_TOKEN_ID and
MODAL_TOKEN_SECRET). The SDK uses them here; they never go into a container.

One container per task, created in the app ``MODAL_APP_NAME`` from the image
``MODAL_IMAGE`` (a registry image or a Dockerfile; default: Debian slim with Python 3.12,
pytest, git, Node.js and npm; any image needs bash, git and coreutils), with
``SANDBOX_CPU_CORES``, ``SANDBOX_MEMORY_MB``, ``SANDBOX_IDLE_TIMEOUT`` and a lifetime of
``WORKER_TIMEOUT`` plus the set-up time and a margin. The network is blocked unless
``SANDBOX_NETWORK=on``. A set-up command (``SANDBOX_SETUP_COMMAND``, a check's
dependency set-up) needs the network, so it runs first in a container with network,
whose file system then becomes the image of the blocked container the task uses.

Code goes in as a bundle written to a command's stdin and comes back as a bundle on a
command's stdout (`longshot.sandboxes.bundle`); file tools and commands go through the
SDK's ``exec`` (scripts in `longshot.sandboxes.modal_scripts`) with timeouts and capped
output. Every container is terminated when its ``async with`` block ends, however it
ends; each is tagged with the run id and its orchestrator (`longshot.sandboxes.orphans`),
so `sweep_orphans` terminates those a crashed orchestrator left.

The SDK is reached only through ``self.sdk`` (the ``modal`` module, imported lazily, or a
stand-in such as `longshot.testing.fake_modal`), and only with ``.aio`` calls.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longshot.capture import CappedReader
from longshot.errors import ConfigError, LongshotError, PathOutsideSandbox, SandboxError, SandboxLost
from longshot.errors import FileRefused, SandboxUnavailable, SetupFailed
from longshot.errors import SnapshotRefused
from longshot.sandboxes import modal_scripts as scripts
from longshot.sandboxes.base import READ_LIMIT, ExecResult, Leftover, OnOutput, Profile, Sandbox, SandboxSpec
from longshot.sandboxes.bundle import MAX_BUNDLE_BYTES, BundleCache, ResultRules, import_result
from longshot.sandboxes.orphans import Owner

TAG, RUN_TAG, OWNER_TAG, TASK_TAG = "longshot", "longshot-run", "longshot-owner", "longshot-task"
ENV = {"CI": "1", "TERM": "dumb", "GIT_TERMINAL_PROMPT": "0", "PYTHONDONTWRITEBYTECODE": "1",
       "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
"""The environment commands get on top of the image's own: never a key or a token."""
CHUNK = 1 << 20
TRANSLATE: tuple[tuple[str, type[LongshotError]], ...] = (
    ("SandboxTerminatedError", SandboxLost), ("SandboxTimeoutError", SandboxLost), ("NotFoundError", SandboxLost),
    ("AuthError", ConfigError), ("ConnectionError", SandboxUnavailable), ("InternalFailure", SandboxUnavailable),
    ("ServiceError", SandboxUnavailable), ("InternalError", SandboxUnavailable),
    ("ResourceExhaustedError", SandboxUnavailable), ("TimeoutError", SandboxUnavailable), ("Error", SandboxError),
)
"""``modal.exception`` class (by name, most specific first) → ours. See `map_errors`."""


@dataclass
class ModalOptions:
    """What Modal sandboxes look like (built from Config by the composition root)."""

    app_name: str = "longshot"
    image: str | None = None
    """A registry image (``python:3.12``) or the path of a Dockerfile; None: the default image."""
    cpus: float = 4
    memory_mb: int = 8192
    lifetime: int = 1800 + 900 + 300
    idle_timeout: int = 300
    network: bool = False
    setup_command: str | None = None
    setup_timeout: float = 900.0
    output_limit: int = 64_000
    rules: ResultRules = ResultRules()


@contextmanager
def map_errors(sdk: Any, what: str) -> Iterator[None]:
    """Translate ``modal.exception`` errors into ours."""
    try:
        yield
    except sdk.exception.Error as e:
        ours = next(cls for name, cls in TRANSLATE if isinstance(e, getattr(sdk.exception, name, ())))
        if ours is ConfigError:
            raise ConfigError(f"MODAL_TOKEN_ID: Modal refused the credentials while {what}: {e}. Fix: run "
                              "`modal token new` or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET.") from e
        lost = " (the container is gone)" if ours is SandboxLost else ""
        raise ours(f"{what}{lost}: {type(e).__name__}: {str(e)[:500]}") from e


class ModalSandboxProvider:
    """Opens `ModalSandbox` es in the Modal app ``options.app_name`` for run ``run_id``."""

    def __init__(self, work_dir: Path, options: ModalOptions, run_id: str, *, sdk: Any = None,
                 owner: Owner | None = None) -> None:
        if sdk is None:
            import modal as sdk
        self.sdk = sdk
        self.options = options
        self.run_id = run_id
        self.owner = owner or Owner.current()
        self.bundles = BundleCache(work_dir / "bundles")
        self.scratch = work_dir / "imports"
        self._app: Any = None
        self._image: Any = None

    def describe(self) -> Profile:
        o = self.options
        network = "network ON (SANDBOX_NETWORK=on)" if o.network else "network blocked"
        return Profile(description=f"Modal app {o.app_name}, image {o.image or 'default (python 3.12, node)'}: a "
                                   f"container per task, {network}, {o.cpus:g} CPU, {o.memory_mb} MiB, lifetime "
                                   f"{o.lifetime}s, idle timeout {o.idle_timeout}s; code moves as git bundles, "
                                   "no credentials", weakened=o.network)

    async def app(self) -> Any:
        if self._app is None:
            with map_errors(self.sdk, f"looking up the Modal app {self.options.app_name}"):
                self._app = await self.sdk.App.lookup.aio(self.options.app_name, create_if_missing=True)
        return self._app

    def image(self) -> Any:
        if self._image is None:
            image, Image = self.options.image, self.sdk.Image
            if not image:
                self._image = (Image.debian_slim(python_version="3.12").apt_install("git", "nodejs", "npm")
                               .pip_install("pytest"))
            elif Path(image).is_file():
                self._image = Image.from_dockerfile(image)
            else:
                self._image = Image.from_registry(image)
        return self._image

    async def recover(self, hub: Path, message: Callable[[str], str]) -> list[Leftover]:
        """A dead run's containers hold their files remotely; `sweep_orphans` ends them."""
        return []

    async def sweep_orphans(self) -> list[str]:
        app = await self.app()
        killed: list[str] = []
        with map_errors(self.sdk, "listing Modal sandboxes"):
            async for sb in self.sdk.Sandbox.list.aio(app_id=app.app_id, tags={TAG: "1"}):
                tags = await sb.get_tags.aio()
                owner = Owner.parse(tags.get(OWNER_TAG, ""))
                if owner is not None and owner.dead():
                    await sb.terminate.aio()
                    killed.append(f"Modal sandbox {sb.object_id} (run {tags.get(RUN_TAG)}, task {tags.get(TASK_TAG)})")
        return killed

    async def _create(self, spec: SandboxSpec, image: Any, *, network: bool) -> Any:
        o = self.options
        tags = {TAG: "1", RUN_TAG: self.run_id, OWNER_TAG: self.owner.tag, TASK_TAG: spec.task_id}
        app = await self.app()
        with map_errors(self.sdk, f"creating a Modal sandbox for {spec.task_id}"):
            return await self.sdk.Sandbox.create.aio(
                app=app, image=image, tags=tags, timeout=o.lifetime, idle_timeout=o.idle_timeout, cpu=float(o.cpus),
                memory=o.memory_mb, block_network=not network)

    @asynccontextmanager
    async def open(self, spec: SandboxSpec) -> AsyncIterator[Sandbox]:
        bundle = await self.bundles.base(spec.hub, spec.base_commit)
        data = await asyncio.to_thread(bundle.read_bytes)
        setups = [s for s in (self.options.setup_command, spec.setup) if s]
        image = self.image()
        if setups and not self.options.network:
            image = await self._prepared_image(spec, data, setups)
            data, setups = b"", []
        sb = await self._create(spec, image, network=self.options.network)
        try:
            sandbox = ModalSandbox(sb, spec, self)
            if data:
                await sandbox.unpack(data)
            for command in setups:
                await sandbox.setup(command)
            yield sandbox
        finally:
            await _terminate(self.sdk, sb)

    async def _prepared_image(self, spec: SandboxSpec, data: bytes, setups: list[str]) -> Any:
        """The set-up run with the network on, frozen into an image (whose containers will have none)."""
        sb = await self._create(spec, self.image(), network=True)
        try:
            prep = ModalSandbox(sb, spec, self)
            await prep.unpack(data)
            for command in setups:
                await prep.setup(command)
            with map_errors(self.sdk, f"saving the set-up of {spec.task_id}"):
                return await sb.snapshot_filesystem.aio(timeout=300)
        finally:
            await _terminate(self.sdk, sb)


async def _terminate(sdk: Any, sb: Any) -> None:
    """Terminate ``sb``; shielded, so a cancellation of the task cannot skip it."""
    with map_errors(sdk, "terminating a Modal sandbox"):
        await asyncio.shield(sb.terminate.aio())


class ModalSandbox:
    """One task's Modal container: checkout at /workspace, git metadata in /longshot/git."""

    def __init__(self, sb: Any, spec: SandboxSpec, provider: ModalSandboxProvider) -> None:
        self.sb = sb
        self.spec = spec
        self._provider = provider
        self._sdk = provider.sdk
        self._head = spec.base_commit

    async def _run(self, script: str, *args: str, stdin: bytes | None = None, timeout: float = 120,
                   limit: int = 64_000, what: str, workdir: str | None = None,
                   on_output: OnOutput | None = None) -> tuple[int, CappedReader, CappedReader]:
        """Run a script of `modal_scripts` (args as positional parameters); (exit code, stdout, stderr)."""
        out, err = CappedReader(limit), CappedReader(limit if workdir else 64_000)
        if on_output is not None:
            out.on_output = err.on_output = lambda _: on_output(out.total + err.total)
        with map_errors(self._sdk, f"{what} in the sandbox of {self.spec.task_id}"):
            proc = await self.sb.exec.aio("bash", "-c", script, "longshot", *args, timeout=math.ceil(timeout) + 10,
                                          workdir=workdir, env=ENV, text=False)
            if stdin is not None:
                for i in range(0, len(stdin), CHUNK):
                    proc.stdin.write(stdin[i : i + CHUNK])
                    await proc.stdin.drain.aio()
            proc.stdin.write_eof()
            await proc.stdin.drain.aio()

            async def pump(stream: Any, reader: CappedReader) -> None:
                async for chunk in stream:
                    reader.feed(chunk.encode() if isinstance(chunk, str) else chunk)

            try:
                async with asyncio.timeout(timeout + 30):
                    await asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err))
                    code = await proc.wait.aio()
            except TimeoutError:
                code = -1  # Modal's own exec timeout did not answer: count it as the command's timeout
        return code, out, err

    async def unpack(self, data: bytes) -> None:
        code, out, err = await self._run(scripts.UNPACK, self.spec.branch, self.spec.base_commit, stdin=data,
                                         timeout=600, what="unpacking the base commit")
        if code != 0:
            raise SandboxError(f"could not check out {self.spec.base_commit} in the Modal sandbox: {err.text()[-1000:]}")

    async def setup(self, command: str) -> None:
        result = await self.exec(command, self._provider.options.setup_timeout)
        if result.exit_code != 0:
            tail = (result.stdout + result.stderr)[-2000:]
            raise SetupFailed(f"the set-up command failed (exit {result.exit_code}): {command}\n{tail}",
                              command=command, output=tail)

    async def exec(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        started = time.monotonic()
        code, out, err = await self._run(scripts.RUN, f"{timeout:g}", command, timeout=timeout,
                                         limit=self._provider.options.output_limit, what="running a command",
                                         workdir=scripts.WORKSPACE, on_output=on_output)
        timed_out = code in (124, 137, -1) and time.monotonic() - started >= timeout * 0.99
        return ExecResult(exit_code=124 if timed_out else code, stdout=out.text(), stderr=err.text(),
                          timed_out=timed_out, truncated=out.truncated or err.truncated,
                          limit=f"time limit: killed after {timeout:g}s" if timed_out else None)

    async def _file(self, script: str, path: str, *args: str, stdin: bytes | None = None, limit: int = 64_000) -> bytes:
        code, out, err = await self._run(script, _relative(path), *args, stdin=stdin, limit=limit,
                                         what="a file operation")
        if code == 0:
            if out.truncated:
                raise SandboxError(f"{path} is larger than {limit // 2**20} MiB, too large to read whole")
            return out.data()
        errors: dict[int, Exception] = {
            2: FileNotFoundError(2, "No such file or directory", path), 3: PathOutsideSandbox(
                f"path escapes the repository root: {path}"), 4: IsADirectoryError(21, "Is a directory", path),
            5: NotADirectoryError(20, "Not a directory", path), 6: FileRefused(
                f"{path} is not a regular file (a FIFO, device or socket); the file tools open regular files only")}
        raise errors.get(code) or SandboxError(f"file operation on {path} failed ({code}): {err.text()[-500:]}")

    async def read_file(self, path: str, limit: int = READ_LIMIT) -> bytes:
        return await self._file(scripts.READ, path, str(limit), limit=2 * limit + 2)

    async def write_file(self, path: str, data: bytes) -> None:
        await self._file(scripts.WRITE, path, stdin=data)

    async def list_dir(self, path: str) -> list[str]:
        raw = await self._file(scripts.LIST, path, limit=2 * MAX_READ)
        return sorted(e for e in os.fsdecode(raw).split("\0") if e)

    async def snapshot(self, message: str) -> str | None:
        code, out, err = await self._run(scripts.PACK, self.spec.branch, self.spec.base_commit, timeout=600,
                                         limit=2 * MAX_BUNDLE_BYTES, what="taking the result")
        if code == 10:
            return None
        if code == 3:
            raise SnapshotRefused("submodules and nested repositories are not allowed",
                                  [p.removeprefix("./").removesuffix("/.git") for p in err.text().split()])
        if code != 0:
            raise SandboxError(f"could not take the result of {self.spec.task_id} ({code}): {err.text()[-1000:]}")
        if out.truncated:
            raise SnapshotRefused(f"the result is larger than {MAX_BUNDLE_BYTES // 2**30} GiB", [self.spec.branch])
        commit = await import_result(self.spec.hub, out.data(), base=self.spec.base_commit,
                                     parent=self._head, branch=self.spec.branch, message=message,
                                     rules=self._provider.options.rules, scratch=self._provider.scratch)
        self._head = commit or self._head
        return commit

    def socket_path(self, name: str) -> tuple[Path, str]:
        raise SandboxError("a Modal sandbox runs in the cloud and cannot reach a Unix socket of the "
                           "orchestrator; use WORKER_HARNESS=builtin")


MAX_READ = 64 * 2**20
"""Largest listing `list_dir` returns whole."""


def _relative(path: str) -> str:
    """``path`` relative to the checkout; refuses what the local sandbox refuses before touching the container."""
    if "\x00" in path:
        raise PathOutsideSandbox(f"path contains a NUL byte: {path!r}")
    if path.startswith(scripts.WORKSPACE + "/"):
        path = path[len(scripts.WORKSPACE) + 1 :]
    if path.startswith(("/", "~")):
        raise PathOutsideSandbox(f"absolute paths are not allowed: {path} (use a path relative to the repository root)")
    return path or "."
