"""A stand-in for the few parts of the ``modal`` SDK the Modal provider uses, for tests.

Modal has no offline mode. `FakeModal` is passed to the real adapter
(``ModalSandboxProvider(..., sdk=FakeModal(root))``) and does on this machine what Modal
would do: a "container" is a directory tree whose commands run under bubblewrap, with the
network cut when ``block_network`` is asked; ``exec`` starts real processes and kills them
at the exec timeout (``wait`` then answers -1, as Modal's does); ``snapshot_filesystem``
copies the container's files into an image; ``terminate`` kills everything.

Every call is recorded in `calls` with its arguments, and every byte written to a
process's stdin in `stdin`, so a test can check what was asked (image, resources,
timeouts, network policy, tags, terminations) and what was sent (never a credential).
Only the ``.aio`` forms exist: the blocking forms raise, as the adapter must not use them.

Not emulated: CPU, memory and idle timeout (recorded, not enforced); processes started in
the background do not outlive their ``exec`` (each exec is its own PID namespace).
Faults: `lose` ends a container the way Modal does on a timeout or a lost worker, and
`fail_next` makes the next call of a given name raise a given error.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from longshot.sandboxes.bwrap import SANDBOX_HOME, bwrap_argv, toolchain_paths


class _Aio:
    """A synchronicity-style SDK method: ``.aio`` is the async form; calling it blocking is refused."""

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.aio = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"blocking Modal call {self.name}() from async code: use {self.name}.aio()")


def _exceptions() -> SimpleNamespace:
    """The ``modal.exception`` classes the adapter translates, with the SDK's hierarchy."""
    error = type("Error", (Exception,), {})
    timeout = type("TimeoutError", (error,), {})
    names = {"AuthError": error, "NotFoundError": error, "InvalidError": error, "ConnectionError": error,
             "InternalFailure": error, "ServiceError": error, "InternalError": error, "ResourceExhaustedError": error,
             "SandboxTerminatedError": error, "SandboxTimeoutError": timeout, "ExecTimeoutError": timeout}
    classes = {name: type(name, (base,), {}) for name, base in names.items()}
    return SimpleNamespace(Error=error, TimeoutError=timeout, **classes)


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: str = ""
    """The sandbox (or image) the call was made on."""


@dataclass
class FakeImage:
    recipe: list[tuple[str, tuple[Any, ...]]]
    fake: FakeModal = field(repr=False)
    layer: Path | None = None
    """Files of a snapshot: copied into every container made from this image."""

    def _then(self, step: str, *args: Any, **kwargs: Any) -> FakeImage:
        self.fake.record(f"Image.{step}", args, kwargs)
        return FakeImage([*self.recipe, (step, args)], self.fake, self.layer)

    def apt_install(self, *packages: str, **kwargs: Any) -> FakeImage:
        return self._then("apt_install", *packages, **kwargs)

    def pip_install(self, *packages: str, **kwargs: Any) -> FakeImage:
        return self._then("pip_install", *packages, **kwargs)


