"""The merge queue and its gate against a real hub, a real remote and the real local sandbox
provider (isolation "none": isolation is not what is tested here, and it keeps these fast).

- T8: a seeded flaky test in the target's suite neither stalls the queue nor gets a change
  blamed; the gate records it as flaky.
- T25: a model-based test (Hypothesis `RuleBasedStateMachine`) of the queue: passing,
  breaking and conflicting changes and external pushes, checked against a reference model
  and the invariants of the target branch after every step.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from longshot.events import Event, GateResult, MergeFailed, MergeHealth, MergeLanded
from longshot.hub import Hub
from longshot.pipeline.gate import Gate
from longshot.pipeline.merge import MergeQueue
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote
from longshot.types import MergeResult, Task, TaskStatus

PY = sys.executable
AUTHOR = ("Longshot", "longshot@localhost")


def merging_task(task_id: str) -> Task:
    task = Task(id=task_id, description=f"task {task_id}", branch=f"worker/{task_id}")
    task.move(TaskStatus.RUNNING)
    task.move(TaskStatus.MERGING)
    return task


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=repo, capture_output=True).returncode == 0


def commit_on(scratch: Path, hub: Hub, task_id: str, base: str, files: dict[str, str]) -> str:
    """A worker's commit for ``task_id`` on ``base``, pushed to the hub as worker/<id>."""
    git("checkout", "--quiet", "--detach", base, cwd=scratch)
    for path, text in files.items():
        target = scratch / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "--all", cwd=scratch)
    git("commit", "--quiet", "-m", f"Work on {task_id}\n\nLongshot-Task: {task_id}", cwd=scratch)
    sha = git("rev-parse", "HEAD", cwd=scratch)
    git("push", "--quiet", str(hub.path), f"{sha}:refs/heads/worker/{task_id}", cwd=scratch)
    return sha


def task_trailers(repo: Path, rev: str = "refs/heads/main") -> list[str]:
    """Every ``Longshot-Task`` trailer value on the history of ``rev`` (with repeats)."""
    out = git("log", "--format=%(trailers:key=Longshot-Task,valueonly,separator=%x2C)", rev, cwd=repo)
    return [v.strip() for line in out.splitlines() for v in line.split(",") if v.strip()]


# --------------------------------------------------------------------------------------
# T8: a flaky test does not stall the queue or get anyone blamed; it is recorded as flaky
# --------------------------------------------------------------------------------------

SEED = 26
"""Chosen (see `gate_outcomes`) so that, with 8 changes, both batch sizes tested see a flake
(and a base run that flakes, which the gate's rules call pre-existing) and no candidate ever
fails twice in a row (which the rules would, rightly, blame on the change)."""
FAIL_RATE = 0.3
N_TASKS = 8


def flakes(seed: int, run: int) -> bool:
    """Whether the flaky test fails on the ``run``-th check run (0-based) with ``seed``."""
    return random.Random(f"{seed}:{run}").random() < FAIL_RATE


FLAKY_TEST = f'''import os
import random


def test_sometimes():
    seed, run = os.environ.get("FLAKY_SEED"), os.environ.get("FLAKY_RUN")
    if seed is None:  # run outside the harness: no flake
        return
    assert random.Random(f"{{seed}}:{{run}}").random() >= {FAIL_RATE}, f"flaked on run {{run}}"
'''

FLAKY_CHECK = '''"""The check command: count this run (state outside the sandbox), then run the suite."""
import os
import pathlib
import subprocess
import sys

state = pathlib.Path({state!r})
counter = state / "counter"
run = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(run + 1))
env = dict(os.environ, FLAKY_SEED={seed!r}, FLAKY_RUN=str(run), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], env=env)
with open(state / "log", "a") as log:
    log.write(f"{{run}} {{code}}\\n")
sys.exit(code)
'''


