"""FEATURES.json: the shipped JSON Schema, the docs' copy of it, and the validator that runs
at the start of every run agree (issue 18 item 8)."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path

import pytest

from longshot.target import feature_problems, features_schema

ROOT = Path(__file__).resolve().parents[1]
GOOD = [
    {"features": [{"id": "F1", "name": "a"}]},
    {"project": "p", "tests": "pytest", "features": [{"id": "F1", "name": "a", "tests": ["t.py"], "status": "done",
                                                       "extra": 1}, {"id": "F2", "name": "b", "depends_on": ["F1"]}]},
]
BAD = [
    [], {"features": []}, {"features": "F1"}, {"project": 3, "features": [{"id": "F1", "name": "a"}]},
    {"features": [{"name": "a"}]}, {"features": [{"id": "F1"}]}, {"features": [{"id": "F1", "name": "a", "tests": 3}]},
    {"features": [{"id": "F1", "name": "a", "status": "finished"}]},
    {"features": [{"id": "F1", "name": "a", "depends_on": "F2"}]}, {"features": ["F1"]},
]


def test_the_docs_show_the_schema_that_ships() -> None:
    text = (ROOT / "docs" / "features-json.md").read_text()
    shown = re.findall(r"```json\n(.*?)```", text, re.DOTALL)[-1]
    assert json.loads(shown) == features_schema()


@pytest.mark.parametrize("data", GOOD + BAD, ids=lambda d: json.dumps(d)[:40])
def test_the_validator_agrees_with_the_schema(data: object) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    valid = jsonschema.Draft202012Validator(features_schema()).is_valid(data)
    assert valid == (data in GOOD)
    assert (feature_problems(json.dumps(data)) == []) == valid


def test_what_a_schema_cannot_say_is_checked_too() -> None:
    twice = {"features": [{"id": "F1", "name": "a"}, {"id": "F1", "name": "b", "uses": ["F9"]}]}
    problems = feature_problems(json.dumps(twice))
    assert any("used by more than one" in p for p in problems) and any("F9" in p for p in problems)
    assert feature_problems("{not json") == ["not valid JSON (Expecting property name enclosed in double quotes "
                                             "at line 1, column 2)"]


def test_the_demo_sample_is_valid() -> None:
    sample = files("longshot.demo").joinpath("sample", "FEATURES.json").read_text()
    assert feature_problems(sample) == []