@dataclass
class FakeModal:
    """The ``modal`` module as the adapter sees it. ``root`` holds the containers' files."""

    root: Path
    calls: list[Call] = field(default_factory=list)
    stdin: list[bytes] = field(default_factory=list)
    sandboxes: list[FakeSandbox] = field(default_factory=list)
    faults: dict[str, Exception] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.exception = _exceptions()
        self.App = SimpleNamespace(lookup=_Aio("App.lookup", self._lookup))
        self.Image = SimpleNamespace(debian_slim=self._image("debian_slim"), from_registry=self._image("from_registry"),
                                     from_dockerfile=self._image("from_dockerfile"))
        self.Sandbox = SimpleNamespace(create=_Aio("Sandbox.create", self._create), list=_Aio("Sandbox.list", self._list))
        self._ids = itertools.count(1)
        self._apps: dict[str, SimpleNamespace] = {}

    def record(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], target: str = "") -> None:
        self.calls.append(Call(name, args, kwargs, target))
        if (fault := self.faults.pop(name, None)) is not None:
            raise fault

    def fail_next(self, name: str, error: Exception) -> None:
        """The next call named ``name`` (e.g. ``Sandbox.exec``) raises ``error``."""
        self.faults[name] = error

    def named(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def running(self) -> list[FakeSandbox]:
        return [s for s in self.sandboxes if s.ended is None]

    def transcript(self) -> str:
        """Everything the adapter sent: every call with its arguments, and every stdin byte."""
        return "\n".join([repr(c) for c in self.calls] + [b.decode("utf-8", "replace") for b in self.stdin])

    def _image(self, step: str) -> Callable[..., FakeImage]:
        def build(*args: Any, **kwargs: Any) -> FakeImage:
            self.record(f"Image.{step}", args, kwargs)
            return FakeImage([(step, args)], self)
        return build

    async def _lookup(self, name: str, **kwargs: Any) -> SimpleNamespace:
        self.record("App.lookup", (name,), kwargs)
        if name not in self._apps:
            if not kwargs.get("create_if_missing"):
                raise self.exception.NotFoundError(f"App {name!r} not found")
            self._apps[name] = SimpleNamespace(app_id=f"ap-{len(self._apps) + 1}", name=name)
        return self._apps[name]

    async def _create(self, *args: str, **kwargs: Any) -> FakeSandbox:
        self.record("Sandbox.create", args, kwargs)
        for key, kind in (("timeout", int), ("idle_timeout", int), ("memory", int), ("cpu", float)):
            if kwargs.get(key) is not None and type(kwargs[key]) is not kind:
                raise self.exception.InvalidError(f"{key} must be {kind.__name__}, got {kwargs[key]!r}")
        sandbox = FakeSandbox(self, f"sb-{next(self._ids)}", kwargs)
        self.sandboxes.append(sandbox)
        return sandbox

    async def _list(self, **kwargs: Any) -> AsyncIterator[FakeSandbox]:
        self.record("Sandbox.list", (), kwargs)
        want = kwargs.get("tags") or {}
        for sandbox in list(self.sandboxes):
            in_app = kwargs.get("app_id") in (None, getattr(sandbox.kwargs.get("app"), "app_id", None))
            if sandbox.ended is None and in_app and want.items() <= sandbox.tags.items():
                yield sandbox

    def lose(self, sandbox: FakeSandbox, error: str = "SandboxTerminatedError") -> None:
        """End ``sandbox`` as Modal does when it times out or its worker is lost."""
        sandbox.kill(error)


class FakeSandbox:
    """One "container": ``<root>/<id>/{workspace,longshot,home,tmp}`` seen at /workspace, /longshot, HOME, /tmp."""

    def __init__(self, fake: FakeModal, object_id: str, kwargs: dict[str, Any]) -> None:
        self.fake = fake
        self.object_id = object_id
        self.kwargs = kwargs
        self.tags: dict[str, str] = dict(kwargs.get("tags") or {})
        self.dir = fake.root / object_id
        self.ended: str | None = None
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        image = kwargs.get("image")
        if isinstance(image, FakeImage) and image.layer is not None:
            shutil.copytree(image.layer, self.dir, symlinks=True)
        for d in ("workspace", "longshot", "home", "tmp"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.exec = _Aio("Sandbox.exec", self._exec)
        self.terminate = _Aio("Sandbox.terminate", self._terminate)
        self.get_tags = _Aio("Sandbox.get_tags", self._get_tags)
        self.snapshot_filesystem = _Aio("Sandbox.snapshot_filesystem", self._snapshot)
        self._expiry = (asyncio.get_running_loop().call_later(kwargs["timeout"], self.kill, "SandboxTimeoutError")
                        if kwargs.get("timeout") else None)

    def kill(self, why: str) -> None:
        if self.ended is None:
            self.ended = why
        for pgid in list(self._procs):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        if self._expiry is not None:
            self._expiry.cancel()

    def _alive(self) -> None:
        if self.ended == "SandboxTimeoutError":
            raise self.fake.exception.SandboxTimeoutError(f"Sandbox {self.object_id} timed out")
        if self.ended is not None:
            raise self.fake.exception.SandboxTerminatedError(f"Sandbox {self.object_id} was terminated")

    async def _get_tags(self) -> dict[str, str]:
        self.fake.record("Sandbox.get_tags", (), {}, self.object_id)
        return dict(self.tags)

    async def _terminate(self, **kwargs: Any) -> None:
        self.fake.record("Sandbox.terminate", (), kwargs, self.object_id)
        self.kill(self.ended or "terminated")
        for proc in list(self._procs.values()):  # reap them, as the container's end would
            with suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)

    async def _snapshot(self, *args: Any, **kwargs: Any) -> FakeImage:
        self.fake.record("Sandbox.snapshot_filesystem", args, kwargs, self.object_id)
        self._alive()
        layer = self.fake.root / f"{self.object_id}-snapshot"
        await asyncio.to_thread(shutil.copytree, self.dir, layer, symlinks=True)
        base = self.kwargs.get("image")
        recipe = base.recipe if isinstance(base, FakeImage) else []
        return FakeImage([*recipe, ("snapshot_filesystem", (self.object_id,))], self.fake, layer)

    async def _exec(self, *args: str, **kwargs: Any) -> FakeProcess:
        self.fake.record("Sandbox.exec", args, kwargs, self.object_id)
        self._alive()
        argv = bwrap_argv(checkout=self.dir / "workspace", home=self.dir / "home", tmp=self.dir / "tmp",
                          network=not self.kwargs.get("block_network", False),
                          ro_paths=toolchain_paths(os.environ.get("PATH", ""), []),
                          extra_binds=((self.dir / "longshot", "/longshot"),), chdir=kwargs.get("workdir") or "/",
                          root=False)  # a container's own root, as in Modal: not the host's identity rules
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": SANDBOX_HOME, "LANG": "C.UTF-8",
               **(self.kwargs.get("env") or {}), **(kwargs.get("env") or {})}
        proc = await asyncio.create_subprocess_exec(
            *argv, *args, env=env, start_new_session=True,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._procs[proc.pid] = proc
        return FakeProcess(self, proc, kwargs.get("timeout"), text=kwargs.get("text", True))


class FakeProcess:
    """``ContainerProcess``: stdout/stderr to iterate, stdin to write, ``wait`` for the exit code."""

    def __init__(self, sandbox: FakeSandbox, proc: asyncio.subprocess.Process, timeout: int | None, *,
                 text: bool) -> None:
        self.proc = proc
        self._sandbox = sandbox
        self.stdout = _Stream(proc.stdout, text)
        self.stderr = _Stream(proc.stderr, text)
        self.stdin = _Writer(proc, sandbox.fake)
        self.wait = _Aio("ContainerProcess.wait", self._wait)
        self.timed_out = False
        self._watch = asyncio.ensure_future(self._deadline(timeout)) if timeout else None

    async def _deadline(self, timeout: int) -> None:
        await asyncio.sleep(timeout)
        self.timed_out = True
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    async def _wait(self) -> int:
        code = await self.proc.wait()
        if self._watch is not None:
            self._watch.cancel()
        self._sandbox._procs.pop(self.proc.pid, None)
        if self._sandbox.ended is not None:
            self._sandbox._alive()
        return -1 if self.timed_out else code


class _Stream:
    def __init__(self, stream: asyncio.StreamReader | None, text: bool) -> None:
        self.stream = stream
        self.text = text

    async def __aiter__(self) -> AsyncIterator[bytes | str]:
        while self.stream is not None and (chunk := await self.stream.read(65536)):
            yield chunk.decode("utf-8", "replace") if self.text else chunk


class _Writer:
    def __init__(self, proc: asyncio.subprocess.Process, fake: FakeModal) -> None:
        self.proc = proc
        self.fake = fake
        self.drain = _Aio("StreamWriter.drain", self._drain)

    def write(self, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else bytes(data)
        self.fake.stdin.append(data)
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)

    def write_eof(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def _drain(self) -> None:
        if self.proc.stdin is not None:
            with suppress(ConnectionResetError, BrokenPipeError):  # the command did not read its stdin
                await self.proc.stdin.drain()
