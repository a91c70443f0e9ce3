"""The scripted model of the demo: a planner that plans two sprints, workers that code.

Sprint 1 is four independent modules built in parallel; sprint 2 is the public API, which
needs all four; then the planner answers ``"tasks": []``. Each worker looks at its test,
writes its module, runs the test with ``bash`` and hands off.
"""

from __future__ import annotations

import json

from longshot.demo import solutions
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn

REQUEST = "Build wordkit according to SPEC.md and FEATURES.json."
MODELS = {"demo-planner": "planner", "demo-worker": "worker"}

# task id -> (module path, test module, code, description)
MODULES: dict[str, tuple[str, str, str, str]] = {
    "slug": ("wordkit/slug.py", "tests.test_slug", solutions.SLUG, "Implement slugify in wordkit/slug.py (SPEC.md)."),
    "counts": ("wordkit/counts.py", "tests.test_counts", solutions.COUNTS,
               "Implement word_count and top_words in wordkit/counts.py (SPEC.md)."),
    "case": ("wordkit/case.py", "tests.test_case", solutions.CASE,
             "Implement snake_case and camel_case in wordkit/case.py (SPEC.md)."),
    "wrap": ("wordkit/wrap.py", "tests.test_wrap", solutions.WRAP, "Implement wrap in wordkit/wrap.py (SPEC.md)."),
    "api": ("wordkit/__init__.py", "tests.test_api", solutions.API,
            "Export the public API from wordkit/__init__.py with __all__ (SPEC.md)."),
}
SPRINT_1 = ["slug", "counts", "case", "wrap"]


def _task(task_id: str, priority: int = 3, depends_on: list[str] | None = None) -> dict[str, object]:
    path, test, _, description = MODULES[task_id]
    return {"id": task_id, "description": description, "scope": [path],
            "acceptance": f"python -m unittest {test} passes", "priority": priority,
            "depends_on": depends_on or []}


def planner(turn: Turn) -> Reply:
    """Sprint 1, then the API once the four modules landed, then done."""
    answers = [
        {"scratchpad": "Sprint 1: the four independent modules in parallel. Then the API.",
         "tasks": [_task(t) for t in SPRINT_1]},
        {"scratchpad": "The public API needs all four modules.", "tasks": [_task("api", 2, SPRINT_1)]},
        {"scratchpad": "Every feature of FEATURES.json is built and tested.", "tasks": []},
    ]
    sprint = min(turn.turn, len(answers) - 1)
    return Reply(content="```json\n" + json.dumps(answers[sprint], indent=1) + "\n```", delay=0.3)


def worker(python: str, delay: float):
    """A worker script for the given interpreter (the checks run ``python -m unittest``)."""

    def play(turn: Turn) -> Reply:
        task_id = turn.task_id or ""
        path, test, code, _ = MODULES[task_id]
        steps = [
            Reply(content=f"Let me look at the test for {path} first.",
                  tool_calls=[ToolCallSpec("read", {"path": test.replace(".", "/") + ".py"})], delay=delay),
            Reply(tool_calls=[ToolCallSpec("write", {"path": path, "content": code})], delay=delay),
            Reply(tool_calls=[ToolCallSpec("bash", {"command": f"{python} -m unittest {test} 2>&1 | tail -3",
                                                    "timeout": 60})], delay=delay),
            Reply(tool_calls=[ToolCallSpec("handoff", {
                "status": "complete", "summary": f"Implemented {path} per SPEC.md; {test} passes.",
                "concerns": [], "suggestions": []})], delay=delay),
        ]
        return steps[min(turn.turn, len(steps) - 1)]

    return play


def demo_script(python: str, delay: float = 0.15) -> RoleScript:
    return RoleScript({"planner": planner, "worker": worker(python, delay)})
