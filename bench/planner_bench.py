"""Benchmark of the root planner (issue 6): follow-up size, planning overhead per task.

Run: ``.venv/bin/python bench/planner_bench.py [--quick]``. Prints ONE JSON object on
stdout; progress goes to stderr. Everything happens in a temporary directory that is
removed at the end.

Targets (issue 6), on a generated repository of 5,000 files and 20 handoffs per sprint:
the follow-up message is at most 10% of the size of the first message; planning overhead
per task (excluding model latency) under 10 ms.

Set-up:

- ``make_remote`` builds a bare repository of FILES small modules
  (``src/pkg{i//100}/mod{i}.py``) plus a SPEC.md of about 8 KB and a FEATURES.json of
  about 4 KB. A real `Hub` is opened on it. The planner is built exactly as
  `Orchestrator.__init__` does: `Conversation` (role "planner", system prompt rendered
  from ``planner.md``, window from `context_window`), the shipped `Prompts`, an `Explorer`
  on the hub, a `TaskValidator` with the default prefix and sprint limit; events go through
  a `Bus` to an `NdjsonSink` on a file, as the CLI always has.
- The model is ``InstantPlanner``, an in-process `ChatModel` defined here that answers at
  once with pre-built completions (built before the run, so not counted): plan JSON with
  a scratchpad of about 800 characters and tasks with unique ids, scopes of 1-3 files,
  descriptions of about 200 characters, acceptance of about 100, a few ``depends_on``
  inside the batch. No tool calls. It records the size (characters) of the last user
  message of each request: the new content the planner sent.
- Sprints: the initial answer holds SPRINT + ACTIVE tasks, every later answer SPRINT.
  Tasks are handed off first in, first out: before each follow-up the SPRINT oldest
  planned tasks are handed off and the next ACTIVE are still running (they are the
  ``Progress.active`` list). So every follow-up carries exactly SPRINT handoffs and ACTIVE
  active tasks. The handoffs are shaped like `Ledger._report` (task_id, status, summary
  of about 300 characters, files_changed of 1-3 files, 0-2 concerns, 0-1 suggestion, landed);
  one per sprint is "partial" and NOT landed, the rest complete and landed.
- Landing: before each follow-up the landed tasks' changes are committed, one commit per
  task as the merge queue makes them (about 28 files per sprint: new modules, new tests,
  edited modules, one deletion), in a scratch clone, pushed to the remote, and the hub
  moves to it with ``hub.refresh()``.
- 3 rounds (quick: 1), each on a fresh copy of the pristine remote with a fresh hub and
  planner, of 1 initial call and 10 follow-ups (quick: 3), for enough samples for a p95.

Reported:

1. ``message_size``: the first message (characters), every follow-up, and the ratio
   follow-up / first (target max <= 0.10); the follow-up split by section (handoffs,
   active tasks, target branch with commits and file delta, framing) and the handoffs
   part split into summaries, file lists, concerns and suggestions, so a miss can be
   explained; plus what the first message would be with the whole tree (uncapped).
2. ``overhead_per_task_ms``: per planner call, (wall time of ``planner.initial`` /
   ``planner.follow_up`` - time spent inside ``InstantPlanner.complete``) / tasks returned,
   median and p95 (target < 10 ms), and the same per call (not divided).
3. ``breakdown_ms``: the steps of each call re-run one by one right after it, on the same
   state, 10 times each (quick: 3; median): ``hub.tip``, ``hub.files`` (git ls-tree -r of the
   whole tree), the tree delta (set difference and formatting), ``git log``, ``hub.show``
   of the four documents (initial), ``Prompts.render``, ``estimate_tokens`` of the
   conversation (the compaction check in ``Conversation.ask``), ``parse_plan`` and
   ``TaskValidator.validate`` (on a copy of the validator with this batch's ids removed),
   plus a bare git spawn (``git version``) for scale. ``unaccounted`` = measured overhead
   minus the sum of the parts (events, asyncio, appending messages). ``render`` is also
   split into its steps (``render.*``, not added to the sum): reading the template,
   compiling it (`Prompts.render` compiles the template on every call) and rendering.
   ``overhead_per_call_ms.initial_again_warm``: the initial call repeated at the end of
   each round on a fresh planner, to separate one-off start-up cost from the call's own.

Percentiles use linear interpolation between closest ranks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from importlib.resources import files as resource_files
from pathlib import Path
from typing import Any

from longshot.events import Bus, NdjsonSink
from longshot.hub import Hub
from longshot.llm.base import Completion, Message, Role, Usage
from longshot.pipeline.converse import Conversation
from longshot.pipeline.explore import Explorer
from longshot.pipeline.parse import TaskValidator, parse_plan
from longshot.pipeline.plan import COMMITS_LIMIT, DELTA_LIMIT, TREE_LIMIT, PlanOutcome, Planner, Progress
from longshot.prompts import Prompts
from longshot.testing.repos import git, make_remote
from longshot.tools.context import context_window, estimate_tokens
from longshot.types import Task, TaskStatus
from common import SMOKE_HELP, machine, percentile, stats

FILES = 5_000
SPRINT = 20  # handoffs per follow-up, tasks per answer
ACTIVE = 10  # tasks still running at each follow-up
PREFIX = "worker/"  # Config.git_branch_prefix default
MAX_TASKS = 50  # Config.max_tasks_per_sprint default
MODEL = "bench-planner"
REQUEST = ("Build the inventory service described in SPEC.md: every feature in FEATURES.json, with tests, "
           "a working CLI and documentation. Keep the public API of src/pkg0 stable; the build must stay green.")
TARGET_RATIO = 0.10
TARGET_OVERHEAD_MS = 10.0

WORDS = ("inventory warehouse order pricing discount ledger invoice shipment customer supplier stock "
         "reservation refund audit report export import schedule batch cache index query filter "
         "validate reconcile notify archive").split()


def log(msg: str) -> None:
    print(f"[planner_bench] {msg}", file=sys.stderr, flush=True)


def text_of(n: int, seed: int) -> str:
    """About ``n`` characters of plausible words (deterministic)."""
    out: list[str] = []
    i = seed
    while sum(len(w) + 1 for w in out) < n:
        out.append(WORDS[(i * 7 + len(out) * 3) % len(WORDS)])
        i += 1
    return " ".join(out)[:n]


# --- the generated repository -------------------------------------------------------

def module_path(i: int) -> str:
    return f"src/pkg{i // 100}/mod{i}.py"


def repo_files() -> dict[str, str]:
    files = {module_path(i): f'"""Module {i} of package {i // 100}."""\n\n\ndef f{i}(x: int) -> int:\n'
                             f"    return x + {i}\n" for i in range(FILES - 2)}
    spec = ["# Inventory service: specification\n",
            "## Overview\n" + text_of(600, 1) + "\n",
            "## Layout\nEach package `src/pkgN/` holds one bounded context; modules are small and typed.\n"]
    r = 0
    while sum(map(len, spec)) < 8_000:
        r += 1
        spec.append(f"### R{r}: {text_of(40, r)}\n{text_of(190, r * 11)}\n")
    files["SPEC.md"] = "".join(spec)
    features: list[dict[str, Any]] = []
    while len(json.dumps(features, indent=2)) < 4_000:
        n = len(features) + 1
        features.append({"id": f"F{n:02d}", "title": text_of(30, n), "status": "todo",
                         "acceptance": text_of(70, n * 5)})
    files["FEATURES.json"] = json.dumps(features, indent=2) + "\n"
    return files  # FILES files in all


