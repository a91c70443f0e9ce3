"""Import layering, checked by parsing every module (STYLE rule 14), with rules derived from the folders.

A *room* is a top-level module or package of ``src/longshot``. What is derived, not listed:

- **No cycles**: neither between modules (lazy and ``TYPE_CHECKING`` imports included) nor
  between rooms, so the rooms form floors.
- **Backends**: a folder with a ``base.py`` is a pluggable kind (``llm/``, ``sandboxes/``,
  ``harnesses/``); every other module in it is a backend. From outside its folder a backend
  is imported only by the build room (``build.py``) and the test kit (``testing/``, whose
  fakes are backends too). Everything else sees the kind through ``base.py``.
- **Config**: only the build room and the modules that import it (the composition roots:
  ``orchestrator.py``, ``cli.py``) import ``longshot.config``.
- **Below the build room** (whatever the build room or the pipeline import, directly or not)
  nothing imports a composition root, the dashboard, the demo or the test kit.
- **Internals**: no module imports another module's private (``_name``) names, and no
  module reads a private attribute of another module (``mod._name``).
- **The dashboard reads events**: it imports only what ``longshot.events`` rests on.
- **So does the web view** (``web/``): besides events and the dashboard's state, it may read
  git (``git.py``, ``hub.py``), never a pipeline stage, a backend, the config or a composition root.
- Optional cloud SDKs (modal, ray, docker) are never imported at module level.

`check` takes the source root, so a test plants a forbidden import in a copy of the tree
and sees each rule fail.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(os.environ.get("LONGSHOT_ARCH_SRC") or Path(__file__).resolve().parents[1] / "src") / "longshot"
BUILD = "longshot.build"
CONFIG = "longshot.config"
KIT = "longshot.testing"
EVENTS = "longshot.events"
WEB = "longshot.web"
SDKS = {"modal", "ray", "docker"}


@dataclass(frozen=True)
class Import:
    target: str
    """The longshot module imported (``from pkg import mod`` counts as ``pkg.mod``)."""
    names: tuple[str, ...]
    top_level: bool
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module of the tree; the demo's sample projects are data, not part of Longshot."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))
            if p.relative_to(root).parts[:2] not in (("demo", "sample"), ("demo", "work"))}


def imports(path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """Every import in the file, at any depth, resolved to modules of ``known`` (and SDK names)."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield Import(a.name, (), id(node) in top, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [a.name for a in node.names if f"{node.module}.{a.name}" in known]
            for sub in subs:
                yield Import(f"{node.module}.{sub}", (), id(node) in top, node.lineno)
            rest = tuple(a.name for a in node.names if a.name not in subs)
            if rest or not subs:
                yield Import(node.module, rest, id(node) in top, node.lineno)


