"""House rules (issue 17 items 4 and 8, AGENTS.md): no module over 400 lines, and tests at
least as long as the code they test, for the dashboard and for every pipeline stage,
measured by ``scripts/test_ratio.py``.

A module's tests are the test files that import it; lines that are neither blank nor
comments are counted. The rule is checked on the tree as it is, and shown to fail on a copy
with a stage nobody tests.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("pipeline", "dashboard")
"""The rooms whose every module must be tested at least line for line."""


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("test_ratio_script", ROOT / "scripts" / "test_ratio.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def short_of_tests(src: Path, tests: Path) -> list[str]:
    """The modules (and rooms) of `ROOMS` whose tests are shorter than their code."""
    found = _script().ratios(src, tests, list(ROOMS))
    under = [f"{name} ({row['tests']} test lines for {row['code']})" for name, row in found["modules"].items()
             if row["ratio"] < 1.0]
    under += [f"room {room} ({row['ratio']})" for room, row in found["rooms"].items() if row["ratio"] < 1.0]
    return under


def test_every_stage_and_the_dashboard_have_tests_as_long_as_their_code() -> None:
    assert short_of_tests(ROOT / "src" / "longshot", ROOT / "tests") == []


def test_a_stage_nobody_tests_breaks_the_rule(tmp_path: Path) -> None:
    src = tmp_path / "src" / "longshot"
    shutil.copytree(ROOT / "src" / "longshot" / "pipeline", src / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", tmp_path / "tests", ignore=shutil.ignore_patterns("__pycache__", "data"))
    (src / "pipeline" / "untested.py").write_text('"""A stage with no tests."""\n\n\ndef run() -> int:\n    return 1\n')
    assert short_of_tests(src, tmp_path / "tests") == [
        *[m for m in short_of_tests(ROOT / "src" / "longshot", ROOT / "tests") if "pipeline" in m],
        "longshot.pipeline.untested (0 test lines for 3)"]


LIMIT = 400
"""Lines a module of ours may have (AGENTS.md rule 10)."""


def too_long(src: Path) -> list[str]:
    """Modules of ``src`` over `LIMIT` lines (the demo's sample projects are not ours)."""
    return [f"{p.relative_to(src)} ({n} lines)" for p in sorted(src.rglob("*.py"))
            if "demo/sample" not in p.as_posix() and "demo/work" not in p.as_posix()
            and (n := len(p.read_text().splitlines())) > LIMIT]


def test_no_module_is_over_the_line_limit(tmp_path: Path) -> None:
    assert too_long(ROOT / "src" / "longshot") == []
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "fine.py").write_text("x = 1\n" * LIMIT)
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (LIMIT + 1))
    assert too_long(tmp_path) == [f"pkg/long.py ({LIMIT + 1} lines)"]
