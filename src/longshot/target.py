"""What a target repository should hold besides its code: ``SPEC.md`` and a valid ``FEATURES.json``.

`inspect_target` reads both at a commit. ``SPEC.md`` missing is a warning (the planner then
has only the request to go on); a ``FEATURES.json`` that does not match the bundled JSON
Schema (``longshot/schemas/features.schema.json``, documented in ``docs/features-json.md``)
stops the run before planning, naming the file and the problem. `feature_problems` checks
the schema's rules (and what a schema cannot say: unique ids, known dependencies) without a
JSON Schema library.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from longshot.errors import ConfigError
from longshot.events import Emit, RunWarning
from longshot.git import Git

SPEC = "SPEC.md"
FEATURES = "FEATURES.json"
STATUSES = ("todo", "in-progress", "done", "deferred")


def features_schema() -> dict[str, Any]:
    """The bundled JSON Schema of FEATURES.json."""
    return dict(json.loads(files("longshot.schemas").joinpath("features.schema.json").read_text()))


@dataclass
class TargetFindings:
    """What `inspect_target` found: warnings to show, problems that stop a run."""

    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def feature_problems(text: str) -> list[str]:
    """Why ``text`` is not a valid FEATURES.json (empty when it is), one problem per line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"]
    if not isinstance(data, dict):
        return ['must be a JSON object such as {"features": [{"id": "F1", "name": "..."}]}']
    problems = [f"{key} must be a string" for key in ("project", "tests") if key in data and not isinstance(data[key], str)]
    features = data.get("features")
    if not isinstance(features, list) or not features:
        return problems + ['"features" must be a non-empty list of {"id", "name", ...} objects']
    ids: list[str] = []
    for i, feature in enumerate(features, 1):
        where = f"features[{i}]"
        if not isinstance(feature, dict):
            problems.append(f"{where} must be an object")
            continue
        where = f"features[{i}] ({feature['id']})" if isinstance(feature.get("id"), str) else where
        problems += [f"{where}: {p}" for p in _feature(feature)]
        if isinstance(feature.get("id"), str):
            ids.append(feature["id"])
    problems += [f"id {i!r} is used by more than one feature" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for feature in (f for f in features if isinstance(f, dict)):
        for key in ("depends_on", "uses"):
            unknown = [d for d in feature.get(key) or [] if isinstance(d, str) and d not in ids]
            if unknown and isinstance(feature.get(key), list):
                problems.append(f"{feature.get('id')}: {key} names unknown feature(s) {', '.join(unknown)}")
    return problems


def _feature(feature: dict[str, Any]) -> list[str]:
    problems = [f'"{key}" is missing or empty' for key in ("id", "name")
                if not (isinstance(feature.get(key), str) and feature[key].strip())]
    problems += [f'"{key}" must be a string' for key in ("description", "acceptance", "module")
                 if key in feature and not isinstance(feature[key], str)]
    tests = feature.get("tests")
    if tests is not None and not (isinstance(tests, str) or (isinstance(tests, list)
                                                              and all(isinstance(t, str) for t in tests))):
        problems.append('"tests" must be a path or a list of paths')
    if "status" in feature and feature["status"] not in STATUSES:
        problems.append(f'"status" must be one of {", ".join(STATUSES)}')
    for key in ("depends_on", "uses"):
        value = feature.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f'"{key}" must be a list of feature ids')
    return problems


async def inspect_target(git: Git, rev: str, where: str) -> TargetFindings:
    """SPEC.md and FEATURES.json at ``rev`` of the repository ``git`` works in (``where`` names it)."""
    found = TargetFindings()
    spec = await git.run_full("cat-file", "-e", f"{rev}:{SPEC}")
    if spec[0] != 0:
        found.warnings.append(f"{where} has no {SPEC}: the planner has only the request to go on. Fix: describe "
                              f"what to build in {SPEC} at the repository root (and the features in {FEATURES})")
    code, text, _ = await git.run_full("show", f"{rev}:{FEATURES}")
    if code == 0:
        problems = feature_problems(text)
        found.problems += [f"{FEATURES} in {where}: {p}" for p in problems[:20]]
        if problems:
            found.problems.append(f"Fix: correct {FEATURES} to match its format (docs/features-json.md; "
                                  "JSON Schema: longshot/schemas/features.schema.json)")
    return found


async def check_target(git: Git, rev: str, where: str, emit: Emit) -> None:
    """At the start of a run: warnings as events; a bad FEATURES.json is a ConfigError (exit 2)."""
    found = await inspect_target(git, rev, where)
    for warning in found.warnings:
        emit(RunWarning(code="target.note", message=warning))
    if found.problems:
        raise ConfigError("\n".join(found.problems))
