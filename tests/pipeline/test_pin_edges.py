"""The host side of the pinned check machinery (`pipeline/pin.py`) at its edges: which of the
base's files give the pytest options and how each value is written, what the pinned
environment does to ``PATH``, that the set-up starts afresh, and that reports which are not
reports (a link, another document, a cut or oversized stream) never pass for test outcomes."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from pathlib import Path

import pytest

from longshot.pipeline.pin import INI_FILE, MAX_REPORT_BYTES, PIN_DIR, Pin, base_pytest_ini, parse_reports, pin_for
from longshot.types import CheckResult


def reader(texts: dict[str, str]):
    async def read(path: str) -> str | None:
        return texts.get(path)

    return read


async def ini_of(texts: dict[str, str]) -> str:
    return await base_pytest_ini(list(texts), reader(texts))


async def test_toml_values_of_every_kind_are_written_as_pytest_reads_them() -> None:
    ini = await ini_of({"pyproject.toml": (
        "[tool.pytest.ini_options]\nminversion = 7\ntimeout = 2.5\nxfail_strict = false\nlog_cli = true\n"
        'markers = ["slow: slow ones", "net"]\naddopts = "-ra"\nnested = {a = 1}\n')})
    assert ini == ("[pytest]\nminversion = 7\ntimeout = 2.5\nxfail_strict = false\nlog_cli = true\n"
                   "markers =\n    slow: slow ones\n    net\naddopts = -ra\n")  # a table is no ini value


async def test_pytest_9s_own_table_is_read_too() -> None:
    assert await ini_of({"pyproject.toml": '[tool.pytest]\naddopts = ["-q", "-x"]\n'}) == (
        "[pytest]\naddopts =\n    -q\n    -x\n")


@pytest.mark.parametrize("texts, expected", [
    ({".pytest.ini": "[pytest]\naddopts = -q\n", "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-x"\n'},
     "[pytest]\naddopts = -q\n"),
    ({"pyproject.toml": "[project]\nname = 'x'\n", "tox.ini": "[pytest]\naddopts = -x\n"}, "[pytest]\naddopts = -x\n"),
    ({"pyproject.toml": "not toml = = =", "setup.cfg": "[tool:pytest]\naddopts = -s\n"}, "[pytest]\naddopts = -s\n"),
    ({"tox.ini": "[pytest\nbroken", "setup.cfg": "[tool:pytest]\naddopts = -s\n"}, "[pytest]\naddopts = -s\n"),
    ({"setup.cfg": "[pytest]\naddopts = -s\n"}, "[pytest]\n"),  # pytest reads setup.cfg's [tool:pytest] only
    ({"pyproject.toml": "tool = 3\n"}, "[pytest]\n"),
    ({"pyproject.toml": "[tool.pytest]\nini_options = 3\n"}, "[pytest]\n"),
    ({"sub/pytest.ini": "[pytest]\naddopts = -x\n"}, "[pytest]\n"),  # only the root's files count
    ({"tox.ini": "[pytest]\ntestpaths =\n    tests\n    more\n"}, "[pytest]\ntestpaths =\n    tests\n    more\n"),
])
async def test_the_first_file_pytest_would_take_gives_the_options(texts: dict[str, str], expected: str) -> None:
    assert await ini_of(texts) == expected


async def test_a_pin_for_a_base_carries_its_options_into_the_ini_it_writes() -> None:
    texts = {"tox.ini": "[pytest]\naddopts = -p no:warnings\n", "src/a.py": ""}
    pin = await pin_for(list(texts), reader(texts))
    assert pin == Pin(ini="[pytest]\naddopts = -p no:warnings\n")
    assert base64.b64encode(pin.ini.encode()).decode() in pin.setup_command()


def sh(script: str, cwd: Path, home: Path, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env={"HOME": str(home), "PATH": path},
                          capture_output=True, text=True, timeout=60)


def test_the_pinned_path_keeps_no_folder_of_the_checkout_but_its_node_modules_bin(tmp_path: Path) -> None:
    root, home = tmp_path / "checkout", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    path = ":".join([f"{root}/node_modules/.bin", f"{root}/bin", str(root), "bin", ".", "", "/opt/tool/bin",
                     f"{root}-sibling/bin", "/usr/bin", "/bin"])

    done = sh(Pin().env + 'printf %s "$PATH"', root, home, path)

    assert done.stdout.split(":") == [f"{root}/node_modules/.bin", "/opt/tool/bin", f"{root}-sibling/bin", "/usr/bin",
                                      "/bin"]


def test_the_pinned_env_points_python_at_the_pin_and_the_project_after_it(tmp_path: Path) -> None:
    root, home = tmp_path / "checkout", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    shown = 'printf "%s\\n" "$PYTHONPATH" "$LONGSHOT_PROJECT_PATH" "$PYTHONSAFEPATH$PYTHONNOUSERSITE" "$LONGSHOT_REPORT_DIR"'

    lines = sh("export PYTHONPATH=/deps; " + Pin().env + shown, root, home).stdout.splitlines()

    assert lines == [f"{home}/{PIN_DIR}", f"/deps:{root}", "11", f"{home}/{PIN_DIR}/reports"]
    assert sh(Pin().env + shown, root, home).stdout.splitlines()[1] == str(root)


def test_the_set_up_writes_everything_afresh_and_drops_old_reports(tmp_path: Path) -> None:
    root, home = tmp_path / "checkout", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    pin = Pin(ini="[pytest]\naddopts = -q\n")
    assert sh(pin.setup_command(), root, home).returncode == 0
    pinned = home / PIN_DIR
    (pinned / "longshot_pin.py").write_text("raise SystemExit  # changed by an earlier command\n")
    (pinned / "reports" / "pytest-1.json").write_text("{}")
    (root / INI_FILE).write_text("[pytest]\naddopts = --deselect x\n")

    assert sh(pin.setup_command(), root, home).returncode == 0

    assert "def start()" in (pinned / "longshot_pin.py").read_text()
    assert list((pinned / "reports").iterdir()) == []
    assert (root / INI_FILE).read_text() == "[pytest]\naddopts = -q\n"
    assert "longshot_pin.start()" in (pinned / "sitecustomize.py").read_text()


def test_only_regular_report_files_are_collected(tmp_path: Path) -> None:
    root, home = tmp_path / "checkout", tmp_path / "home"
    reports = home / PIN_DIR / "reports"
    reports.mkdir(parents=True)
    root.mkdir()
    real = {"runner": "pytest", "tests": {"t::a": "passed"}, "errors": []}
    (reports / "pytest-1.json").write_text(json.dumps(real))
    (tmp_path / "forged.json").write_text(json.dumps({"runner": "pytest", "tests": {"t::b": "passed"}}))
    (reports / "pytest-2.json").symlink_to(tmp_path / "forged.json")
    (reports / "dir.json").mkdir()
    (reports / "notes.txt").write_text("not a report")

    collected = sh(Pin.collect_command(), root, home).stdout

    assert [line for line in collected.splitlines() if line.startswith("==> ")] == ["==> pytest-1.json"]
    report = parse_reports(collected)
    assert report is not None and report.tests == {"t::a": "passed"}
    assert sh(Pin.collect_command(), root, tmp_path / "nowhere").returncode == 0  # no folder: nothing, no error


def packed(name: str, data: bytes) -> str:
    return f"==> {name}\n{base64.b64encode(gzip.compress(data)).decode()}\n"


def test_what_is_not_a_report_says_nothing_about_tests() -> None:
    not_report = packed("pytest-1.json", json.dumps({"tests": ["a"]}).encode())
    not_json = packed("pytest-1.json", b"\xff not json")
    bomb = packed("pytest-1.json", b'{"tests": {' + b" " * (MAX_REPORT_BYTES + 1) + b"}}")
    for text in (not_report, not_json, bomb, "==> pytest-1.json\n!!!not base64!!!\n",
                 "==> node.xml\n" + base64.b64encode(gzip.compress(b"<testsuites><open>")).decode() + "\n"):
        assert parse_reports(text) is None
    # An empty node report (node ran no test file) is skipped; unknown outcomes are dropped.
    other = packed("node.xml", b"") + packed("unittest-2.json", json.dumps(
        {"runner": "unittest", "tests": {"a": "passed", "b": "weird"}, "errors": ["m"]}).encode())
    report = parse_reports("noise before any name\n" + other)
    assert report is not None and (report.tests, report.errors, report.runners) == ({"a": "passed"}, ["m"], ["unittest"])


def test_reading_back_keeps_the_result_when_no_runner_reported_and_adds_outcomes_when_one_did() -> None:
    result = CheckResult(command="make check", exit_code=2, output_tail="boom")
    assert Pin().read(result, "") is result
    both = packed("pytest-1.json", json.dumps({"runner": "pytest", "tests": {"a": "failed"}, "errors": ["x.py"]}).encode())
    read = Pin().read(result, both)
    assert (read.tests, read.collect_errors, read.exit_code, read.output_tail) == ({"a": "failed"}, ["x.py"], 2, "boom")