def room(mod: str) -> str:
    return ".".join(mod.split(".")[:2])


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while (top := stack.pop()) != node:
                group.append(top)
            group.append(node)
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def reachable(edges: dict[str, set[str]], starts: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [s for s in starts if s in edges]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += edges.get(node, set())
    return seen


def check(root: Path = SRC) -> list[str]:
    """Every breach of the rules in the module docstring, one line each."""
    known = modules(root)
    found = {mod: list(imports(path, known)) for mod, path in known.items()}
    edges = {mod: {i.target for i in imps if i.target in known} - {mod} for mod, imps in found.items()}
    rooms: dict[str, set[str]] = {}
    for mod, targets in edges.items():
        rooms.setdefault(room(mod), set()).update(room(t) for t in targets if room(t) != room(mod))
    kinds = {module_name(p.parent, root) for p in root.glob("*/base.py")}
    backends = {m for m in known if any(under(m, k) and m != k and m != f"{k}.base" for k in kinds)}
    roots = {m for m, targets in edges.items() if BUILD in targets}
    below = reachable(edges, {BUILD} | {m for m in known if under(m, "longshot.pipeline")}) - {CONFIG} - roots
    outer = roots | {m for m in known if any(under(m, p) for p in ("longshot.dashboard", "longshot.demo", KIT, WEB))}
    run_parts = backends | roots | {BUILD, CONFIG} | {m for m in known if any(under(m, p) for p in
                                                         ("longshot.pipeline", "longshot.demo", KIT))}
    vocabulary = reachable(edges, {EVENTS})
    problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(edges)]
    problems += [f"cycle between rooms: {' -> '.join(c)}" for c in cycles(rooms)]
    for mod, imps in found.items():
        where = f"{known[mod].relative_to(root.parent)}"
        for i in imps:
            at = f"{where}:{i.line}: {mod} imports {i.target}"
            if i.target in backends and room(i.target) != room(mod) and mod != BUILD and not under(mod, KIT):
                problems.append(f"{at}, a backend (only {BUILD} builds backends; use its base.py)")
            if i.target == CONFIG and mod not in roots | {BUILD, CONFIG}:
                problems.append(f"{at} below the build room (receive options, not Config)")
            if mod in below and i.target in outer:
                problems.append(f"{at}, which is outside the run's parts")
            if under(mod, "longshot.dashboard") and i.target in known and not under(i.target, "longshot.dashboard") \
                    and i.target not in vocabulary:
                problems.append(f"{at}: the dashboard reads events only")
            if under(mod, WEB) and i.target in run_parts:
                problems.append(f"{at}: the web view reads events (and git, read-only) only")
            if i.target in known and i.target != mod:
                problems += [f"{at}: private name {n}" for n in i.names if n.startswith("_") and not n.startswith("__")]
            if i.top_level and i.target.split(".")[0] in SDKS:
                problems.append(f"{at} at module level (optional SDKs are imported where used)")
        for node in ast.walk(ast.parse(known[mod].read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and any(i.target in known and node.value.id in (i.target, i.target.split(".")[-1]) for i in found[mod]):
                problems.append(f"{where}:{node.lineno}: {mod} reads private {node.value.id}.{node.attr}")
    return problems


def test_the_source_tree_keeps_the_rules() -> None:
    assert len(modules(SRC)) > 20
    assert check() == []


def test_cycle_finder() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


PLANTS = {
    "config below the build room": ("pipeline/drive.py", "from longshot.config import Config\n", "below the build room"),
    "a lazy cycle": ("types.py", "def _late() -> None:\n    import longshot.pipeline.drive\n", "import cycle"),
    "a backend from a stage": ("pipeline/gate.py", "from longshot.sandboxes.local import LocalOptions\n", "a backend"),
    "a stage's internals": ("pipeline/plan.py", "from longshot.pipeline.schedule import _ready_key\n", "private name"),
    "a private attribute": ("pipeline/plan.py", "from longshot.pipeline import ledger\nX = ledger._x\n",
                            "private"),
    "the dashboard reading the pipeline": ("dashboard/draw.py", "from longshot.pipeline import schedule\n",
                                           "reads events only"),
    "a stage importing the CLI": ("pipeline/finalize.py", "def _f() -> None:\n    from longshot import cli\n",
                                  "outside the run's parts"),
    "an SDK at module level": ("sandboxes/ray.py", "import ray\n", "optional SDKs"),
    "the web view reading the pipeline": ("web/views.py", "from longshot.pipeline import schedule\n",
                                          "the web view reads"),
    "the web view reading the config": ("web/serve.py", "def _c() -> None:\n    from longshot.config import load_config\n",
                                        "the web view reads"),
    "a stage importing the web view": ("pipeline/finalize.py", "def _w() -> None:\n    from longshot.web import app\n",
                                       "outside the run's parts"),
}


def planted(tmp: Path, file: str, code: str) -> Path:
    copy = tmp / "src"
    shutil.copytree(SRC, copy / "longshot", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "longshot" / file
    target.write_text(target.read_text() + "\n" + code)
    return copy


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_each_rule_fails_on_a_planted_breach(tmp_path: Path, name: str) -> None:
    file, code, says = PLANTS[name]
    copy = planted(tmp_path, file, code)
    problems = check(copy / "longshot")
    assert any(says in p for p in problems), problems


def test_the_real_test_fails_on_a_planted_import(tmp_path: Path) -> None:
    """Not just `check`: this very test module, pointed at a tree with Config below the build room, fails."""
    copy = planted(tmp_path, "sandboxes/local.py", "from longshot.config import Config\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "keeps_the_rules"], env={**os.environ, "LONGSHOT_ARCH_SRC": str(copy)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "below the build room" in run.stdout
