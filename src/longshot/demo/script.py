"""The scripted model of the demo: a planner that plans two sprints, workers that code, a reconciler.

Sprint 1 is six modules, built by four workers in parallel. Two of them (truncate and
stats) each add a helper at the end of the shared ``wordkit/_words.py``: whichever lands
second conflicts, and the merge queue turns that into a conflict-fix task whose worker
keeps both helpers. Sprint 2 is the public API and the command line (which needs the
API). One test fails from the start (a latent bug in ``sentences``): the gate does not
blame any task for it, and in finalization the reconciler issues ``fix-001``, which
corrects it, so the run ends green. Every task names the FEATURES.json feature it serves, so the
run ends with the nine features verified by their tests. Each worker reads the shared helpers, writes its tests and
its code, runs its tests with ``bash`` and hands off.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from longshot.demo import solutions
from longshot.testing.fake_script import Reply, RoleScript, ToolCallSpec, Turn

REQUEST = "Build wordkit according to SPEC.md and FEATURES.json."
MODELS = {"demo-planner": "planner", "demo-worker": "worker", "demo-reconciler": "reconciler"}
WORDS = "wordkit/_words.py"

# task id -> (module, its test, description, helper it appends to _words.py)
MODULES: dict[str, tuple[str, str, str, str]] = {
    "slug": ("wordkit/slug.py", "tests/test_slug.py", "Implement slugify in wordkit/slug.py, with its tests (SPEC.md).", ""),
    "counts": ("wordkit/counts.py", "tests/test_counts.py",
               "Implement word_count and top_words in wordkit/counts.py on top of _words.words, with tests (SPEC.md).", ""),
    "case": ("wordkit/case.py", "tests/test_case.py",
             "Implement snake_case and camel_case in wordkit/case.py, with tests (SPEC.md).", ""),
    "wrap": ("wordkit/wrap.py", "tests/test_wrap.py", "Implement wrap in wordkit/wrap.py, with tests (SPEC.md).", ""),
    "truncate": ("wordkit/truncate.py", "tests/test_truncate.py",
                 "Implement truncate in wordkit/truncate.py, cutting at word boundaries, with tests (SPEC.md).",
                 solutions.CUT_AT_WORD),
    "stats": ("wordkit/stats.py", "tests/test_stats.py",
              "Implement reading_time and syllable_count in wordkit/stats.py, with tests (SPEC.md).", solutions.SYLLABLES),
    "api": ("wordkit/__init__.py", "tests/test_api.py",
            "Export the public API from wordkit/__init__.py with __all__, with tests (SPEC.md).", ""),
    "cli": ("wordkit/cli.py", "tests/test_cli.py",
            "Implement the command line in wordkit/cli.py (slug, snake, camel, count, wrap), with tests (SPEC.md).", ""),
}
SPRINT_1 = ["slug", "counts", "case", "wrap", "truncate", "stats"]
FEATURE = {"slug": "F1", "counts": "F2", "case": "F3", "wrap": "F4", "truncate": "F5", "stats": "F6", "api": "F7",
           "cli": "F8"}
"""The FEATURES.json feature each task serves (the tokenizer, F0, is fixed by the reconciler's task)."""
PACE = {"slug": 0.5, "counts": 0.7, "case": 0.9, "wrap": 0.6, "truncate": 0.4, "stats": 1.1, "api": 0.5, "cli": 0.6}
"""Seconds per reply of each task's worker: uneven, as real workers are. Whichever of truncate
and stats lands second conflicts (usually stats); either way its conflict fix keeps both."""


def _task(python: str, task_id: str, priority: int = 3, depends_on: list[str] | None = None) -> dict[str, object]:
    path, test, description, _ = MODULES[task_id]
    return {"id": task_id, "feature": FEATURE[task_id], "description": description, "scope": [path, test],
            "acceptance": f"`{python} -m unittest {_module(test)}` passes", "priority": priority,
            "depends_on": depends_on or []}


def planner(turn: Turn, python: str, pace: float = 1.0) -> Reply:
    """Sprint 1, then the API and the command line, then done; each task names its feature."""
    answers = [
        {"scratchpad": "Sprint 1: the six independent modules, in parallel. Then the API, then the CLI.",
         "tasks": [_task(python, t) for t in SPRINT_1]},
        {"scratchpad": "The public API needs slug, counts, case and wrap; the CLI needs the API.",
         "tasks": [_task(python, "api", 2, ["slug", "counts", "case", "wrap"]),
                   _task(python, "cli", 2, ["api"])]},
        {"scratchpad": "Every feature of FEATURES.json is planned.", "tasks": []},
    ]
    sprint = min(turn.turn, len(answers) - 1)
    return Reply(content="```json\n" + json.dumps(answers[sprint], indent=1) + "\n```", delay=1.0 * pace)


def reconciler(turn: Turn, python: str, pace: float = 1.0) -> Reply:
    """The one failure on the target branch is the latent bug in ``sentences``."""
    fix = {"description": "sentences() in wordkit/_words.py splits only after '.', but SPEC.md says a sentence "
                          "ends with '.', '!' or '?'. Split after any of the three.",
           "scope": [WORDS], "fixes": ["F1"], "feature": "F0",
           "acceptance": f"`{python} -m unittest tests.test_words` passes"}
    return Reply(content=json.dumps({"scratchpad": "One failure: sentence splitting.", "tasks": [fix]}), delay=0.8 * pace)


def _module(test: str) -> str:
    return test.removesuffix(".py").replace("/", ".")


def _call(name: str, delay: float, **arguments: object) -> Reply:
    return Reply(tool_calls=[ToolCallSpec(name, dict(arguments))], delay=delay)


def _steps(python: str, task_id: str, delay: float) -> list[Reply]:
    """The replies of one worker, by task."""
    run = f"{python} -m unittest discover -s tests -t . 2>&1 | tail -3"
    if task_id.endswith("-conflict-fix"):
        merged = solutions.WORDS + solutions.CUT_AT_WORD + solutions.SYLLABLES
        steps = [_call("read", delay, path=WORDS), _call("write", delay, path=WORDS, content=merged),
                 _call("bash", delay, command=run, timeout=60)]
        summary = "Kept both helpers (cut_at_word and syllables) in wordkit/_words.py; no markers left."
    elif task_id.startswith("fix-"):
        steps = [_call("read", delay, path=WORDS),
                 _call("edit", delay, path=WORDS, old_text=solutions.SENTENCES_BUG, new_text=solutions.SENTENCES_FIX),
                 _call("bash", delay, command=f"{python} -m unittest tests.test_words 2>&1 | tail -3", timeout=60)]
        summary = "sentences() now ends a sentence at '.', '!' or '?'; tests.test_words passes."
    else:
        path, test, _, helper = MODULES[task_id]
        steps = [Reply(content="Let me read the spec and the shared helpers first.",
                       tool_calls=[ToolCallSpec("read", {"path": WORDS})], delay=delay),
                 _call("write", delay, path=test, content=solutions.work(test))]
        if helper:
            steps.append(_call("write", delay, path=WORDS, content=solutions.WORDS + helper))
        steps += [_call("write", delay, path=path, content=solutions.work(path)),
                  _call("bash", delay, command=f"{python} -m unittest {_module(test)} 2>&1 | tail -3", timeout=60)]
        summary = f"Implemented {path} per SPEC.md, with {test}; it passes."
    steps.append(_call("handoff", delay, status="complete", summary=summary, concerns=[], suggestions=[]))
    return steps


def worker(python: str, pace: float = 1.0) -> Callable[[Turn], Reply]:
    """A worker script for the given interpreter (the checks run ``python -m unittest``)."""

    def play(turn: Turn) -> Reply:
        task_id = turn.task_id or ""
        base = task_id.removesuffix("-conflict-fix")
        steps = _steps(python, task_id, PACE.get(base, 0.6) * pace)
        return steps[min(turn.turn, len(steps) - 1)]

    return play


def demo_script(python: str, pace: float = 1.0) -> RoleScript:
    """The demo's model; ``pace`` scales its thinking time (1: as recorded; 0: answers at once)."""
    return RoleScript({"planner": lambda turn: planner(turn, python, pace), "worker": worker(python, pace),
                       "reconciler": lambda turn: reconciler(turn, python, pace)})
