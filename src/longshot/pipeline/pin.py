"""Check machinery pinned by the host: a branch cannot change what a check runs or how it reports.

A gate check command is trusted text, but it runs in a checkout the candidate wrote. Before
each command the host writes, into the check sandbox, what decides how the command resolves
and what it runs, all taken from the host or from the BASE of the landing, never from the
candidate:

- ``PATH`` keeps only absolute folders outside the checkout (the set-up's
  ``node_modules/.bin`` excepted), so no executable of the checkout replaces a tool;
- Python runs with ``PYTHONSAFEPATH`` and ``PYTHONNOUSERSITE``, and with the pinned
  ``sitecustomize`` first on ``PYTHONPATH`` (see ``pinned/longshot_pin.py``): the project's
  folders come after the installed packages, so no ``pytest.py``, ``sitecustomize.py`` or
  ``.pth`` of the checkout is ever loaded in their place;
- pytest reads only the base's configuration (``-c``: the base's ``[pytest]`` options
  whichever file held them; the candidate's pytest.ini, pyproject, tox.ini and setup.cfg are
  not read), with an explicit root folder;
- every pytest, unittest and node test-runner process writes which tests it ran and how each
  ended to a report folder of the sandbox's HOME, which the host reads back after the command.

The gate then compares the candidate's per-test outcomes with the base's (`outcomes.py`).
"""

from __future__ import annotations

import base64
import configparser
import gzip
import io
import json
import tomllib
import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from longshot.pipeline.checks import Reader
from longshot.types import CheckResult

PIN_DIR = ".longshot-pin"
INI_FILE = ".longshot-pytest.ini"
"""Written at the checkout's root, where pytest resolves the configuration's relative paths."""
MAX_REPORT_BYTES = 32 * 1024 * 1024
_MODULES = {name: (Path(__file__).parent / "pinned" / name).read_text()
            for name in ("longshot_pin.py", "longshot_pin_pytest.py")}
_SITECUSTOMIZE = '''"""Pinned by Longshot's gate: the system's sitecustomize, then the check recorder."""
import os as _os
import sys as _sys

_here = _os.path.dirname(_os.path.abspath(__file__))
_saved = _sys.path[:]
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
_me = _sys.modules.pop("sitecustomize")
try:
    import sitecustomize  # noqa: F401  the interpreter's own, if it has one
except ImportError:
    pass
finally:
    _sys.path[:] = _saved
    _sys.modules["sitecustomize"] = _me
import longshot_pin

longshot_pin.start()
'''
_NODE_REPORT = f"$HOME/{PIN_DIR}/reports/node.xml"
_NODE_OPTIONS = ("--test-reporter=spec --test-reporter-destination=stdout --test-reporter=junit "
                 f"--test-reporter-destination={_NODE_REPORT}")
_PATH_FILTER = (
    'set -f; _lp=; _ifs=$IFS; IFS=:; for _d in $PATH; do case "$_d" in "$PWD"/node_modules/.bin) _lp="$_lp:$_d";; '
    '"$PWD"|"$PWD"/*) ;; /*) _lp="$_lp:$_d";; esac; done; IFS=$_ifs; set +f; export PATH="${_lp#:}"; '
    'unset _lp _d _ifs; '
)


@dataclass(frozen=True)
class Pin:
    """What the host writes and exports before each check command of one landing."""

    ini: str = "[pytest]\n"

    def setup_command(self) -> str:
        """Writes the pinned files afresh (an earlier command of the same check may have changed them)."""
        files = {**{f"$HOME/{PIN_DIR}/{name}": text for name, text in _MODULES.items()},
                 f"$HOME/{PIN_DIR}/sitecustomize.py": _SITECUSTOMIZE, f"$PWD/{INI_FILE}": self.ini}
        writes = "".join(f'printf %s {base64.b64encode(text.encode()).decode()} | base64 -d > "{path}" && '
                         for path, text in files.items())
        return f'rm -rf "$HOME/{PIN_DIR}" "$PWD/{INI_FILE}" && mkdir -p "$HOME/{PIN_DIR}/reports" && {writes}true'

    @property
    def env(self) -> str:
        """Shell text put between the set-up's exports and the check command."""
        pytest_args = f"-c '$PWD/{INI_FILE}' --rootdir='$PWD' -p longshot_pin_pytest -p no:cacheprovider --continue-on-collection-errors"
        return (
            f'export LONGSHOT_PROJECT_PATH="${{PYTHONPATH:+$PYTHONPATH:}}$PWD" PYTHONPATH="$HOME/{PIN_DIR}" '
            f'PYTHONSAFEPATH=1 PYTHONNOUSERSITE=1 LONGSHOT_REPORT_DIR="$HOME/{PIN_DIR}/reports" '
            f'LONGSHOT_PYTEST_ARGS="{pytest_args}"; '
            f'if command -v node >/dev/null 2>&1 && NODE_OPTIONS="{_NODE_OPTIONS}" node -e 0 >/dev/null 2>&1; then '
            f'export NODE_OPTIONS="${{NODE_OPTIONS:+$NODE_OPTIONS }}{_NODE_OPTIONS}"; fi; '
            + _PATH_FILTER
        )

    @staticmethod
    def collect_command() -> str:
        """Prints each report (regular files only), compressed: ``==> name`` then base64 on one line."""
        return (f'cd "$HOME/{PIN_DIR}/reports" 2>/dev/null && for f in *.json *.xml; do '
                '[ -f "$f" ] && [ ! -L "$f" ] && printf "==> %s\\n" "$f" && gzip -c "$f" | base64 -w0 && echo; '
                'done; true')

    def read(self, result: CheckResult, collected: str) -> CheckResult:
        """``result`` with the per-test outcomes its runners reported (unchanged when none did)."""
        report = parse_reports(collected)
        if report is None:
            return result
        return result.model_copy(update={"tests": report.tests, "collect_errors": report.errors})


