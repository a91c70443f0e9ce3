"""The Ray provider: each sandbox is an actor on some node of a Ray cluster.

For users who run their own machines: ``RAY_ADDRESS`` names the cluster (unset: a local
cluster is started for the run). One actor per task asks Ray for ``SANDBOX_CPU_CORES``
CPUs and ``SANDBOX_MEMORY_MB`` of memory, so Ray places it on a node with room.

On its node the actor (`SandboxActor`) turns the base bundle (`longshot.sandboxes.bundle`)
into a node-local hub and opens a `LocalSandbox` on it: the same bubblewrap profile,
limits, output caps and snapshot checks as the local provider. The orchestrator sends
only the bundle, commands and file contents; the result comes back as a bundle and is
checked and committed by the orchestrator (`import_result`).

Lifetime: the actor is killed when its task's ``async with`` block ends, however it
ends. Actors are owned by the orchestrator's Ray driver, so Ray also kills them when the
orchestrator dies; each is named ``<run id>:<owner>:<task>-<n>`` in the ``longshot``
namespace, so `sweep_orphans` finds any a dead orchestrator left, and it runs
`longshot.sandboxes.ray_node.sweep_node` on every node for what a killed actor's
sandbox still ran. A lost actor or node raises `SandboxLost`, which the retry table
answers with a fresh sandbox.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from longshot.errors import ConfigError, LongshotError, SandboxError, SandboxLost, SandboxUnavailable
from longshot.sandboxes.base import READ_LIMIT, ExecResult, Leftover, OnOutput, Profile, Sandbox, SandboxSpec
from longshot.sandboxes.bundle import BundleCache, ResultRules, import_result
from longshot.sandboxes.local import ENV_ALLOW, LocalOptions
from longshot.sandboxes.orphans import Owner
from longshot.sandboxes.ray_node import SandboxActor, sweep_node

NAMESPACE = "longshot"
GRACE = 60.0
"""Seconds an actor may take beyond a command's own timeout before it counts as lost."""
CLUSTER_ENV = (*ENV_ALLOW, "HOME", "USER", "LOGNAME", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH")
"""What a local cluster started by Longshot inherits (plus ``RAY_*``): never keys or tokens."""

TRANSLATE: tuple[tuple[str, type[SandboxError]], ...] = (
    ("RayActorError", SandboxLost), ("NodeDiedError", SandboxLost), ("WorkerCrashedError", SandboxLost),
    ("LocalRayletDiedError", SandboxLost), ("ObjectLostError", SandboxLost), ("OutOfMemoryError", SandboxLost),
    ("GetTimeoutError", SandboxUnavailable), ("ActorUnschedulableError", SandboxUnavailable),
    ("RayError", SandboxError),
)
"""Ray exception (by class name, most specific first) → ours. See `map_errors`."""


@dataclass
class RayOptions:
    """Where and how big Ray sandboxes are (built from Config by the composition root)."""

    address: str | None = None
    cpus: float = 4
    memory_mb: int = 8192
    local: LocalOptions = field(default_factory=LocalOptions)
    """The profile applied on the node (isolation, limits, snapshot rules, set-up command)."""
    actor_options: dict[str, Any] = field(default_factory=dict)
    """Extra Ray actor options (e.g. custom ``resources`` to pin sandboxes to some nodes)."""
    fit: tuple[bool, bool] = (False, False)
    """Whether ``cpus`` and ``memory_mb`` are defaults, to be lowered to the largest node when it is smaller."""


@contextmanager
def map_errors(what: str) -> Iterator[None]:
    """Translate Ray's exceptions into ours; errors raised by our own code on the node pass through."""
    import ray.exceptions as rex

    try:
        yield
    except rex.RayTaskError as e:
        cause = e.cause
        if isinstance(cause, (LongshotError, OSError)) and not isinstance(cause, rex.RayError):
            raise cause from None
        raise SandboxError(f"{what} failed on the Ray node: {cause!r}") from e
    except rex.RayError as e:
        ours = next(cls for name, cls in TRANSLATE if isinstance(e, getattr(rex, name)))
        lost = " (the actor or its node is gone)" if ours is SandboxLost else ""
        raise ours(f"{what}{lost}: {type(e).__name__}: {str(e)[:500]}") from e


def connect(address: str | None) -> Any:
    """The ``ray`` module, connected to ``address`` or to a local cluster started with a clean environment."""
    import ray

    if ray.is_initialized():
        return ray
    if address:
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            why = f"{e} ({str(e.__cause__)[:300]})" if e.__cause__ else str(e)
            raise ConfigError(f"RAY_ADDRESS: cannot connect to the Ray cluster at {address}: {why}. Fix: start the "
                              "cluster (ray start --head), correct RAY_ADDRESS (unset: a local cluster), and give this "
                              "machine the cluster's auth token if it uses one (RAY_AUTH_MODE=token).") from e
        return ray
    # The cluster's processes inherit this process's environment, which holds the model keys:
    # start them from an allow-list instead (briefly, before anything else runs).
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in saved.items() if k in CLUSTER_ENV or k.startswith("RAY_")})
    try:
        ray.init(namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return ray


class RaySandboxProvider:
    """Opens `RaySandbox` es on the cluster of ``options.address`` for run ``run_id``."""

    def __init__(self, work_dir: Path, options: RayOptions, run_id: str, owner: Owner | None = None) -> None:
        self.options = options
        self.run_id = run_id
        self.owner = owner or Owner.current()
        self.ray = connect(options.address)
        self.bundles = BundleCache(work_dir / "bundles")
        self.scratch = work_dir / "imports"
        self.rules = ResultRules(options.local.max_file_bytes, options.local.max_changed_files, options.local.author)
        self._counter = 0
        self._actor_class = self.ray.remote(SandboxActor)
        self._sweeper: Any = None
        self._nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        self.adapted: list[str] = []
        self._check_fits()

    def _check_fits(self) -> None:
        if "resources" in self.options.actor_options:
            return  # custom placement: the user knows which nodes qualify
        cpus = max((n["Resources"].get("CPU", 0) for n in self._nodes), default=0)
        memory = max((n["Resources"].get("memory", 0) for n in self._nodes), default=0) / 2**20
        if 0 < cpus < self.options.cpus and self.options.fit[0]:
            self.adapted.append(f"SANDBOX_CPU_CORES: the default {self.options.cpus:g} CPUs per sandbox is more than "
                                f"the largest Ray node has ({cpus:g}); using {cpus:g}. Set SANDBOX_CPU_CORES to choose")
            self.options.cpus = cpus
        if 0 < memory < self.options.memory_mb and self.options.fit[1]:
            self.adapted.append(f"SANDBOX_MEMORY_MB: the default {self.options.memory_mb} MiB per sandbox is more "
                                f"than the largest Ray node offers ({memory:.0f}); using {int(memory) // 2}")
            self.options.memory_mb = int(memory) // 2
        if cpus < self.options.cpus:
            raise ConfigError(f"SANDBOX_CPU_CORES: each sandbox asks Ray for {self.options.cpus:g} CPUs, but the "
                              f"largest node of the cluster has {cpus:g}. Fix: lower SANDBOX_CPU_CORES or add bigger nodes.")
        if memory < self.options.memory_mb:
            raise ConfigError(f"SANDBOX_MEMORY_MB: each sandbox asks Ray for {self.options.memory_mb} MiB, but the "
                              f"largest node offers {memory:.0f} MiB. Fix: lower SANDBOX_MEMORY_MB.")

    def describe(self) -> Profile:
        local = self.options.local
        where = f"Ray cluster at {self.options.address}" if self.options.address else "a local Ray cluster"
        isolation = ("bubblewrap on the node: no network, read-only system, private checkout, HOME and /tmp"
                     if local.isolation == "bubblewrap" else "NO isolation on the node (SANDBOX_ISOLATION=none)")
        network = "; network ON (SANDBOX_NETWORK=on)" if local.network else ""
        return Profile(description=f"{where} ({len(self._nodes)} nodes): an actor per task asking "
                                   f"{self.options.cpus:g} CPU and {self.options.memory_mb} MiB; {isolation}{network}; "
                                   "code moves as git bundles, no credentials", adapted=list(self.adapted),
                       weakened=local.isolation == "none" or local.network)

    async def recover(self, hub: Path, message: Callable[[str], str]) -> list[Leftover]:
        """A dead run's actors held their checkouts on their nodes; `sweep_orphans` ends them."""
        return []

    async def sweep_orphans(self) -> list[str]:
        killed: list[str] = []
        with map_errors("listing Ray actors"):
            named = self.ray.util.list_named_actors(all_namespaces=True)
        for entry in named:
            parsed = _parse_name(entry["name"]) if entry.get("namespace") == NAMESPACE else None
            if parsed is None or not parsed[1].dead():
                continue
            with map_errors(f"killing the orphaned actor {entry['name']}"):
                handle = self.ray.get_actor(entry["name"], namespace=NAMESPACE)
            await _destroy(self, handle, None)
            killed.append(f"Ray actor {entry['name']} (run {parsed[0]})")
        for node in [n for n in self.ray.nodes() if n.get("Alive")]:
            killed += await self.sweep_node(node["NodeID"])
        return killed

    async def sweep_node(self, node_id: str, wait_for_pid: int | None = None) -> list[str]:
        """Run `sweep_node` on one node: what dead actors' sandboxes left there."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if self._sweeper is None:
            self._sweeper = self.ray.remote(num_cpus=0)(sweep_node)
        with map_errors(f"cleaning up Ray node {node_id[:12]}"):
            found: list[str] = await asyncio.wait_for(self._sweeper.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(wait_for_pid), 60)
        return [f"leftovers on Ray node {line}" for line in found]

    @asynccontextmanager
    async def open(self, spec: SandboxSpec) -> AsyncIterator[Sandbox]:
        self._counter += 1
        name = f"{self.run_id}:{self.owner.tag}:{spec.task_id}-{self._counter}"
        bundle = await self.bundles.base(spec.hub, spec.base_commit)
        data = await asyncio.to_thread(bundle.read_bytes)
        node_options = replace(self.options.local, tasks_dir=None)
        with map_errors(f"creating the Ray actor for {spec.task_id}"):
            handle = self._actor_class.options(
                name=name, namespace=NAMESPACE, num_cpus=self.options.cpus,
                memory=self.options.memory_mb * 2**20, max_restarts=0, **self.options.actor_options,
            ).remote(node_options)
        sandbox = RaySandbox(handle, spec, self)
        try:
            with map_errors(f"starting the sandbox of {spec.task_id}"):
                sandbox.where = await handle.start.remote(data, spec.task_id, spec.branch, spec.base_commit,
                                                          spec.setup)
            yield sandbox
        finally:
            await asyncio.shield(_destroy(self, handle, sandbox.where))


class RaySandbox:
    """The orchestrator's handle on one task's actor."""

    def __init__(self, handle: Any, spec: SandboxSpec, provider: RaySandboxProvider) -> None:
        self.handle = handle
        self.spec = spec
        self._provider = provider
        self._head = spec.base_commit
        self.where: dict[str, Any] | None = None
        """The node id and pid of the actor, once started."""

    async def _call(self, what: str, method: str, *args: Any, timeout: float = GRACE) -> Any:
        with map_errors(f"{what} in the sandbox of {self.spec.task_id}"):
            try:
                return await asyncio.wait_for(getattr(self.handle, method).remote(*args), timeout)
            except TimeoutError:
                raise SandboxLost(f"{what}: the Ray actor of {self.spec.task_id} did not answer in {timeout:g}s") from None

    async def exec(self, command: str, timeout: float, on_output: OnOutput | None = None) -> ExecResult:
        """One actor call; output comes back at the end, so ``on_output`` is not called (a long
        silent-looking command counts against WORKER_STUCK_AFTER)."""
        result: ExecResult = await self._call("running a command", "exec", command, timeout, timeout=timeout + GRACE)
        return result

    async def read_file(self, path: str, limit: int = READ_LIMIT) -> bytes:
        data: bytes = await self._call("reading a file", "read_file", path, limit)
        return data

    async def write_file(self, path: str, data: bytes) -> None:
        await self._call("writing a file", "write_file", path, data)

    async def list_dir(self, path: str) -> list[str]:
        entries: list[str] = await self._call("listing a directory", "list_dir", path)
        return entries

    async def snapshot(self, message: str) -> str | None:
        data = await self._call("taking the result", "snapshot", message, timeout=GRACE * 5)
        if data is None:
            return None
        commit = await import_result(self.spec.hub, data, base=self.spec.base_commit, parent=self._head,
                                     branch=self.spec.branch, message=message, rules=self._provider.rules,
                                     scratch=self._provider.scratch)
        self._head = commit or self._head
        return commit

    def socket_path(self, name: str) -> tuple[Path, str]:
        raise SandboxError("a Ray sandbox runs on another node and cannot reach a Unix socket of the "
                           "orchestrator; use WORKER_HARNESS=builtin")

    async def probe(self) -> dict[str, Any]:
        """Where the actor runs and what it holds (pid, root, environment, node): for checks and tests."""
        info: dict[str, Any] = await self._call("probing", "probe")
        return info


async def _destroy(provider: RaySandboxProvider, handle: Any, where: dict[str, Any] | None) -> None:
    """Let the actor clean up its node directory and kill it; if it could not, sweep its node."""
    closed = False
    try:
        with map_errors("closing a Ray sandbox"):
            await asyncio.wait_for(handle.close.remote(), 15)
        closed = True
    except (SandboxError, TimeoutError):
        closed = False  # dead or hung: the kill below and the node sweep clean up instead
    finally:
        with map_errors("killing a Ray actor"):
            provider.ray.kill(handle, no_restart=True)
    if not closed and where is not None and any(n["NodeID"] == where["node_id"] and n.get("Alive")
                                                for n in provider.ray.nodes()):
        await provider.sweep_node(where["node_id"], wait_for_pid=where["pid"])


def _parse_name(name: str) -> tuple[str, Owner] | None:
    """(run id, owner) of an actor this provider named, or None."""
    parts = name.split(":", 2)
    owner = Owner.parse(parts[1]) if len(parts) == 3 else None
    return (parts[0], owner) if owner is not None else None
