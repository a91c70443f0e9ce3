"""Import layering, checked by parsing every module (STYLE rule 14).

- The core (vocabulary, pipeline stages, git, hub, prompts) never imports a backend,
  the dashboard, the CLI, the composition root, the demo or the test kit.
- Backends (llm, sandboxes, harnesses) never import the pipeline, the composition root,
  the CLI or the dashboard: they conform to their `base.py` protocol and nothing more.
- The dashboard consumes events only: no pipeline, backends or composition root.
- Optional cloud SDKs (modal, ray) are never imported at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "longshot"
BACKENDS = ("longshot.llm.openai_compat", "longshot.sandboxes.local", "longshot.sandboxes.modal",
            "longshot.sandboxes.ray", "longshot.sandboxes.ray_node", "longshot.sandboxes.remote",
            "longshot.harnesses.builtin")
CORE = ("longshot.types", "longshot.errors", "longshot.events", "longshot.config", "longshot.git", "longshot.target",
        "longshot.text",
        "longshot.hub", "longshot.prompts", "longshot.pipeline")
OUTER = ("longshot.dashboard", "longshot.cli", "longshot.orchestrator", "longshot.demo", "longshot.testing")

RULES: dict[tuple[str, ...], tuple[str, ...]] = {
    CORE: BACKENDS + OUTER,
    ("longshot.llm", "longshot.sandboxes", "longshot.harnesses"): ("longshot.pipeline", *OUTER),
    ("longshot.dashboard",): ("longshot.pipeline", "longshot.orchestrator", "longshot.llm", "longshot.sandboxes",
                              "longshot.harnesses", "longshot.cli"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(mod: str, imported: str) -> list[str]:
    return [f"{mod} imports {imported}" for owners, forbidden in RULES.items()
            if under(mod, owners) and under(imported, forbidden)]


def test_rules_catch_violations() -> None:
    assert violations("longshot.pipeline.merge", "longshot.sandboxes.local")
    assert violations("longshot.sandboxes.local", "longshot.pipeline.merge")
    assert violations("longshot.dashboard.plain", "longshot.orchestrator")
    assert not violations("longshot.pipeline.dispatch", "longshot.sandboxes.base")


def test_layering() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20
    problems = [v for path in files for imported, _ in imports(path) for v in violations(module_name(path), imported)]
    assert problems == []


def test_optional_sdks_are_imported_lazily() -> None:
    eager = [
        f"{module_name(p)} imports {name}"
        for p in SRC.rglob("*.py")
        for name, top_level in imports(p)
        if top_level and name.split(".")[0] in {"modal", "ray", "docker"}
    ]
    assert eager == []
