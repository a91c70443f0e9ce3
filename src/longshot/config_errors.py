"""Turning settings validation errors into lines a user can act on.

Each line names the environment variable, says what is wrong and how to fix it, and never
repeats the value given (it may be a secret).
"""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo

_HINTS = {  # what a valid value looks like, for fields whose type does not say
    "git_repo_url": "a git URL or the path of a local repository",
    "llm_base_url": "the server's address, e.g. http://localhost:8000/v1",
    "llm_endpoints": 'a non-empty JSON list, e.g. \'[{"name": "a", "endpoint": "http://10.0.0.1:8000", '
    '"apiKey": "sk-...", "weight": 100}]\'',
    "run_max_tokens": "a whole number >= 1, or none",
    "run_max_cost_usd": "a number of dollars > 0, or none",
    "check_commands": """a command, "none", or a JSON list of commands such as '["pytest -q", "ruff check ."]'""",
}


def _expected(name: str, fields: dict[str, FieldInfo]) -> str:
    """What a valid value of field ``name`` looks like, for the Fix hint."""
    field = fields[name]
    ann = field.annotation
    if get_origin(ann) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(ann))
    if ann is bool:
        text = "true or false"
    elif ann in (int, float):
        text = "a whole number" if ann is int else "a number"
        bounds = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
        limits = [f"{op} {getattr(m, k)}" for m in field.metadata for k, op in bounds.items() if hasattr(m, k)]
        text += (" " + " and ".join(limits)) if limits else ""
    else:
        text = _HINTS.get(name, "a valid value")
    default = None if field.is_required() else field.default
    return text if default is None else f"{text} (or unset it for the default {default})"


def problems(error: ValidationError, fields: dict[str, FieldInfo]) -> list[str]:
    """One ``ENV_VAR: what. Fix: how`` line per error; never the input value."""
    lines, seen = [], set()
    for err in error.errors(include_input=False, include_url=False):
        env = (name := str(err["loc"][0])).upper()  # every check is a field check: loc names the field
        if env in seen and len(err["loc"]) > 1:
            continue  # one line per setting: a union (a number or "none") fails once per member
        seen.add(env)
        if err["type"] == "value_error":
            text = str(err["ctx"]["error"])
        else:
            text = "is not set" if err["type"] == "missing" else err["msg"][0].lower() + err["msg"][1:]
        lines.append(f"{env}: {text}" + ("" if "Fix:" in text else f". Fix: set {env} to {_expected(name, fields)}"))
    return lines