def gate_outcomes(seed: int, checks: int) -> tuple[list[str], int, int]:
    """What the gate's rules make of ``checks`` successive checks, each on a new base (so the
    base cache never hits), given which runs flake: the verdicts and the number of runs.

    candidate passes -> "pass" (with a run of the base as long as no base has passed yet: the
    gate must learn that the command reports no tests, see `Gate._silent`); candidate fails,
    base fails twice -> "preexisting";
    candidate fails, base passes (at once, or on its second run) -> re-run the candidate:
    passes -> "flaky", fails -> "blamed". A base failure that does not repeat is a base
    flake, counted in ``gate.flakes``. Returns (verdicts, runs, base flakes).
    (Past a "blamed" verdict the sequence of checks would differ: callers require none.)
    """
    run, verdicts, base_flakes, silent = 0, [], 0, False
    for _ in range(checks):
        if not flakes(seed, run):
            run += 1
            if not silent:  # no per-test report: until a base passed without one too, run the base
                silent = not flakes(seed, run)
                run += 1
            verdicts.append("pass")
            continue
        run += 1
        silent = silent or not flakes(seed, run)
        if flakes(seed, run):  # the base run failed: run the base again
            run += 1
            if flakes(seed, run):
                run += 1
                verdicts.append("preexisting")
                continue
            base_flakes += 1
        run += 1
        verdicts.append("blamed" if flakes(seed, run) else "flaky")
        run += 1
    return verdicts, run, base_flakes


def verdict_kind(e: GateResult) -> str:
    if not e.ok:
        return "blamed"
    return "flaky" if e.flaky else "preexisting" if e.preexisting else "pass"


@pytest.mark.parametrize("max_batch", [1, 3])
async def test_t8_flaky_test_does_not_stall_the_queue_or_get_anyone_blamed(tmp_path: Path, max_batch: int) -> None:
    # With every change queued before the consumer starts and no verdict failing, the queue
    # checks batches of exactly max_batch changes (the last one smaller), each on a new tip.
    checks = math.ceil(N_TASKS / max_batch)
    expected, expected_runs, base_flakes = gate_outcomes(SEED, checks)
    assert "blamed" not in expected and "flaky" in expected, \
        f"SEED={SEED} no longer gives a deterministic flake without blame for {checks} checks: {expected}"

    remote = make_remote(tmp_path, {
        "calc.py": "def f():\n    return 1\n",
        "tests/test_calc.py": "from calc import f\n\n\ndef test_f():\n    assert f() == 1\n",
        "tests/test_flaky.py": FLAKY_TEST,
    })
    state = tmp_path / "flaky-state"
    state.mkdir()
    script = tmp_path / "flaky_check.py"  # trusted configuration, outside the repository
    script.write_text(FLAKY_CHECK.format(state=str(state), seed=str(SEED)))
    command = f"{PY} {script}"

    hub = Hub(tmp_path / "hub", url=str(remote), branch="main", author=AUTHOR)
    base = await hub.open()
    scratch = tmp_path / "scratch"
    git("clone", "--quiet", str(remote), str(scratch), cwd=tmp_path)
    events: list[Event] = []
    results: list[tuple[str, MergeResult]] = []
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(isolation="none"))
    gate = Gate(provider, hub, [command], events.append, timeout=60, branch="worker/gate")
    queue = MergeQueue(hub, "rebase", events.append, gate=gate, max_batch=max_batch)

    ids = [f"t{i}" for i in range(N_TASKS)]
    for i, task_id in enumerate(ids):
        commit = commit_on(scratch, hub, task_id, base, {
            f"m{i}.py": f"X = {i}\n",
            f"tests/test_m{i}.py": f"from m{i} import X\n\n\ndef test_x():\n    assert X == {i}\n",
        })
        queue.submit(merging_task(task_id), commit)
    queue.close()
    await asyncio.wait_for(queue.run(lambda t, r: results.append((t.id, r))), 60)  # the queue finishes: nothing stalls

    msg = f"SEED={SEED}, max_batch={max_batch}"
    failed = [e for e in events if isinstance(e, MergeFailed)]
    assert failed == [], f"{msg}: a change was blamed for the flaky test: {failed}"
    assert sorted(t for t, _ in results) == sorted(ids) and all(r.landed for _, r in results), f"{msg}: {results}"
    assert sorted(e.task_id for e in events if isinstance(e, MergeLanded)) == sorted(ids)
    assert queue.depth == 0

    # The check really flaked, run by run, exactly as seeded...
    log = [tuple(map(int, line.split())) for line in (state / "log").read_text().splitlines()]
    assert [run for run, _ in log] == list(range(len(log)))
    assert [code != 0 for _, code in log] == [flakes(SEED, run) for run, _ in log], f"{msg}: {log}"
    assert any(code != 0 for _, code in log), f"{msg}: the flaky test never failed"
    # ...and the gate judged each check as its rules say, within a bounded number of runs.
    verdicts = [e for e in events if isinstance(e, GateResult)]
    assert [verdict_kind(e) for e in verdicts] == expected, f"{msg}: {[e.model_dump() for e in verdicts]}"
    assert any(command in e.flaky for e in verdicts), f"{msg}: no GateResult recorded the flake"
    assert gate.flakes == [command] * (expected.count("flaky") + base_flakes), f"{msg}: gate.flakes={gate.flakes}"
    assert gate.runs == expected_runs == len(log), f"{msg}: gate.runs={gate.runs}, log={log}"
    assert gate.runs <= 3 * N_TASKS
    health = [e for e in events if isinstance(e, MergeHealth)][-1]
    assert (health.landed, health.failed, health.flakes) == (N_TASKS, 0, expected.count("flaky") + base_flakes)

    # Everything is on the remote's main, once, with a linear history the hub agrees with.
    main = git("rev-parse", "refs/heads/main", cwd=remote)
    assert await hub.tip() == main
    assert sorted(task_trailers(remote)) == sorted(ids)
    files = git("ls-tree", "-r", "--name-only", "main", cwd=remote).split()
    assert {f"m{i}.py" for i in range(N_TASKS)} <= set(files)
    assert git("rev-list", "--min-parents=2", "main", cwd=remote) == ""


