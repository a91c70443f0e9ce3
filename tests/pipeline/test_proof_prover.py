"""The `Prover` (`pipeline/proof.py`) on real git and a real sandbox: which commits landed a
task and which test files they touched, and a feature's tests judged on a tree — the final
checks reused, other commands run once per tree in one sandbox, a command that could not run
proving nothing. Also the small rules: what is a test file, a command, a test's module."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.pipeline.checks import CheckSource
from longshot.pipeline.handoff import commit_message
from longshot.pipeline.proof import Proof, Prover, covers, is_command, is_test_file, mentions, module_of, named_in
from longshot.sandboxes.base import Sandbox, SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import make_remote
from longshot.types import CheckResult, Task

from hubkit import land, open_hub


class Counted:
    """The local provider, counting the sandboxes it opens (one per tree is the promise)."""

    def __init__(self, inner: LocalSandboxProvider) -> None:
        self.inner = inner
        self.opened: list[str] = []

    def open(self, spec: SandboxSpec) -> AbstractAsyncContextManager[Sandbox]:
        self.opened.append(spec.base_commit)
        return self.inner.open(spec)


def landing(t: str, *, continues: str | None = None) -> str:
    return commit_message(Task(id=t, description=f"do {t}", branch=f"worker/{t}", continue_from=continues),
                          HarnessResult(status="complete", summary=f"did {t}"))


async def prover(tmp_path: Path, hub: Hub, start: str) -> tuple[Prover, Counted]:
    provider = Counted(LocalSandboxProvider(tmp_path / "work", LocalOptions(isolation="bubblewrap", overlay="off")))
    return Prover(provider, hub, CheckSource(hub, []), start, timeout=60, prefix="worker/"), provider  # type: ignore[arg-type]


async def test_what_landed_for_each_task_and_which_tests_each_commit_touched(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"README.md": "x\n", "tests/test_old.py": "def test_old():\n    pass\n"})
    hub = await open_hub(tmp_path, target)
    await land(hub, landing("before"))  # an earlier run's
    start = await hub.tip()
    one = await land(hub, landing("a"), {"src/a.py": "A = 1\n", "tests/test_a.py": "def test_a():\n    pass\n",
                                         "tests/conftest.py": "", "tests/__init__.py": ""})
    two = await land(hub, landing("b"), {"tests/test_old.py": "def test_old():\n    assert True\n",
                                         "web/b.test.mjs": "test('b', f)\n", "docs/b.md": "b\n"})
    three = await land(hub, landing("a", continues="b"), {"src/a.py": None})
    p, _ = await prover(tmp_path, hub, start)

    assert await p.landed(three) == {"a": [one, three], "b": [two]}
    assert await p.landed(two) == {"a": [one], "b": [two]}
    assert await p.tests_changed([one, two, three]) == {one: ["tests/test_a.py"],
                                                         two: ["tests/test_old.py", "web/b.test.mjs"]}
    assert await p.tests_changed([]) == {}
    assert {"tests/test_a.py", "web/b.test.mjs", "README.md"} <= await p.tree(three)
    assert "src/a.py" not in await p.tree(three)
    gone = Prover(p.provider, hub, p.checks, "f" * 40, timeout=60, prefix="worker/")  # a start no longer held
    assert set(await gone.landed(three)) == {"before", "a", "b"}


async def test_the_final_checks_are_reused_and_nothing_runs_for_them(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n"})
    hub = await open_hub(tmp_path, target)
    tip = await hub.tip()
    p, provider = await prover(tmp_path, hub, tip)
    tree = await p.tree(tip)
    green = CheckResult(command="pytest -q", kind="test", exit_code=0)
    missing = CheckResult(command="pytest tests/test_x.py", kind="build", exit_code=127, output_tail="not found")

    assert await p.judge(tip, ["tests/test_a.py"], ["pytest -q"], [green], tree) == Proof(
        True, "`pytest -q` passed; tests/test_a.py passed in `pytest -q`")
    unproven = await p.judge(tip, ["tests/test_a.py"], ["pytest tests/test_x.py"], [green, missing], tree)
    assert unproven.passed is None and unproven.evidence.startswith(
        "`pytest tests/test_x.py` could not run (exit 127): not found")
    lint = CheckResult(command="ruff check", kind="build", exit_code=0)
    assert await p.judge(tip, ["tests/test_a.py"], [], [lint], tree) == Proof(None, "tests/test_a.py is run by no check")
    assert await p.judge(tip, [], [], [green], tree) == Proof(None, "")  # nothing named: nothing proven
    assert provider.opened == []


async def test_other_commands_run_once_per_tree_in_one_sandbox(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"a.txt": "a\n"})
    hub = await open_hub(tmp_path, target)
    first = await hub.tip()
    second = await land(hub, landing("b"), {"a.txt": None})
    p, provider = await prover(tmp_path, hub, first)
    commands = ["test -f a.txt", "exit 3", "no-such-tool --flag"]

    ran = await p.run(first, commands)
    again = await p.run(first, ["exit 3", "test -f a.txt"])

    assert [ran[c].exit_code for c in commands] == [0, 3, 127]
    assert again == {"exit 3": ran["exit 3"], "test -f a.txt": ran["test -f a.txt"]}
    assert provider.opened == [first]
    assert (await p.judge(first, [], ["test -f a.txt"], [], set())) == Proof(True, "`test -f a.txt` passed")
    failed = await p.judge(first, [], commands, [], set())
    assert failed == Proof(False, "`exit 3` failed (exit 3)")  # a failure outweighs what could not run
    assert (await p.run(second, ["test -f a.txt"]))["test -f a.txt"].exit_code == 1  # the tree it runs on
    assert provider.opened == [first, second]


@pytest.mark.parametrize("path, test", [
    ("tests/test_a.py", True), ("web/a.test.mjs", True), ("web/a.spec.cts", True), ("pkg/a_test.go", True),
    ("tests/conftest.py", False), ("tests/__init__.py", False), ("tests/fixtures/data", False),
    ("src/a.py", False), ("tests/helpers.py", True),
])
def test_a_test_file_is_one_a_runner_collects(path: str, test: bool) -> None:
    assert is_test_file(path) is test


def test_commands_modules_and_prose_are_told_apart() -> None:
    assert is_command("pytest") and is_command("make check") and is_command("./run-tests")
    assert not is_command("tests/test_a.py") and not is_command("  ")
    assert module_of("tests/unit/test_a.py") == "tests.unit.test_a" and module_of("web/a.test.js") == "web.a.test"
    files, commands = named_in("Run `./scripts/check.sh --fast`; go to the docs. tests/test_a.py must pass.")
    assert (files, commands) == (["tests/test_a.py"], ["./scripts/check.sh --fast"])
    assert named_in("`./run-tests` passes and `tests/test_b.py` too") == (["tests/test_b.py"], ["./run-tests"])
    files, commands = named_in("npm test passes.\ncargo test -p core succeeds; see ../outside/test_x.py")
    assert commands == ["npm test", "cargo test -p core"] and files == []
    assert named_in("make it fast and go home") == ([], [])


def test_a_check_whose_words_cannot_be_split_is_read_word_by_word() -> None:
    tree = {"tests/test_a.py", "tests/test_b.py"}
    assert covers("pytest 'tests/test_a.py", "tests/test_a.py", tree)  # an unclosed quote
    assert not covers("pytest -k 'odd tests/test_b.py", "tests/test_a.py", tree)  # it still names test_b only
    assert covers("pytest -k 'name with space' tests/test_b.py", "tests/test_b.py", tree)
    assert not covers("pytest -k 'name with space' tests/test_b.py", "tests/test_a.py", tree)


@pytest.mark.parametrize("signature, about", [
    ("FAIL: test_x (tests.test_a.T.test_x)", True),
    ("ERROR: tests.test_a (unittest.loader._FailedTest)", True),
    ("tests.test_a", True),
    ("FAILED tests/test_a.py::test_x - assert 1 == 2", True),
    ("FAIL: test_x (tests.test_ab.T.test_x)", False),  # another module that starts with the same name
    ("FAIL: test_x (mytests.test_a.T.test_x)", False),
    ("FAILED tests/test_b.py::test_x", False),
])
def test_a_failure_is_about_a_file_by_its_path_or_its_whole_module_name(signature: str, about: bool) -> None:
    assert mentions(signature, "tests/test_a.py") is about


async def test_a_red_final_check_fails_only_the_files_its_failures_are_about(tmp_path: Path) -> None:
    target = make_remote(tmp_path, {"tests/test_a.py": "", "tests/test_b.py": "", "tests/unit/test_c.py": ""})
    hub = await open_hub(tmp_path, target)
    tip = await hub.tip()
    p, provider = await prover(tmp_path, hub, tip)
    tree = await p.tree(tip)
    red = CheckResult(command="python -m pytest -q tests", kind="test", exit_code=1,
                      output_tail="FAILED tests/test_b.py::test_x - assert 1 == 2\n1 failed, 4 passed in 0.1s")
    narrow = CheckResult(command="python -m pytest -q tests/unit", kind="test", exit_code=0)

    assert await p.judge(tip, ["tests/test_a.py"], [], [red], tree) == Proof(
        True, "tests/test_a.py passed in `python -m pytest -q tests`")
    failed = await p.judge(tip, ["tests/test_a.py", "tests/test_b.py"], [], [red], tree)
    assert failed.passed is False and failed.evidence.startswith("tests/test_b.py failed in `python -m pytest -q tests`")
    assert "tests/test_b.py::test_x" in failed.evidence
    assert await p.judge(tip, ["tests/unit/test_c.py"], [], [narrow, red], tree) == Proof(
        True, "tests/unit/test_c.py passed in `python -m pytest -q tests/unit`")
    assert provider.opened == []
