"""The pinned check machinery's host side: the base's pytest options, and reading reports back."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Awaitable, Callable

from longshot.pipeline.pin import base_pytest_ini, parse_reports


def files(texts: dict[str, str]) -> tuple[list[str], Callable[[str], Awaitable[str | None]]]:
    async def read(path: str) -> str | None:
        return texts.get(path)

    return list(texts), read


async def test_the_base_pytest_options_come_from_the_first_file_that_holds_them() -> None:
    names, read = files({"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests", "more"]\naddopts = "-q"\n'
                                           'xfail_strict = true\n', "tox.ini": "[pytest]\naddopts = --deselect x\n"})
    ini = await base_pytest_ini(names, read)
    assert ini == "[pytest]\ntestpaths =\n    tests\n    more\naddopts = -q\nxfail_strict = true\n"
    names, read = files({"setup.cfg": "[tool:pytest]\npython_files = check_*.py\n"})
    assert await base_pytest_ini(names, read) == "[pytest]\npython_files = check_*.py\n"
    names, read = files({"pytest.ini": "[pytest]\n", "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-x"\n'})
    assert await base_pytest_ini(names, read) == "[pytest]\n"  # pytest.ini wins even when empty
    assert await base_pytest_ini([], read) == "[pytest]\n"


def report(name: str, data: bytes) -> str:
    return f"==> {name}\n{base64.b64encode(gzip.compress(data)).decode()}\n"


def test_reports_of_several_runner_processes_merge_the_worst_outcome() -> None:
    one = json.dumps({"runner": "pytest", "tests": {"a": "passed", "b": "passed"}, "errors": ["t/x.py"]}).encode()
    two = json.dumps({"runner": "pytest", "tests": {"b": "failed"}, "errors": []}).encode()
    xml = (b'<testsuites><testsuite name="calc"><testcase name="adds"/><testcase name="bad"><failure/></testcase>'
           b'</testsuite><testcase name="later"><skipped/></testcase></testsuites>')
    got = parse_reports(report("pytest-1.json", one) + report("pytest-2.json", two) + report("node.xml", xml))
    assert got is not None
    assert got.tests == {"a": "passed", "b": "failed", "calc > adds": "passed", "calc > bad": "failed",
                         "later": "skipped"}
    assert got.errors == ["t/x.py"] and got.runners == ["pytest", "pytest", "node"]


def test_no_report_or_a_report_cut_short_says_nothing_about_tests() -> None:
    assert parse_reports("") is None
    whole = report("pytest-1.json", json.dumps({"runner": "pytest", "tests": {"a": "passed"}}).encode())
    assert parse_reports(whole[: len(whole) // 2]) is None
