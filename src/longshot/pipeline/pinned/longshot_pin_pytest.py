"""The pytest half of the check recorder (see ``longshot_pin.py``), loaded by ``-p longshot_pin_pytest``."""

from __future__ import annotations

import os
from typing import Any

from longshot_pin import put, state, write  # type: ignore[import-not-found]  # the sandbox's copy


def pytest_configure(config: Any) -> None:
    if state["dir"] is None:
        return
    state["runner"] = "pytest"
    state["tests"] = {}
    if state["addopts"] is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = state["addopts"]


def pytest_collectreport(report: Any) -> None:
    if state["runner"] == "pytest" and report.failed:
        state["errors"].append(report.nodeid or ".")


def pytest_runtest_logreport(report: Any) -> None:
    if state["runner"] != "pytest":
        return
    if report.failed:
        put(report.nodeid, "failed")
    elif report.skipped:
        put(report.nodeid, "skipped")  # skipped, or an expected failure: not passing either way
    elif report.when == "call":
        put(report.nodeid, "passed")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if state["runner"] == "pytest":
        write()
        state["runner"] = None  # written; atexit has nothing more to add


