"""House rules checked on the code (AGENTS.md), each with a planted breach that makes it fail.

- Rule 9: no test asserts on wall-clock time. Speed is measured by `bench/` scripts; a test
  that asserts a duration flakes on a loaded machine and passes on a fast one for the wrong
  reason. Every assertion in ``tests/`` is scanned for a clock read, or for a comparison of a
  value measured from one.
- Rule 2: objects are built complete, in dependency order. No code sets a field of a part it
  was given or built in another function (wiring patched in afterwards), and no closure reads
  ``self.x`` before the function that builds ``self.x`` has built it.
- One name per concept: no two public classes and no two modules (``__init__.py``, ``base.py``
  aside) share a name.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- Objects are built complete (issue 17): no field of a collaborator is set from outside it ----------

SRC = Path(os.environ.get("LONGSHOT_RULES_SRC", TESTS.parent / "src")) / "longshot"
OUTSIDE = ("demo/sample/", "demo/work/")
"""The demo's sample projects are targets for the workers, not Longshot's code."""
RECORD_BASES = {"BaseModel", "NamedTuple", "TypedDict", "Enum", "StrEnum", "IntEnum", "Exception"}
DISPLAY_STATE = {
    # The dashboard's own display state: plain records that its event fold and key handlers are
    # there to update (the reducer's handlers are its fold; the view state is which tab, page and
    # footer the user chose; the replay clock is where a replay stands). Nothing of the run is wired.
    "Board": {"dashboard/board.py"},
    "ViewState": {"dashboard/view.py", "dashboard/screen.py"},
    "ReplayClock": {"dashboard/sources.py"},
}
"""Classes whose fields these files may set from outside the class, and why."""


def sources(root: Path) -> dict[str, ast.Module]:
    return {p.relative_to(root).as_posix(): ast.parse(p.read_text()) for p in sorted(root.rglob("*.py"))
            if not p.relative_to(root).as_posix().startswith(OUTSIDE)}


def names_in(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node) if isinstance(n, (ast.Name, ast.Attribute))}


def components(trees: dict[str, ast.Module]) -> set[str]:
    """Our classes that are parts of the program (not records): pydantic models, named tuples,
    enums, exceptions and dataclasses without public methods are records."""
    classes = {c.name: c for t in trees.values() for c in ast.walk(t) if isinstance(c, ast.ClassDef)}
    records = {n for n, c in classes.items() if any("dataclass" in names_in(d) for d in c.decorator_list)
               and not any(isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and not f.name.startswith("_")
                           and "property" not in set().union(*map(names_in, f.decorator_list)) for f in c.body)}
    while True:
        more = {n for n, c in classes.items() if set().union(*map(names_in, c.bases)) & (RECORD_BASES | records)}
        if more <= records:
            return set(classes) - records
        records |= more


def params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr | None]:
    a = fn.args
    return {p.arg: p.annotation for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]}


def targets(node: ast.AST) -> list[ast.expr]:
    found = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
        node, (ast.AugAssign, ast.AnnAssign)) else []
    return [e for t in found for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])]


def kind_of(value: ast.expr, given: dict[str, ast.expr | None], parts: set[str]) -> set[str]:
    """The component classes ``value`` is (a parameter's annotation, or a constructor call)."""
    if isinstance(value, ast.BoolOp):
        return set().union(*(kind_of(v, given, parts) for v in value.values))
    if isinstance(value, ast.Name):
        return names_in(given.get(value.id)) & parts
    if isinstance(value, ast.Call):
        f = value.func
        return {f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""} & parts
    return set()


def fields_of(cls: ast.ClassDef, parts: set[str]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per attribute of ``self``: the component classes it holds, and the methods that build it."""
    kinds: dict[str, set[str]] = {}
    built: dict[str, set[str]] = {}
    for item in cls.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):  # a dataclass field: given
            kinds.setdefault(item.target.id, set()).update(names_in(item.annotation) & parts)
        if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        given = params(item)
        for node in ast.walk(item):
            for t in targets(node):
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    found = names_in(node.annotation) & parts if isinstance(node, ast.AnnAssign) else set()
                    value = getattr(node, "value", None)
                    if value is not None:
                        found |= kind_of(value, given, parts)
                        if isinstance(value, ast.Call):
                            built.setdefault(t.attr, set()).add(item.name)
                    kinds.setdefault(t.attr, set()).update(found)
    return kinds, built


def root_of(target: ast.Attribute) -> tuple[str | None, str | None]:
    """``self.a.….x`` -> ("a", None); ``p.….x`` -> (None, "p")."""
    node, chain = target.value, []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None, None
    if node.id in ("self", "cls"):
        return (chain[-1] if chain else None), None
    return None, node.id


def patched_fields(root: Path = SRC) -> list[str]:
    """Assignments to a field of a component that the assigning code was given, or built in
    another function: wiring patched in after construction (``self.driver.reconciler = r``,
    ``driver.reconciler = r`` on a parameter, ``self.conversation.summary = s`` on a dataclass
    field). A part changes its own fields; it asks a collaborator (a method) to change its."""
    trees = sources(root)
    parts = components(trees)
    found = []
    for rel, tree in trees.items():
        for cls in [None, *(c for c in ast.walk(tree) if isinstance(c, ast.ClassDef))]:
            body = tree.body if cls is None else cls.body
            kinds, built = fields_of(cls, parts) if cls is not None else ({}, {})
            for fn in (f for f in body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))):
                given = params(fn)
                for node in ast.walk(fn):
                    for t in (t for t in targets(node) if isinstance(t, ast.Attribute)):
                        own, name = root_of(t)
                        held = kinds.get(own, set()) if own is not None and fn.name not in built.get(own, set()) \
                            else names_in(given.get(name)) & parts if name is not None else set()
                        if held and not all(rel in DISPLAY_STATE.get(k, set()) for k in held):
                            found.append(f"{rel}:{node.lineno}: {ast.unparse(t)} = ... sets a field of a "
                                         f"{'/'.join(sorted(held))} from outside it")
    return found


def own_nodes(fn: ast.AST) -> list[ast.AST]:
    """The nodes of ``fn``'s body, not those of the closures inside it."""
    found, todo = [], list(ast.iter_child_nodes(fn))
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def early_reads(root: Path = SRC) -> list[str]:
    """Closures (a lambda, a nested function) that read ``self.x`` in the function that builds
    ``self.x``, before it is built: a part handed a way to reach one that does not exist yet."""
    found = []
    for rel, tree in sources(root).items():
        for fn in (f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))):
            first: dict[str, int] = {}
            for node in own_nodes(fn):
                for t in targets(node):
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        first[t.attr] = min(first.get(t.attr, node.lineno), node.lineno)
            for closure in (n for n in ast.walk(fn) if n is not fn and isinstance(
                    n, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef))):
                for read in ast.walk(closure):
                    if isinstance(read, ast.Attribute) and isinstance(read.value, ast.Name) \
                            and read.value.id == "self" and first.get(read.attr, 0) > closure.lineno:
                        found.append(f"{rel}:{closure.lineno}: a closure reads self.{read.attr}, built only "
                                     f"at line {first[read.attr]}")
    return found


