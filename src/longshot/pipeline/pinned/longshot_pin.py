"""Runs inside a check sandbox, in every Python process a gate check starts (never on the host).

The gate puts this file's folder (a folder of the sandbox's HOME, written by the host before
each check command) first on ``PYTHONPATH``, with a ``sitecustomize`` that calls `start`.
It does three things, all stdlib-only:

- **Where the project's code is found.** The interpreter runs with ``PYTHONSAFEPATH`` (no
  current directory or script directory in front of ``sys.path``) and without the project on
  ``PYTHONPATH``; `start` appends the project's folders *after* the standard library and the
  installed packages. A checkout's ``pytest.py``, ``unittest.py`` or ``sitecustomize.py``
  therefore never replaces the real one, and its ``.pth`` files are never read (the
  checkout is not a site folder).
- **pytest is pinned.** In the first Python process of a check command, the pinned options
  (the base's configuration file, the root folder, ``longshot_pin_pytest`` as a plugin) go into
  ``PYTEST_ADDOPTS``; once pytest has read them, the original value is put back, so the
  project's own subprocesses see the environment they expect.
- **What ran and how it ended** is written as JSON lines to ``LONGSHOT_REPORT_DIR``: every
  pytest test that reached a verdict (deselected or uncollected tests never appear), every
  collection error, and every unittest result of a ``python -m unittest`` run.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from typing import Any

state: dict[str, Any] = {"dir": None, "tests": {}, "errors": [], "runner": None, "addopts": None}
_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def start() -> None:
    """Called by the pinned ``sitecustomize``: fix ``sys.path`` and, in the first process, record."""
    for entry in os.environ.get("LONGSHOT_PROJECT_PATH", "").split(os.pathsep):
        if entry and entry not in sys.path:
            sys.path.append(entry)
    script = sys.argv[0] if sys.argv and sys.argv[0] not in ("", "-c", "-m") else ""
    if script.endswith(".py") and os.path.dirname(os.path.abspath(script)) not in sys.path:
        sys.path.append(os.path.dirname(os.path.abspath(script)))
    report_dir = os.environ.pop("LONGSHOT_REPORT_DIR", None)
    pinned = os.environ.pop("LONGSHOT_PYTEST_ARGS", None)
    if not report_dir:
        return  # a child process of the check: nothing to record here
    state["dir"] = report_dir
    if pinned is not None:
        state["addopts"] = os.environ.get("PYTEST_ADDOPTS")
        os.environ["PYTEST_ADDOPTS"] = f"{pinned} {state['addopts'] or ''}".strip()
    _record_unittest()
    atexit.register(write)


def put(test_id: str, outcome: str) -> None:
    tests: dict[str, str] = state["tests"]
    if test_id not in tests or _RANK[outcome] >= _RANK[tests[test_id]]:
        tests[test_id] = outcome


def write() -> None:
    if state["runner"] is None:
        return
    path = os.path.join(state["dir"], f"{state['runner']}-{os.getpid()}.json")
    os.makedirs(state["dir"], exist_ok=True)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        json.dump({"runner": state["runner"], "tests": state["tests"], "errors": state["errors"]}, out)


# -- unittest ---------------------------------------------------------------------------


def _record_unittest() -> None:
    import unittest

    result = unittest.TestResult

    def wrap(name: str, outcome: str) -> None:
        original = getattr(result, name)

        def recorded(self: Any, test: Any, *rest: Any) -> Any:
            if state["runner"] in (None, "unittest"):
                state["runner"] = "unittest"
                test_id = str(test.id())
                if test_id.startswith("unittest.loader._FailedTest."):
                    state["errors"].append(test_id.rsplit(".", 1)[-1])
                elif not (name == "addSubTest" and rest and rest[-1] is None):  # a passing subtest
                    put(test_id, outcome)
            return original(self, test, *rest)

        setattr(result, name, recorded)

    start_run = result.startTestRun

    def started(self: Any) -> Any:  # a run of no test at all is still a report (of nothing)
        if state["runner"] is None:
            state["runner"] = "unittest"
        return start_run(self)

    setattr(result, "startTestRun", started)
    for name, outcome in (("addSuccess", "passed"), ("addFailure", "failed"), ("addError", "failed"),
                          ("addSkip", "skipped"), ("addExpectedFailure", "skipped"),
                          ("addUnexpectedSuccess", "failed"), ("addSubTest", "failed")):
        wrap(name, outcome)