@dataclass
class Report:
    """Which tests one check command ran and how each ended (merged over its runner processes)."""

    tests: dict[str, str] = field(default_factory=dict)
    """Test id -> ``passed``, ``failed`` or ``skipped`` (an expected failure counts as skipped)."""
    errors: list[str] = field(default_factory=list)
    """What failed to be collected or imported (a test file, a folder's conftest)."""
    runners: list[str] = field(default_factory=list)


_RANK = {"passed": 0, "skipped": 1, "failed": 2}


def parse_reports(text: str) -> Report | None:
    """The report printed by `Pin.collect_command`; None when no test runner wrote one, or when
    it came back cut short (then nothing can be said about single tests)."""
    report = Report()
    name = ""
    for line in text.splitlines():
        if line.startswith("==> "):
            name = line[4:].strip()
            continue
        if not name or not line.strip():
            continue
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(base64.b64decode(line.strip()), MAX_REPORT_BYTES)
            part = _node(data) if name.endswith(".xml") else _json(data)
        except (ValueError, zlib.error, ElementTree.ParseError, gzip.BadGzipFile, EOFError):
            return None
        if part is None:
            continue
        report.runners.append(part.runners[0])
        for test_id, outcome in part.tests.items():
            if test_id not in report.tests or _RANK[outcome] > _RANK[report.tests[test_id]]:
                report.tests[test_id] = outcome
        report.errors += [e for e in part.errors if e not in report.errors]
        name = ""
    return report if report.runners else None


def _json(data: bytes) -> Report | None:
    raw = json.loads(data.decode("utf-8", "surrogateescape"))
    if not isinstance(raw, dict) or not isinstance(raw.get("tests"), dict):
        raise ValueError("not a report")
    tests = {str(k): str(v) for k, v in raw["tests"].items() if v in _RANK}
    return Report(tests=tests, errors=[str(e) for e in raw.get("errors", [])], runners=[str(raw.get("runner"))])


def _node(data: bytes) -> Report | None:
    if not data.strip():
        return None
    root = ElementTree.parse(io.BytesIO(data)).getroot()
    report = Report(runners=["node"])

    def walk(node: ElementTree.Element, path: list[str]) -> None:
        for child in node:
            if child.tag == "testsuite":
                walk(child, [*path, child.get("name", "")])
            elif child.tag == "testcase":
                test_id = " > ".join([*path, child.get("name", "")])
                tags = {c.tag for c in child}
                outcome = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
                report.tests[test_id] = outcome

    walk(root, [])
    return report


async def pin_for(files: list[str], read: Reader) -> Pin:
    """The pin of a landing on a base whose tracked files are ``files`` (read by ``read``)."""
    return Pin(ini=await base_pytest_ini(files, read))


async def base_pytest_ini(files: list[str], read: Reader) -> str:
    """The base's pytest options as one ``[pytest]`` ini file, found as pytest finds them
    (pytest.ini, .pytest.ini, pyproject.toml, tox.ini, setup.cfg: the first that has them)."""
    top = {f for f in files if "/" not in f}
    for name, section in (("pytest.ini", "pytest"), (".pytest.ini", "pytest"), ("pyproject.toml", None),
                          ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        if name not in top:
            continue
        text = await read(name) or ""
        options = _toml_options(text) if section is None else _ini_options(text, section)
        if options is not None or name in ("pytest.ini", ".pytest.ini"):
            lines = [f"{k} = {v}" if "\n" not in v else f"{k} =\n" + "".join(f"    {x}\n" for x in v.splitlines())
                     for k, v in (options or {}).items()]
            return "[pytest]\n" + "".join(f"{line.rstrip()}\n" for line in lines)
    return "[pytest]\n"


def _ini_options(text: str, section: str) -> dict[str, str] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.has_section(section):
        return None
    return {k: v.strip() for k, v in parser.items(section)}


def _toml_options(text: str) -> dict[str, str] | None:
    try:
        tool = tomllib.loads(text).get("tool", {})
    except tomllib.TOMLDecodeError:
        return None
    pytest = tool.get("pytest") if isinstance(tool, dict) else None
    if not isinstance(pytest, dict):
        return None
    options = pytest.get("ini_options", pytest)  # pytest 9 also reads [tool.pytest] itself
    if not isinstance(options, dict):
        return None
    out: dict[str, str] = {}
    for key, value in options.items():
        if isinstance(value, list):
            out[key] = "\n".join(str(v) for v in value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            out[key] = str(value)
    return out
