"""What a dead run left in its sandboxes (`pipeline/salvage.py`): committed to the branches a
resumed run carries on (a task's with its trailers, ``interrupted``), published with the next
state write, set aside when it breaks a snapshot rule, and each outcome told by a typed warning.

Real sandboxes of the local provider (bubblewrap) left behind as a killed orchestrator leaves
them; a small fake of the provider protocol for what only a provider's failure can show."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from longshot.crash import CrashPoints
from longshot.errors import SandboxError
from longshot.events import MemorySink, RunWarning
from longshot.hub import Hub
from longshot.pipeline.salvage import clean_leftovers
from longshot.pipeline.state import RunState, StateStore
from longshot.sandboxes.base import Leftover, SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import make_remote
from longshot.types import Task

from hubkit import open_hub, refs


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


async def leave(provider: LocalSandboxProvider, hub: Hub, task_id: str, branch: str, files: dict[str, str]) -> Path:
    """A sandbox with ``files`` written, left on disk as if its orchestrator had been killed."""
    spec = SandboxSpec(task_id=task_id, branch=branch, base_commit=await hub.tip(), hub=hub.path)
    async with provider.open(spec) as sb:
        for path, text in files.items():
            await sb.write_file(path, text.encode())
        left = sb.root.with_name(f"{task_id}-{dead_pid()}-1")  # type: ignore[attr-defined]
        shutil.copytree(sb.root, left, symlinks=True)  # type: ignore[attr-defined]
    return left


def local(tmp_path: Path) -> LocalSandboxProvider:
    """Full checkouts (the copy-on-write kind is salvaged in tests/sandboxes/test_overlay.py): a
    sandbox directory copied under a dead pid's name is then exactly what a killed run leaves."""
    return LocalSandboxProvider(tmp_path / "work", LocalOptions(isolation="bubblewrap", overlay="off"))


def record(start: str, *tasks: Task) -> RunState:
    return RunState(run_id="r1", request="q", target_branch="main", start_commit=start, tasks=list(tasks))


def warnings(sink: MemorySink, *codes: str) -> list[tuple[str, str]]:
    return [(w.code, w.message) for w in sink.of_type(RunWarning) if not codes or w.code in codes]


SALVAGE = ("leftover.salvaged", "leftover.unsalvaged")
"""The real sweep also cleans other dead runs' folders in /tmp (said as leftover.cleaned): not ours to count."""


