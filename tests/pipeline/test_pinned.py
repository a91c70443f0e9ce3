"""The check recorder that runs inside a check sandbox (`pipeline/pinned/longshot_pin.py` and
its pytest half `longshot_pin_pytest.py`), run as the gate runs it: the host's set-up command
writes the pinned files, the check command runs under the pinned environment in the project's
folder, and the reports are collected and read back (`Pin.read`). Real bash, real Python,
real pytest and unittest, in a temporary project with its own HOME. (Under bubblewrap and
through the gate: tests/pipeline/test_check_integrity.py.)"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import longshot.pipeline.pinned.longshot_pin as recorder
from longshot.pipeline.pin import PIN_DIR, Pin, base_pytest_ini
from longshot.types import CheckResult

PY = sys.executable
PINNED = Path(recorder.__file__).parent


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "project"
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (tmp_path / "home").mkdir(exist_ok=True)
    return root


def check(root: Path, command: str, pin: Pin | None = None, **env: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                 CheckResult]:
    """Set up, run ``command`` pinned, collect: the command's own output and the result as read."""
    pin = pin or Pin()
    base = {"HOME": str(root.parent / "home"), "PATH": f"{Path(PY).parent}:/usr/bin:/bin", **env}

    def sh(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", script], cwd=root, env=base, capture_output=True, text=True, timeout=120)

    assert sh(pin.setup_command()).returncode == 0
    ran = sh(pin.env + command)
    collected = sh(Pin.collect_command())
    return ran, pin.read(CheckResult(command=command, exit_code=ran.returncode), collected.stdout)


def reports(root: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((root.parent / "home" / PIN_DIR / "reports").glob("*.json"))]


PYTEST_SUITE = {
    "calc.py": "def f():\n    return 1\n",
    "tests/test_calc.py": (
        "import pytest\nfrom calc import f\n\n"
        "def test_passes():\n    assert f() == 1\n\n"
        "def test_fails():\n    assert f() == 2\n\n"
        "@pytest.mark.skip(reason='later')\ndef test_skipped():\n    pass\n\n"
        "@pytest.mark.xfail\ndef test_expected_to_fail():\n    assert False\n\n"
        "@pytest.fixture\ndef broken_teardown():\n    yield\n    raise RuntimeError('teardown')\n\n"
        "def test_passes_then_its_teardown_fails(broken_teardown):\n    pass\n\n"
        "@pytest.mark.parametrize('n', [1, 2])\ndef test_param(n):\n    assert n == 1\n"),
    "tests/test_cannot_import.py": "import not_a_module\n\ndef test_never():\n    pass\n",
}


SEES_ADDOPTS = ("import os\n\ndef test_env():\n    open(os.path.join(os.environ['HOME'], 'seen'), 'w')"
                ".write(os.environ.get('PYTEST_ADDOPTS', '<unset>'))\n")
"""A test that writes down the ``PYTEST_ADDOPTS`` the project's tests (and their subprocesses) see."""


def test_every_pytest_verdict_and_collection_error_is_recorded(tmp_path: Path) -> None:
    root = project(tmp_path, PYTEST_SUITE)

    ran, result = check(root, f"{PY} -m pytest -q")

    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert result.tests == {
        "tests/test_calc.py::test_passes": "passed", "tests/test_calc.py::test_fails": "failed",
        "tests/test_calc.py::test_skipped": "skipped", "tests/test_calc.py::test_expected_to_fail": "skipped",
        "tests/test_calc.py::test_passes_then_its_teardown_fails": "failed",
        "tests/test_calc.py::test_param[1]": "passed", "tests/test_calc.py::test_param[2]": "failed"}
    assert result.collect_errors == ["tests/test_cannot_import.py"]  # collection went on past it
    assert [r["runner"] for r in reports(root)] == ["pytest"]


def test_the_checkouts_own_pytest_sitecustomize_and_configuration_are_never_used(tmp_path: Path) -> None:
    root = project(tmp_path, {
        **PYTEST_SUITE,
        "pytest.py": "import sys\nsys.exit(0)\n",  # would replace pytest if the checkout came first
        "sitecustomize.py": "import os\nos._exit(0)\n",
        "pytest.ini": "[pytest]\naddopts = --deselect tests/test_calc.py::test_fails\n",
        "tests/test_env.py": SEES_ADDOPTS})

    ran, result = check(root, f"{PY} -m pytest -q", Pin(ini="[pytest]\n"), PYTEST_ADDOPTS="-p no:randomly")

    assert ran.returncode == 1 and result.tests is not None
    assert result.tests["tests/test_calc.py::test_fails"] == "failed"  # the candidate's deselect was not read
    # The project's own code sees the value it set, not the pinned options.
    assert (root.parent / "home" / "seen").read_text() == "-p no:randomly"


def test_the_pinned_options_are_the_bases_and_the_project_sees_no_pytest_addopts_of_ours(tmp_path: Path) -> None:
    root = project(tmp_path, {**PYTEST_SUITE, "tests/test_env.py": SEES_ADDOPTS})
    files = {"pyproject.toml": '[tool.pytest.ini_options]\naddopts = "--deselect tests/test_calc.py::test_fails"\n'}

    async def read(path: str) -> str | None:
        return files.get(path)

    pin = Pin(ini=asyncio.run(base_pytest_ini(list(files), read)))
    _, result = check(root, f"{PY} -m pytest -q", pin)

    assert result.tests is not None and "tests/test_calc.py::test_fails" not in result.tests
    assert result.tests["tests/test_calc.py::test_passes"] == "passed"
    assert (root.parent / "home" / "seen").read_text() == "<unset>"


UNIT = {
    "calc.py": "def f():\n    return 1\n",
    "tests/test_unit.py": (
        "import unittest\nfrom calc import f\n\n\nclass T(unittest.TestCase):\n"
        "    def test_passes(self):\n        self.assertEqual(f(), 1)\n\n"
        "    def test_fails(self):\n        self.assertEqual(f(), 2)\n\n"
        "    def test_errors(self):\n        raise RuntimeError('boom')\n\n"
        "    @unittest.skip('later')\n    def test_skipped(self):\n        pass\n\n"
        "    @unittest.expectedFailure\n    def test_expected(self):\n        self.fail()\n\n"
        "    @unittest.expectedFailure\n    def test_unexpected_success(self):\n        pass\n\n"
        "    def test_subtests(self):\n        for n in (1, 2):\n            with self.subTest(n=n):\n"
        "                self.assertEqual(n, 1)\n\n"
        "    def test_passing_subtests(self):\n        for n in (1, 1):\n            with self.subTest(n=n):\n"
        "                self.assertEqual(n, 1)\n"),
    "tests/test_broken.py": "import not_a_module\n",
}


def test_every_unittest_outcome_and_import_failure_is_recorded(tmp_path: Path) -> None:
    root = project(tmp_path, UNIT)

    ran, result = check(root, f"{PY} -m unittest discover -s tests")

    assert ran.returncode == 1
    t = "test_unit.T."
    assert result.tests == {
        f"{t}test_passes": "passed", f"{t}test_fails": "failed", f"{t}test_errors": "failed",
        f"{t}test_skipped": "skipped", f"{t}test_expected": "skipped", f"{t}test_unexpected_success": "failed",
        f"{t}test_subtests": "failed", f"{t}test_passing_subtests": "passed"}
    assert result.collect_errors == ["test_broken"]


def test_a_test_run_twice_under_one_id_keeps_its_worst_outcome(tmp_path: Path) -> None:
    """A test class imported into a second module runs twice with the same id: failing once is failing."""
    root = project(tmp_path, {
        "tests/test_twice.py": ("import unittest\n\n\nclass T(unittest.TestCase):\n    calls = []\n\n"
                                "    def test_flaky(self):\n        T.calls.append(1)\n"
                                "        self.assertGreater(len(T.calls), 1)\n"),
        "tests/test_again.py": "from test_twice import T  # noqa: F401\n"})

    ran, result = check(root, f"{PY} -m unittest discover -s tests")

    assert "Ran 2 tests" in ran.stderr
    assert result.tests == {"test_twice.T.test_flaky": "failed"}


def test_a_test_that_ends_the_session_is_not_counted_as_passed(tmp_path: Path) -> None:
    """Its set-up passed but it never reached a verdict: it and the tests after it are not in the
    report (so the gate calls them lost), whatever the exit code says."""
    root = project(tmp_path, {"tests/test_a.py": (
        "import pytest\n\ndef test_one():\n    pass\n\ndef test_stop():\n    pytest.exit('done', returncode=0)\n\n"
        "def test_after():\n    pass\n")})

    ran, result = check(root, f"{PY} -m pytest -q")

    assert ran.returncode == 0 and result.tests == {"tests/test_a.py::test_one": "passed"}


def test_a_run_of_no_tests_is_a_report_of_nothing_and_a_command_without_a_runner_is_none(tmp_path: Path) -> None:
    root = project(tmp_path, {"tests/__init__.py": "", "tool.py": "print('no tests here')\n"})

    _, empty = check(root, f"{PY} -m unittest discover -s tests")
    assert empty.tests == {} and empty.collect_errors == []

    ran, none = check(root, f"{PY} tool.py && {PY} -c 'import json'")
    assert ran.stdout.strip() == "no tests here"
    assert none.tests is None and reports(root) == []  # judged by its exit code alone


def test_only_the_commands_first_python_process_records(tmp_path: Path) -> None:
    """A test that runs pytest in a subprocess (a plugin's own tests do): the child's tests are
    not the check's, and its environment is the one the project expects."""
    root = project(tmp_path, {
        "inner/test_inner.py": "def test_inner():\n    pass\n",
        "tests/test_outer.py": (
            "import os, subprocess, sys\n\ndef test_outer():\n"
            "    assert 'LONGSHOT_REPORT_DIR' not in os.environ and 'LONGSHOT_PYTEST_ARGS' not in os.environ\n"
            "    done = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'inner'])\n"
            "    assert done.returncode == 0\n")})

    _, result = check(root, f"{PY} -m pytest -q tests")

    assert result.tests == {"tests/test_outer.py::test_outer": "passed"}
    assert len(reports(root)) == 1


def test_a_script_finds_its_own_folder_and_the_project_after_the_installed_packages(tmp_path: Path) -> None:
    root = project(tmp_path, {
        "scripts/run.py": "import helper\nimport json, sys\nprint(json.dumps(sys.path))\n",
        "scripts/helper.py": "",
        "json.py": "raise SystemExit('the checkout shadowed the standard library')\n"})

    ran, _ = check(root, f"{PY} scripts/run.py")

    assert ran.returncode == 0, ran.stderr
    path = json.loads(ran.stdout)
    assert str(root) in path and str(root / "scripts") in path
    assert path.index(str(root)) > max(i for i, p in enumerate(path) if p.endswith("site-packages"))


def test_the_pytest_half_records_into_the_recorder_the_sitecustomize_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the sandbox both files sit in one folder first on ``PYTHONPATH``: the plugin (loaded by
    ``-p longshot_pin_pytest``) must share the recorder's state, or nothing pytest ran is written."""
    monkeypatch.syspath_prepend(str(PINNED))
    for name in ("longshot_pin", "longshot_pin_pytest", "longshot.pipeline.pinned.longshot_pin_pytest"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import longshot_pin  # type: ignore[import-not-found]  # the sandbox's name for it

    from longshot.pipeline.pinned.longshot_pin_pytest import pytest_configure, put, state, write

    assert state is longshot_pin.state and put is longshot_pin.put and write is longshot_pin.write
    pytest_configure(None)  # outside a check (no report folder): it does nothing at all
    assert state["runner"] is None and state is not recorder.state