# --- the scripted planner model -----------------------------------------------------

def task_plan(k: int, j: int) -> dict[str, Any]:
    """Task j of answer k: its id, scope and the files its landing changes."""
    p = (k * SPRINT + j) % (FILES // 100 - 1)
    base = p * 100 + (k * 7 + j * 3) % 88  # modules 0-89 of a package are edited, 90-99 may be deleted
    tid = f"s{k:02d}-t{j:02d}"
    new = f"src/pkg{p}/feature_{k:02d}_{j:02d}.py"
    scope = [new if j % 2 == 0 else module_path(base)]
    scope += [module_path(base + 1 + i) for i in range(j % 3)]  # 1-3 files
    changes: dict[str, str | None] = {scope[0]: f"# {tid}\n"}
    if j % 4 == 0:
        changes[f"tests/test_feature_{k:02d}_{j:02d}.py"] = f"def test_{k}_{j}():\n    assert True\n"
    if j % 5 == 0 and len(scope) > 1:
        changes[scope[1]] = f"# {tid}\n"
    if j == SPRINT - 1:
        changes[module_path(((k * 3) % (FILES // 100 - 1)) * 100 + 90 + k % 10)] = None  # deleted
    return {"id": tid, "scope": scope, "changes": changes}


def raw_task(k: int, j: int) -> dict[str, Any]:
    plan = task_plan(k, j)
    desc = (f"In {plan['scope'][0]}, implement handle_{k}_{j}(request): validate the input, apply rule "
            f"R{1 + (k + j) % 30} of SPEC.md, return a Result; cover empty and invalid input. ")
    desc = (desc + text_of(200, k * 31 + j))[:200]
    acceptance = f"pytest tests/test_feature_{k:02d}_{j:02d}.py passes; " + text_of(100, j)
    task: dict[str, Any] = {"id": plan["id"], "description": desc, "scope": plan["scope"],
                            "acceptance": acceptance[:100], "priority": 2 + j % 3}
    if j % 5 == 4:
        task["depends_on"] = [f"s{k:02d}-t{j - 1:02d}"]
    return task


def answers(sprints: int) -> list[tuple[Completion, list[int]]]:
    """Completion k and the task numbers j it carries: answer 0 has SPRINT + ACTIVE tasks."""
    out = []
    for k in range(sprints + 1):
        js = list(range(SPRINT + ACTIVE)) if k == 0 else list(range(SPRINT))
        body = {"scratchpad": f"Sprint {k}. " + text_of(800, k), "tasks": [raw_task(k, j) for j in js]}
        out.append((Completion(content=json.dumps(body, indent=1), finish_reason="stop", model=MODEL,
                               usage=Usage(prompt_tokens=1000, completion_tokens=2000)), js))
    return out


class InstantPlanner:
    """A `ChatModel` that answers every request at once with the next pre-built completion."""

    def __init__(self, completions: list[Completion]) -> None:
        self.completions = completions
        self.requests: list[dict[str, Any]] = []
        self.inside = 0.0

    async def complete(self, role: Role, messages: list[Message], tools: list[dict[str, Any]] | None = None,
                       *, task_id: str | None = None) -> Completion:
        t0 = time.perf_counter()
        user = next(m for m in reversed(messages) if m["role"] == "user")
        self.requests.append({"role": role, "user_chars": len(user["content"]), "messages": len(messages),
                              "tools": len(tools or [])})
        answer = self.completions[len(self.requests) - 1]
        self.inside += time.perf_counter() - t0
        return answer

    async def aclose(self) -> None:
        return None


# --- handoffs and landing -----------------------------------------------------------

def handoff(k: int, j: int) -> dict[str, Any]:
    plan = task_plan(k, j)
    partial = j == 7
    files = sorted(p for p in plan["changes"])[:30]
    summary = (f"Added handle_{k}_{j} to {plan['scope'][0]} with input validation and rule R{1 + (k + j) % 30}; "
               f"{'stopped before the error cases' if partial else 'tests cover empty, invalid and normal input'}. ")
    return {"task_id": plan["id"], "status": "partial" if partial else "complete",
            "summary": (summary + text_of(300, k * 13 + j))[:300],
            "files_changed": files[:5],
            "concerns": [f"{text_of(110, k + j + c)}." for c in range(j % 3)],
            "suggestions": [f"Consider {text_of(100, j)}."] if j % 4 == 1 else [],
            "landed": not partial}


def land(scratch: Path, k: int, js: list[int]) -> None:
    """Commit the landed tasks of answer k (one commit each, as the merge queue does); push."""
    for j in js:
        if j == 7:
            continue  # the partial task did not land
        plan = task_plan(k, j)
        for path, text in plan["changes"].items():
            target = scratch / path
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("a") as f:
                    f.write(text)
        git("add", "--all", cwd=scratch)
        git("commit", "--quiet", "-m", f"{plan['id']}: handle_{k}_{j} ({len(plan['changes'])} files)", cwd=scratch)
    git("push", "--quiet", "origin", "main", cwd=scratch)


# --- the breakdown ------------------------------------------------------------------

async def timed(reps: int, make: Any) -> float:
    """Median milliseconds of ``await make()`` (or ``make()`` when it is not a coroutine)."""
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        result = make()
        if asyncio.iscoroutine(result):
            await result
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def render_split(prompts: Prompts, name: str, reps: int, **variables: Any) -> dict[str, float]:
    """``Prompts.render`` in its three steps: read the template, compile it, render it."""
    def read() -> str:
        return resource_files("longshot.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")

    template = prompts._env.from_string(read())
    return {"render.read_source": await timed(reps, read),
            "render.compile": await timed(reps, lambda: prompts._env.from_string(read())) - await timed(reps, read),
            "render.render_only": await timed(reps, lambda: template.render(**variables))}


def validator_before(v: TaskValidator, tasks: list[Task]) -> TaskValidator:
    """A copy of ``v`` as it was before it accepted ``tasks``."""
    return TaskValidator(prefix=v.prefix, main_branch=v.main_branch, max_tasks=v.max_tasks,
                         known_ids=v.known_ids - {t.id for t in tasks},
                         known_branches=v.known_branches - {t.branch for t in tasks})


async def breakdown_initial(planner: Planner, answer: Completion, outcome: PlanOutcome, reps: int) -> dict[str, float]:
    hub, prompts = planner.hub, planner.prompts
    tip = await hub.tip()
    files = await hub.files(tip)
    tree = "\n".join(files[:TREE_LIMIT])
    commits = await hub.git.run("log", "-n", "20", "--format=%h %s", tip)
    docs = {n: await hub.show(tip, n) or "" for n in ("SPEC.md", "FEATURES.json", "AGENTS.md", "DECISIONS.md")}
    raws = parse_plan(answer.content).tasks
    before = planner.conversation.messages[:-2]

    async def shows() -> None:  # one after the other, as in the code
        for n in ("SPEC.md", "FEATURES.json", "AGENTS.md", "DECISIONS.md"):
            await hub.show(tip, n)

    parts = {
        "hub_tip": await timed(reps, hub.tip),
        "hub_files_ls_tree": await timed(reps, lambda: hub.files(tip)),
        "git_log": await timed(reps, lambda: hub.git.run("log", "-n", "20", "--format=%h %s", tip)),
        "hub_show_4_docs": await timed(reps, shows),
        "render": await timed(reps, lambda: prompts.render(
            "planner_initial", request=REQUEST, tree=tree, file_count=len(files), commits=commits,
            spec=docs["SPEC.md"], features=docs["FEATURES.json"], agents=docs["AGENTS.md"],
            decisions=docs["DECISIONS.md"])),
        "estimate_tokens": await timed(reps, lambda: estimate_tokens(before)),
        "parse_plan": await timed(reps, lambda: parse_plan(answer.content)),
        "validate": await timed(reps, lambda: validator_before(planner.validator, outcome.tasks).validate(raws)),
    }
    parts |= await render_split(prompts, "planner_initial", reps, request=REQUEST, tree=tree, file_count=len(files),
                                commits=commits, spec=docs["SPEC.md"], features=docs["FEATURES.json"],
                                agents=docs["AGENTS.md"], decisions=docs["DECISIONS.md"])
    return {k: round(v, 3) for k, v in parts.items()}


async def breakdown_follow_up(planner: Planner, prev_files: list[str], prev_tip: str, handoffs: list[dict[str, Any]],
                              progress: Progress, answer: Completion, outcome: PlanOutcome,
                              reps: int) -> dict[str, float]:
    hub, prompts = planner.hub, planner.prompts
    tip = await hub.tip()
    files = await hub.files(tip)

    def delta() -> str:
        before, after = set(prev_files), set(files)
        added, removed = sorted(after - before), sorted(before - after)
        return "\n".join([f"+ {p}" for p in added[:DELTA_LIMIT]] + [f"- {p}" for p in removed[:DELTA_LIMIT]])

    log_argv = ("log", "-n", str(COMMITS_LIMIT), "--format=%h %s", f"{prev_tip}..{tip}")
    commits = await hub.git.run(*log_argv)
    tree_delta = delta()
    raws = parse_plan(answer.content).tasks
    before = planner.conversation.messages[:-2]
    parts = {
        "hub_tip": await timed(reps, hub.tip),
        "hub_files_ls_tree": await timed(reps, lambda: hub.files(tip)),
        "tree_delta": await timed(reps, delta),
        "git_log": await timed(reps, lambda: hub.git.run(*log_argv)),
        "render": await timed(reps, lambda: prompts.render(
            "planner_followup", handoffs=handoffs, active=progress.active, tree_delta=tree_delta, commits=commits,
            notes=[], progress=progress)),
        "estimate_tokens": await timed(reps, lambda: estimate_tokens(before)),
        "parse_plan": await timed(reps, lambda: parse_plan(answer.content)),
        "validate": await timed(reps, lambda: validator_before(planner.validator, outcome.tasks).validate(raws)),
    }
    parts |= await render_split(prompts, "planner_followup", reps, handoffs=handoffs, active=progress.active,
                                tree_delta=tree_delta, commits=commits, notes=[], progress=progress)
    return {k: round(v, 3) for k, v in parts.items()}


def followup_sections(content: str) -> dict[str, int]:
    """Characters per section of a follow-up message (split on '## ' headings)."""
    sections: dict[str, int] = {}
    name = "framing"
    for line in content.splitlines(keepends=True):
        if line.startswith("## "):
            name = line[3:].strip().lower().replace(" ", "_")
        sections[name] = sections.get(name, 0) + len(line)
    return sections


def handoff_parts(handoffs: list[dict[str, Any]]) -> dict[str, int]:
    return {"summaries": sum(len(h["summary"]) for h in handoffs),
            "files": sum(len(", ".join(h["files_changed"])) + 10 for h in handoffs if h["files_changed"]),
            "concerns": sum(len(c) + 12 for h in handoffs for c in h["concerns"]),
            "suggestions": sum(len(s) + 15 for h in handoffs for s in h["suggestions"]),
            "headers": sum(len(f"- {h['task_id']} [{h['status']}] {'landed' if h['landed'] else 'NOT landed'}: ") + 1
                           for h in handoffs)}


# --- one round ----------------------------------------------------------------------

async def one_round(base: Path, pristine: Path, r: int, sprints: int, reps: int, sink_path: Path) -> dict[str, Any]:
    work = base / f"round{r}"
    work.mkdir()
    remote = work / "target.git"
    shutil.copytree(pristine, remote)
    scratch = work / "scratch"
    git("clone", "--quiet", str(remote), str(scratch), cwd=work)
    hub = Hub(work / "hub", url=str(remote), branch="main", author=("b", "b@x"))
    t0 = time.perf_counter()
    await hub.open()
    open_ms = (time.perf_counter() - t0) * 1000

    script = answers(sprints)
    model = InstantPlanner([c for c, _ in script])
    sink = NdjsonSink.open(sink_path)
    bus = Bus(f"planner-bench-{r}", [sink])
    prompts = Prompts()
    validator = TaskValidator(prefix=PREFIX, main_branch="main", max_tasks=MAX_TASKS)
    explorer = Explorer(hub.git, hub.tip)
    conversation = Conversation("planner", model, explorer, bus.emit, prompts.render("planner"),
                                window=context_window(MODEL, 128_000))
    planner = Planner(conversation, prompts, validator, hub, bus.emit)

    calls: list[dict[str, Any]] = []

    async def call(kind: str, coro: Any) -> PlanOutcome:
        inside0 = model.inside
        t0 = time.perf_counter()
        outcome = await coro
        wall = time.perf_counter() - t0
        model_s = model.inside - inside0
        overhead_ms = (wall - model_s) * 1000
        calls.append({"kind": kind, "tasks": len(outcome.tasks), "proposed": outcome.proposed,
                      "wall_ms": round(wall * 1000, 3), "model_ms": round(model_s * 1000, 3),
                      "overhead_ms": round(overhead_ms, 3),
                      "overhead_per_task_ms": round(overhead_ms / max(1, len(outcome.tasks)), 3)})
        return outcome

    outcome = await call("initial", planner.initial(REQUEST))
    assert outcome.proposed == len(outcome.tasks) == SPRINT + ACTIVE, (outcome.proposed, len(outcome.tasks))
    calls[-1]["breakdown_ms"] = await breakdown_initial(planner, script[0][0], outcome, reps)
    first_content = conversation.messages[1]["content"]
    tree_capped = len("\n".join(planner.files[:TREE_LIMIT]))
    tree_note = len(f"\n... ({len(planner.files) - TREE_LIMIT} more files; use the ls and find tools)")
    tree_all = len("\n".join(planner.files))

    queue: list[tuple[int, int, Task]] = [(0, j, t) for j, t in zip(script[0][1], outcome.tasks)]
    landed = 0
    summary_lines: list[str] = []
    followups: list[dict[str, Any]] = []
    for k in range(1, sprints + 1):
        done, queue = queue[:SPRINT], queue[SPRINT:]
        by_answer: dict[int, list[int]] = {}
        for kk, j, _ in done:
            by_answer.setdefault(kk, []).append(j)
        for kk, js in by_answer.items():
            land(scratch, kk, js)
        await hub.refresh()
        reports = [handoff(kk, j) for kk, j, _ in done]
        landed += sum(h["landed"] for h in reports)
        for (kk, j, t), h in zip(done, reports):
            summary_lines.append(f"{t.id} [{'landed' if h['landed'] else 'partial'}] {t.description[:80]}")
        active = [t for _, _, t in queue]
        for t in active:
            if t.status == TaskStatus.PENDING:
                t.move(TaskStatus.RUNNING)
        progress = Progress(active=active, landed=landed, failed=0, queue_depth=k % 3, budget="",
                            summary="\n".join(summary_lines + [f"{t.id} [{t.status}] {t.description[:80]}"
                                                               for t in active]))
        prev_files, prev_tip = list(planner.files), planner.last_tip
        outcome = await call("follow_up", planner.follow_up(reports, progress))
        assert outcome.proposed == len(outcome.tasks) == SPRINT, (outcome.proposed, len(outcome.tasks))
        content = next(m for m in reversed(conversation.messages) if m["role"] == "user")["content"]
        calls[-1]["breakdown_ms"] = await breakdown_follow_up(planner, prev_files, prev_tip, reports, progress,
                                                              script[k][0], outcome, reps)
        followups.append({"chars": len(content), "content": content, "sections": followup_sections(content),
                          "handoff_parts": handoff_parts(reports), "active": len(active)})
        queue += [(k, j, t) for j, t in zip(script[k][1], outcome.tasks)]
        log(f"round {r} sprint {k}/{sprints}: follow-up {len(content)} chars, "
            f"overhead {calls[-1]['overhead_ms']:.1f} ms for {calls[-1]['tasks']} tasks")
    # The same initial call again on a fresh planner, now that Jinja, pydantic and the
    # subprocess machinery are warm: how much of the first call was one-off start-up cost.
    warm_model = InstantPlanner([script[0][0]])
    warm = Planner(Conversation("planner", warm_model, explorer, bus.emit, prompts.render("planner"),
                                window=context_window(MODEL, 128_000)), prompts,
                   TaskValidator(prefix=PREFIX, main_branch="main", max_tasks=MAX_TASKS), hub, bus.emit)
    inside0, t0 = warm_model.inside, time.perf_counter()
    warm_outcome = await warm.initial(REQUEST)
    wall = time.perf_counter() - t0
    initial_warm = {"tasks": len(warm_outcome.tasks),
                    "overhead_ms": round((wall - (warm_model.inside - inside0)) * 1000, 3)}
    sink.close()
    return {"initial_warm": initial_warm, "hub_open_ms": round(open_ms, 1), "calls": calls,
            "first_content": first_content, "followups": followups, "requests": model.requests,
            "compactions": conversation.compactions,
            "conversation_chars_at_end": len(json.dumps(conversation.messages)),
            "files_at_end": len(planner.files),
            "tree_chars": {"capped": tree_capped, "note": tree_note, "all": tree_all},
            "system_chars": len(conversation.messages[0]["content"]),
            "git_spawn_ms": round(await timed(reps, lambda: hub.git.run("version")), 3)}


async def run(quick: bool | str) -> dict[str, Any]:
    """``quick``: False, True or "smoke" (the smallest run through every part)."""
    rounds, sprints, reps = (1, 1, 1) if quick == "smoke" else (1, 3, 3) if quick else (3, 10, 10)
    result: dict[str, Any] = {"bench": "planner", "quick": quick, "machine": machine(),
                              "params": {"files": FILES, "handoffs_per_sprint": SPRINT, "active_tasks": ACTIVE,
                                         "rounds": rounds, "sprints_per_round": sprints, "breakdown_reps": reps,
                                         "tree_limit": TREE_LIMIT, "delta_limit": DELTA_LIMIT,
                                         "commits_limit": COMMITS_LIMIT}}
    base = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    try:
        log(f"generating a repository of {FILES} files")
        t0 = time.perf_counter()
        files = repo_files()
        assert len(files) == FILES
        pristine = make_remote(base, files)
        result["repo"] = {"files": len(files), "spec_chars": len(files["SPEC.md"]),
                          "features_chars": len(files["FEATURES.json"]),
                          "make_remote_s": round(time.perf_counter() - t0, 2)}
        outs = []
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}: initial plan + {sprints} follow-ups")
            outs.append(await one_round(base, pristine, r, sprints, reps, base / "events.ndjson"))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    o = outs[0]
    first = len(o["first_content"])
    sizes = [f["chars"] for f in o["followups"]]
    assert all([f["chars"] for f in x["followups"]] == sizes for x in outs), "message sizes differ between rounds"
    assert [q["user_chars"] for q in o["requests"]] == [first, *sizes]
    ratios = [s / first for s in sizes]
    tree = o["tree_chars"]
    uncapped = first - tree["capped"] - tree["note"] + tree["all"]
    last = o["followups"][-1]
    fixed = sum(v for name, v in last["sections"].items() if name != "handoffs")
    result["message_size"] = {
        "system_prompt_chars": o["system_chars"],
        "first_message_chars": first,
        "first_message_parts": {"spec": result["repo"]["spec_chars"], "features": result["repo"]["features_chars"],
                                "tree_capped": tree["capped"], "request": len(REQUEST)},
        "first_message_chars_if_tree_uncapped": uncapped,
        "follow_up_chars": sizes,
        "ratios": [round(x, 4) for x in ratios],
        "max_ratio": round(max(ratios), 4),
        "target_max_ratio": TARGET_RATIO,
        "met": max(ratios) <= TARGET_RATIO,
        "last_follow_up_sections": last["sections"],
        "last_follow_up_handoff_parts": last["handoff_parts"],
        "budget_at_target_chars": int(first * TARGET_RATIO),
        "non_handoff_chars_last": fixed,
        "chars_left_per_handoff_at_target": round((first * TARGET_RATIO - fixed) / SPRINT, 1),
        "max_ratio_if_tree_uncapped": round(max(sizes) / uncapped, 4),
    }
    calls = [c for x in outs for c in x["calls"]]
    per_task = [c["overhead_per_task_ms"] for c in calls]
    fu = [c for c in calls if c["kind"] == "follow_up"]
    ini = [c for c in calls if c["kind"] == "initial"]
    keys = sorted({k for c in calls for k in c["breakdown_ms"]})

    def parts(cs: list[dict[str, Any]]) -> dict[str, float]:
        out = {k: round(statistics.median([c["breakdown_ms"][k] for c in cs if k in c["breakdown_ms"]]), 3)
               for k in keys if any(k in c["breakdown_ms"] for c in cs)}
        total = sum(v for k, v in out.items() if "." not in k)  # render.* are parts of render
        out["sum_of_parts"] = round(total, 3)
        out["measured_overhead_median"] = round(statistics.median([c["overhead_ms"] for c in cs]), 3)
        out["unaccounted"] = round(out["measured_overhead_median"] - total, 3)
        return out

    result["overhead_per_task_ms"] = {
        "all_calls": stats(per_task), "follow_up": stats([c["overhead_per_task_ms"] for c in fu]),
        "initial": stats([c["overhead_per_task_ms"] for c in ini]),
        "target_ms": TARGET_OVERHEAD_MS,
        "met": percentile(per_task, 50) < TARGET_OVERHEAD_MS and percentile(per_task, 95) < TARGET_OVERHEAD_MS,
    }
    result["overhead_per_call_ms"] = {"follow_up": stats([c["overhead_ms"] for c in fu]),
                                      "initial": stats([c["overhead_ms"] for c in ini]),
                                      "model_inside_ms": stats([c["model_ms"] for c in calls], 4)}
    result["breakdown_ms"] = {"initial": parts(ini), "follow_up": parts(fu),
                              "git_spawn_version": statistics.median([x["git_spawn_ms"] for x in outs])}
    result["overhead_per_call_ms"]["initial_again_warm"] = [x["initial_warm"] for x in outs]
    result["calls_round0"] = [{k: v for k, v in c.items() if k != "breakdown_ms"} for c in o["calls"]]
    result["conversation"] = {"compactions": [x["compactions"] for x in outs],
                              "chars_at_end": o["conversation_chars_at_end"], "files_at_end": o["files_at_end"],
                              "hub_open_ms": [x["hub_open_ms"] for x in outs]}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="1 round of 3 sprints, 3 repetitions per part")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args()
    result = asyncio.run(run("smoke" if args.smoke else args.quick))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