async def test_a_dead_runs_work_is_committed_to_its_branches_and_published(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub = await open_hub(tmp_path, target)
    sink = MemorySink()
    store = StateStore(hub, sink, CrashPoints())
    t1 = Task(id="t1", description="write the parser", branch="worker/t1", attempts=2)
    state = record(await hub.tip(), t1)
    provider = local(tmp_path)
    kept = await leave(provider, hub, "t1", "worker/t1", {"parser.py": "def parse(): ...\n"})
    ghost = await leave(provider, hub, "ghost", "worker/ghost", {"g.txt": "g\n"})
    gate = await leave(provider, hub, "gate", "worker/gate", {"scratch.txt": "checks ran here\n"})
    foreign = await leave(provider, hub, "x", "other/x", {"x.txt": "x\n"})

    await clean_leftovers(provider, hub, state, store, sink)

    salvaged = await hub.git.rev_parse("refs/heads/worker/t1")
    assert salvaged and await hub.git.run("show", f"{salvaged}:parser.py") == "def parse(): ..."
    message = await hub.git.run("log", "-1", "--format=%B", salvaged)
    assert message.startswith("write the parser\n\nSalvaged from a run that was killed.")
    assert message.endswith("Longshot-Task: t1\nLongshot-Status: interrupted\nLongshot-Attempt: 2")
    ghost_tip = await hub.git.rev_parse("refs/heads/worker/ghost")
    assert ghost_tip and await hub.git.run("log", "-1", "--format=%s", ghost_tip) == (
        "Salvaged work of worker/ghost from an interrupted run")
    assert await hub.git.rev_parse("refs/heads/worker/gate") is None  # a check sandbox: nothing to keep
    assert await hub.git.rev_parse("refs/heads/other/x") is None  # not a branch of Longshot's
    assert not any(p.exists() for p in (kept, ghost, gate, foreign))
    said = warnings(sink, *SALVAGE)
    assert sorted(code for code, _ in said) == ["leftover.salvaged", "leftover.salvaged"]
    assert f"salvaged the work left in sandbox {kept.name} onto worker/t1 ({salvaged[:10]})" in [m for _, m in said]

    written = await store.flush(lambda: state)  # the next state write publishes what was salvaged

    assert written and "salvaged" in (await hub.git.run("log", "-1", "--format=%s", written))
    assert refs(target, "refs/heads/worker/") == {"refs/heads/worker/t1": salvaged, "refs/heads/worker/ghost": ghost_tip}


async def test_work_that_breaks_a_snapshot_rule_is_set_aside_and_said(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n"})
    hub = await open_hub(tmp_path, target)
    sink = MemorySink()
    store = StateStore(hub, sink, CrashPoints())
    t1 = Task(id="t1", description="do it", branch="worker/t1")
    start = await hub.tip()
    provider = local(tmp_path)
    left = await leave(provider, hub, "t1", "worker/t1", {"ok.txt": "fine\n"})
    os.symlink("/etc/passwd", left / "checkout" / "leak")

    await clean_leftovers(provider, hub, record(start, t1), store, sink)

    [(code, message)] = warnings(sink, *SALVAGE)
    aside = tmp_path / "work" / "set-aside" / left.name
    assert code == "leftover.unsalvaged" and f"could not salvage sandbox {left.name} of a dead run" in message
    assert "symlinks must point inside the repository" in message and str(aside) in message
    assert (aside / "checkout" / "ok.txt").read_text() == "fine\n"  # kept on disk, never deleted
    assert await hub.git.rev_parse("refs/heads/worker/t1") is None
    assert await store.flush(lambda: record(start, t1)) is None  # nothing was salvaged: no write asked for


class Provider:
    """The two calls of the sandbox provider protocol that salvage makes, played from a table."""

    def __init__(self, left: list[tuple[str, str]], swept: list[str] | Exception) -> None:
        self.left = left
        self.swept = swept
        self.messages: dict[str, str] = {}

    async def recover(self, hub: Path, message: Callable[[str], str]) -> list[Leftover]:
        found = []
        for name, branch in self.left:
            self.messages[branch] = message(branch)
            found.append(Leftover(name=name, branch=branch, commit="c" * 40 if self.messages[branch] else None))
        return found

    async def sweep_orphans(self) -> list[str]:
        if isinstance(self.swept, Exception):
            raise self.swept
        return self.swept


async def test_each_branch_gets_the_message_its_owner_calls_for(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hub", "unused", "main", ("a", "b"), prefix="ls/")
    sink = MemorySink()
    store = StateStore(hub, sink, CrashPoints())
    known = Task(id="a", description="add the thing", branch="ls/a", continue_from="a0", attempts=1)
    provider = Provider([(n, f"ls/{n}") for n in ("a", "b", "gate", "reconciler", "b/gate")]
                        + [("o", "main"), ("w", "worker/x")], [])

    await clean_leftovers(provider, hub, record("0" * 40, known), store, sink)  # type: ignore[arg-type]

    said = provider.messages
    assert said["ls/a"].endswith("Longshot-Task: a\nLongshot-Continues: a0\nLongshot-Status: interrupted\n"
                                 "Longshot-Attempt: 1\n")
    assert said["ls/b"] == "Salvaged work of ls/b from an interrupted run\n"
    assert [b for b, text in said.items() if not text] == ["ls/gate", "ls/reconciler", "ls/b/gate", "main", "worker/x"]
    assert [code for code, _ in warnings(sink)] == ["leftover.salvaged", "leftover.salvaged"]
    assert sorted(store._branches) == ["ls/a", "ls/b"]  # noqa: SLF001 - what the next write publishes


async def test_what_the_sweep_cleans_or_cannot_scan_is_said(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hub", "unused", "main", ("a", "b"))
    state = record("0" * 40)
    cases: list[tuple[list[str] | Exception, list[tuple[str, str]]]] = [
        ([], []),
        (["empty cgroup longshot-t1-9-1"], [("leftover.cleaned", "cleaned up 1 leftovers of runs whose orchestrator "
                                                                 "died: empty cgroup longshot-t1-9-1")]),
        (SandboxError("the remote service is down"),
         [("leftover.scan_failed", "could not look for leftovers of crashed runs: the remote service is down")]),
    ]
    for swept, expected in cases:
        sink = MemorySink()
        await clean_leftovers(Provider([], swept), hub, state, StateStore(hub, sink, CrashPoints()), sink)  # type: ignore[arg-type]
        assert warnings(sink) == expected

    many = [f"task dir t{i}-1-1" for i in range(25)]
    sink = MemorySink()
    await clean_leftovers(Provider([], many), hub, state, StateStore(hub, sink, CrashPoints()), sink)  # type: ignore[arg-type]
    [(code, message)] = warnings(sink)
    assert code == "leftover.cleaned" and message.startswith("cleaned up 25 leftovers")
    assert "t19-1-1" in message and "t20-1-1" not in message and message.endswith("; task dir t19-1-1 ...")


async def test_an_unexpected_provider_error_is_not_swallowed(tmp_path: Path) -> None:
    """Only a sandbox error of the sweep is said and survived; anything else is a bug and stops the run."""
    hub = Hub(tmp_path / "hub", "unused", "main", ("a", "b"))
    sink = MemorySink()
    provider = Provider([], RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        await clean_leftovers(provider, hub, record("0" * 40), StateStore(hub, sink, CrashPoints()), sink)  # type: ignore[arg-type]
    assert sink.events == []