def test_no_part_is_patched_after_it_is_built() -> None:
    assert patched_fields() == []
    assert early_reads() == []


WIRING_PLANTS = {
    "a collaborator's field set after building it": (
        "orchestrator.py", "class Orchestrator:", "    def _late(self) -> None:\n        self.merge_queue.gate = None\n",
        "a MergeQueue"),
    "a parameter's field set": (
        "pipeline/drive.py", "", "def _wire(driver: Driver, reconciler: Reconciler) -> None:\n"
                                 "    driver.reconciler = reconciler\n", "a Driver"),
    "a dataclass collaborator's field set": (
        "pipeline/plan.py", "class Planner:", "    def _late(self) -> None:\n        self.conversation.summary = ''\n",
        "a Conversation"),
    "a lambda reaching a part not built yet": (
        "orchestrator.py", "", "class _Early:\n    def __init__(self) -> None:\n        self.f = lambda: self.later\n"
                               "        self.later = 1\n", "reads self.later, built only"),
}


def planted_copy(tmp: Path, file: str, after: str, code: str) -> Path:
    """A copy of the source tree with ``code`` added to ``file``: right after the line ``after``
    (a method into its class), or at the end."""
    copy = tmp / "longshot"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / file
    text = target.read_text()
    at = text.index(after + "\n") + len(after) + 1 if after else len(text)
    target.write_text(text[:at] + "\n" + code + "\n" + text[at:])
    return copy


@pytest.mark.parametrize("name", sorted(WIRING_PLANTS))
def test_the_wiring_rule_fails_on_a_planted_breach(tmp_path: Path, name: str) -> None:
    file, after, code, says = WIRING_PLANTS[name]
    copy = planted_copy(tmp_path, file, after, code)
    problems = patched_fields(copy) + early_reads(copy)
    assert any(says in p for p in problems), problems


# -- One name per concept (issue 17): no two public classes, no two modules share a name ----------

SHARED_FILE_NAMES = {"__init__.py", "base.py"}
"""The package convention: each package has an ``__init__.py``; each pluggable kind its protocol in ``base.py``."""


def doubled_names(root: Path = SRC) -> list[str]:
    """Public classes defined in two modules, and module file names used twice: a reader (and an
    import) cannot tell which one is meant."""
    classes: dict[str, list[str]] = {}
    files: dict[str, list[str]] = {}
    for rel, tree in sources(root).items():
        files.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                classes.setdefault(node.name, []).append(rel)
    return [f"class {name} is defined in {', '.join(where)}" for name, where in sorted(classes.items())
            if len(where) > 1] + [f"module file {name} is used by {', '.join(where)}" for name, where in
                                  sorted(files.items()) if len(where) > 1 and name not in SHARED_FILE_NAMES]


def test_one_name_per_concept() -> None:
    assert doubled_names() == []


NAME_PLANTS = {
    "a class named like another": ("pipeline/gate.py", "class Board:\n    pass\n", "class Board is defined in"),
    "a second file name": ("pipeline/clip.py", '"""A second clip."""\n', "module file clip.py is used by"),
}


@pytest.mark.parametrize("name", sorted(NAME_PLANTS))
def test_the_naming_rule_fails_on_a_planted_breach(tmp_path: Path, name: str) -> None:
    file, code, says = NAME_PLANTS[name]
    copy = tmp_path / "longshot"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / file
    target.write_text((target.read_text() if target.exists() else "") + "\n\n" + code)
    problems = doubled_names(copy)
    assert any(says in p for p in problems), problems


def test_the_real_rule_tests_fail_on_a_planted_tree(tmp_path: Path) -> None:
    """Not just the checks: the two rule tests above, pointed at a tree with a part patched after
    it is built and a doubled class name, both fail."""
    file, after, code, _ = WIRING_PLANTS["a collaborator's field set after building it"]
    copy = planted_copy(tmp_path, file, after, code)
    (copy / "pipeline" / "gate.py").write_text((copy / "pipeline" / "gate.py").read_text() + "\n\nclass Board:\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                          "no_part_is_patched or one_name_per_concept"],
                         env={**os.environ, "LONGSHOT_RULES_SRC": str(tmp_path)}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed" in run.stdout and "self.merge_queue.gate" in run.stdout and "class Board" in run.stdout