# --------------------------------------------------------------------------------------
# T25: model-based test of the merge queue
# --------------------------------------------------------------------------------------

CHECK = "test ! -e BROKEN"
"""The gate's check: a tree holding a file BROKEN fails it (not a protected path)."""


@dataclass
class Expect:
    outcome: str  # "land" | "gate" (blocked by the check) | "conflict"
    conflicts: list[str] = field(default_factory=list)


class MergeModel(RuleBasedStateMachine):
    """One target repository per example: a bare remote, the hub, a scratch clone for the
    workers' commits and for outsiders' pushes, the real gate and ONE merge queue.

    Driving the queue: `submit` is synchronous, so the enqueue rules submit straight away;
    `drain` is what the orchestrator's consumer does, run to quiescence: `close()` puts the
    stop marker behind everything queued and `run()` returns once it reaches it. `run()`
    can be called again after that (the marker was consumed), so the same queue (adaptive
    batch size and all) and the same gate (base cache) serve the whole example, as in a
    real run. Async code runs on one event loop owned by the machine.

    The reference model: every passing change lands (its files are its own); a breaking
    change (adds BROKEN) never lands and is refused by the gate; a change that creates a
    file an already-landed change created, from a tip older than that file, fails with a
    conflict on that file (add/add: both sides wrote its first line differently). External
    commits pushed straight to the remote, between drains or between a passing gate and the
    queue's push, are kept.
    """

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        root.mkdir(parents=True)
        self.loop = asyncio.new_event_loop()
        self.remote = make_remote(root, {"README": "model\n"})
        self.hub = Hub(root / "hub", url=str(self.remote), branch="main", author=AUTHOR)
        self.base = self.loop.run_until_complete(self.hub.open())
        self.scratch = root / "scratch"
        git("clone", "--quiet", str(self.remote), str(self.scratch), cwd=root)
        self.events: list[Event] = []
        self.results: dict[str, list[MergeResult]] = {}
        provider = LocalSandboxProvider(root / "work", LocalOptions(isolation="none"))
        self.gate = Gate(provider, self.hub, [CHECK], self._emit, timeout=30, branch="worker/gate")
        self.queue = MergeQueue(self.hub, "rebase", self._emit, gate=self.gate, max_batch=4)
        self.ids = itertools.count()
        self.expect: dict[str, Expect] = {}
        self.pending: list[str] = []
        self.landed: set[str] = set()  # model: task ids whose change is on main
        self.landed_files: dict[str, str] = {}  # file -> the landed task that created it
        self.externals: list[str] = []
        self.tips: list[str] = [self.base]  # the remote's main, as seen after each step
        self.checked: set[str] = set()  # commits of main already known not to hold BROKEN
        self.push_during_gate = False

    # -- plumbing ----------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self.events.append(event)
        if self.push_during_gate and isinstance(event, GateResult) and event.ok:
            # An outsider pushes after the gate passed and before the queue pushes (T7).
            self.push_during_gate = False
            self.external_push()

    def _on_result(self, task: Task, result: MergeResult) -> None:
        self.results.setdefault(task.id, []).append(result)

    def remote_main(self) -> str:
        return git("rev-parse", "refs/heads/main", cwd=self.remote)

    def fetch_scratch(self) -> None:
        git("fetch", "--quiet", "origin", "+refs/heads/main:refs/remotes/origin/main", cwd=self.scratch)

    def submit(self, kind: str, on: int, files: dict[str, str], expect: Expect, base: str | None = None) -> None:
        task_id = f"{kind}{next(self.ids)}"
        self.fetch_scratch()
        base = base or self.tips[on % len(self.tips)]
        files = {path.replace("{id}", task_id): text.replace("{id}", task_id) for path, text in files.items()}
        commit = commit_on(self.scratch, self.hub, task_id, base, files)
        self.expect[task_id] = expect
        self.pending.append(task_id)
        self.queue.submit(merging_task(task_id), commit)

    def external_push(self) -> None:
        k = len(self.externals)
        self.fetch_scratch()
        git("checkout", "--quiet", "--detach", "refs/remotes/origin/main", cwd=self.scratch)
        (self.scratch / f"ext_{k}.txt").write_text(f"pushed by an outsider {k}\n")
        git("add", "--all", cwd=self.scratch)
        git("commit", "--quiet", "-m", f"external change {k}", cwd=self.scratch)
        sha = git("rev-parse", "HEAD", cwd=self.scratch)
        git("push", "--quiet", "origin", f"{sha}:refs/heads/main", cwd=self.scratch)
        self.externals.append(sha)

    # -- rules -------------------------------------------------------------------------

    @initialize()
    def land_a_first_change(self) -> None:
        """Every example starts with one landed change, so conflicting changes are possible."""
        self.enqueue_passing([0])
        self.drain()

    @rule(on=st.lists(st.integers(0, 1000), min_size=1, max_size=3))
    def enqueue_passing(self, on: list[int]) -> None:
        """One to three changes, each adding its own file (several make batches likely)."""
        for base in on:
            self.submit("p", base, {"f_{id}.txt": "first line by {id}\nsecond\n"}, Expect("land"))

    @rule(on=st.integers(0, 1000))
    def enqueue_breaking(self, on: int) -> None:
        # Identical BROKEN contents, so breaking changes never conflict with one another.
        self.submit("b", on, {"BROKEN": "broken\n", "g_{id}.txt": "by {id}\n"}, Expect("gate"))

    @precondition(lambda self: self.landed_files)
    @rule(pick=st.integers(0, 1000), on=st.integers(0, 1000))
    def enqueue_conflicting(self, pick: int, on: int) -> None:
        path = sorted(self.landed_files)[pick % len(self.landed_files)]
        older = [t for t in self.tips
                 if subprocess.run(["git", "cat-file", "-e", f"{t}:{path}"], cwd=self.remote,
                                   capture_output=True).returncode != 0]
        assert self.base in older
        self.submit("c", 0, {path: "first line changed by {id}\nsecond\n"}, Expect("conflict", [path]),
                    base=older[on % len(older)])

    @rule()
    def external_push_to_remote(self) -> None:
        self.external_push()

    @rule()
    def external_push_during_next_gate(self) -> None:
        self.push_during_gate = True

    @rule()
    def drain(self) -> None:
        self.queue.close()
        self.loop.run_until_complete(asyncio.wait_for(self.queue.run(self._on_result), 60))
        assert self.queue.depth == 0
        for task_id in self.pending:
            got = self.results.get(task_id, [])
            assert len(got) == 1, f"{task_id}: expected one result, got {got}"
            result, want = got[0], self.expect[task_id]
            if want.outcome == "land":
                assert result.landed, f"{task_id} should have landed: {result.reason}"
                self.landed.add(task_id)
                self.landed_files[f"f_{task_id}.txt"] = task_id
            elif want.outcome == "gate":
                assert not result.landed and "check failed on the merged tree" in result.reason, (task_id, result)
            else:
                assert not result.landed and result.conflicts == want.conflicts, (task_id, result)
        self.pending = []

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def target_branch_is_sound(self) -> None:
        tip = self.remote_main()
        # (a) the remote's main only moved forward
        assert is_ancestor(self.remote, self.tips[-1], tip), f"main moved backwards: {self.tips[-1]} -> {tip}"
        if tip != self.tips[-1]:
            self.tips.append(tip)
        # the hub never runs ahead of what the remote accepted
        assert is_ancestor(self.remote, self.loop.run_until_complete(self.hub.tip()), tip)
        # (b) every commit on main passes the check: none holds BROKEN
        new = [sha for sha in git("rev-list", "refs/heads/main", cwd=self.remote).split() if sha not in self.checked]
        if new:
            out = subprocess.run(["git", "cat-file", "--batch-check"], cwd=self.remote, capture_output=True, text=True,
                                 input="".join(f"{sha}:BROKEN\n" for sha in new), check=True).stdout.splitlines()
            broken = [sha for sha, line in zip(new, out) if not line.endswith("missing")]
            assert broken == [], f"commits on main hold BROKEN: {broken}"
            self.checked.update(new)
        # (c) each task id appears in at most one Longshot-Task trailer on main
        values = task_trailers(self.remote)
        repeated = sorted({v for v in values if values.count(v) > 1})
        assert repeated == [], f"tasks landed more than once: {repeated}"
        # (d) the model's landed set is exactly what main says landed
        assert set(values) == self.landed, f"model {sorted(self.landed)} != main {sorted(values)}"
        # (e) external commits are never lost
        lost = [sha for sha in self.externals if not is_ancestor(self.remote, sha, tip)]
        assert lost == [], f"external commits lost: {lost}"
        # the queue reported every landing once, and only the landings the model expects
        landings = [e.task_id for e in self.events if isinstance(e, MergeLanded)]
        assert sorted(landings) == sorted(self.landed), landings

    def teardown(self) -> None:
        try:
            if self.pending:  # settle what is still queued, then check once more
                self.drain()
                self.target_branch_is_sound()
        finally:
            self.loop.close()
            shutil.rmtree(self.root, ignore_errors=True)


def test_t25_merge_queue_model(tmp_path: Path) -> None:
    examples = itertools.count()
    run_state_machine_as_test(
        lambda: MergeModel(tmp_path / f"example-{next(examples)}"),
        settings=settings(max_examples=15, stateful_step_count=8, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
