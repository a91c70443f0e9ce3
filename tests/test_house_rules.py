"""House rules about the tests themselves (AGENTS.md rule 9): no test asserts on wall-clock time.

Speed is measured by `bench/` scripts; a test that asserts a duration flakes on a loaded
machine and passes on a fast one for the wrong reason. This scans every assertion in
``tests/`` for a clock read, or for a comparison of a value measured from one.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CLOCKS = {"monotonic", "perf_counter", "time", "monotonic_ns", "perf_counter_ns", "time_ns"}


def clock_names(tree: ast.AST) -> set[str]:
    """Names assigned from an expression that reads the clock (``elapsed = time.monotonic() - t0``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and reads_clock(node.value, set()):
            found |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return found


def reads_clock(node: ast.AST, tainted: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in CLOCKS \
                and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "time":
            return True
        if isinstance(sub, ast.Name) and sub.id in tainted:
            return True
    return False


def timed_assertions(source: str) -> list[int]:
    """Lines of assertions on the clock. ``assert time.monotonic() < deadline`` is a polling loop's
    give-up guard (how long to wait for something to happen), not a measured duration: allowed."""
    tree = ast.parse(source)
    tainted = clock_names(tree)
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Assert) and reads_clock(node.test, tainted)
            and not any(isinstance(n, ast.Name) and "deadline" in n.id for n in ast.walk(node.test))]


def test_the_scan_finds_timed_assertions() -> None:
    assert timed_assertions("import time\nt=time.monotonic()\nassert time.monotonic() - t < 3\n") == [3]
    assert timed_assertions("elapsed = time.perf_counter() - t0\nassert elapsed < 1.0\n") == [2]
    assert timed_assertions("assert r.timed_out and r.exit_code == 124\n") == []
    assert timed_assertions("assert time.monotonic() < deadline, 'never happened'\n") == []


def test_no_test_asserts_on_wall_clock_time() -> None:
    found = [f"{p.relative_to(TESTS)}:{line}" for p in sorted(TESTS.rglob("*.py"))
             for line in timed_assertions(p.read_text())]
    assert found == []
