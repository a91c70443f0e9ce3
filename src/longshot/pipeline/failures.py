"""Failures on the target branch, each with a signature that says what is broken and where.

A signature names the failing test (with its file) or the error and its file, e.g.
``test tests/test_add.py::test_carry`` or ``types src/a.ts TS2322``. It does not depend on
wording that changes from run to run (line numbers, timings), so the same breakage seen by
two sweeps has the same signature. The reconciler deduplicates fix tasks by it.

Levels give the reconciler's order: conflict markers, then build errors, then type errors,
then failing tests. One sweep fixes only the most urgent level present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from longshot.git import Git
from longshot.types import CheckResult

LEVELS = ("markers", "build", "types", "test")
DETAIL_LIMIT = 1500

_PYTEST = re.compile(r"^(FAILED|ERROR) (\S+?\.py(?:::[^\s\[]+(?:\[[^\n]*?\])?)*)(?: - (.*))?$", re.MULTILINE)
"""A pytest summary line; a parametrize id in brackets may hold spaces (``test_p[a b]``)."""
_IMPORT = re.compile(r"^ImportError: Failed to import test module: ([\w.]+)", re.MULTILINE)
_UNITTEST = re.compile(r"^(FAIL|ERROR): (\w+) \(([\w.]+)\)", re.MULTILINE)
_TAP = re.compile(r"^\s*not ok \d+ - (.+?)\s*$", re.MULTILINE)
_SPEC = re.compile(r"^\s*[✖✕×] (?!failing tests:)(.+?)(?: \(\d[\d.]*m?s\))?\s*$", re.MULTILINE)
"""A failing test of node's spec reporter; its ``✖ failing tests:`` summary header is not one."""
_TSC = re.compile(r"^(\S+?)\(\d+,\d+\): error (TS\d+)", re.MULTILINE)
_CARGO_TEST = re.compile(r"^test (\S+) \.\.\. FAILED", re.MULTILINE)
_RUST_ERROR = re.compile(r"^error(?:\[(E\d+)\])?: .*?\n\s*--> ([^:\s]+)", re.MULTILINE)
_GO_TEST = re.compile(r"^--- FAIL: (\S+)", re.MULTILINE)
_GO_ERROR = re.compile(r"^(?:\./)?(\S+\.go):\d+:\d+: ", re.MULTILINE)
_PY_ERROR_FILE = re.compile(r'File "(?:/workspace/)?([^"]+)", line \d+')
_MARKER = re.compile(r"^(<{7}|>{7})( |$)")


@dataclass(frozen=True)
class Failure:
    """One thing broken on a tree."""

    signature: str
    level: str
    command: str
    detail: str
    file: str | None = None

    @property
    def rank(self) -> int:
        return LEVELS.index(self.level)


def failures_of(result: CheckResult) -> list[Failure]:
    """The failures one check run shows; one generic failure when none can be told apart."""
    if result.ok:
        return []
    text = result.output_tail
    level = result.kind
    found: list[tuple[str, str | None, str]] = []  # (signature, file, level)
    for kind, node, _ in _PYTEST.findall(text):
        file = node.split("::")[0]
        found.append((f"{'test' if kind == 'FAILED' and '::' in node else 'error'} {node}", file,
                      "test" if "::" in node else "build"))
    for _, name, where in _UNITTEST.findall(text):
        if not where.startswith("unittest.loader"):
            found.append((f"test {where if where.endswith(name) else where + '.' + name}", None, "test"))
    for module in _IMPORT.findall(text):
        found.append((f"error import {module}", module.replace(".", "/") + ".py", "build"))
    for name in _TAP.findall(text) + _SPEC.findall(text):
        found.append((f"test {name.strip()}", None, "test"))
    for file, code in _TSC.findall(text):
        found.append((f"types {file} {code}", file, "types"))
    for name in _CARGO_TEST.findall(text) + _GO_TEST.findall(text):
        found.append((f"test {name}", None, "test"))
    for code, file in _RUST_ERROR.findall(text):
        found.append((f"build {file} {code or 'error'}", file, "build"))
    if not found:
        for file in dict.fromkeys(_GO_ERROR.findall(text)):
            found.append((f"{level} {file}", file, level))
    if not found:
        if result.timed_out:
            return [Failure(f"{level} `{result.command}` timed out", level, result.command, _excerpt(text, ""))]
        file = next((f for f in reversed(_PY_ERROR_FILE.findall(text)) if not f.startswith("/")), None)
        where = f" {file}" if file else ""
        return [Failure(f"{level} `{result.command}` exit {result.exit_code}{where}", level, result.command,
                        _excerpt(text, ""), file)]
    unique = {sig: (file, lvl) for sig, file, lvl in found}
    return [Failure(sig, lvl if level == "test" else level, result.command, _excerpt(text, sig.split(" ", 1)[1]), file)
            for sig, (file, lvl) in unique.items()]


def _excerpt(text: str, needle: str) -> str:
    """The part of the output about ``needle`` (the tail when it cannot be found)."""
    key = needle.split("::")[-1] if needle else ""
    at = text.find(key) if key else -1
    if at < 0:
        return text[-DETAIL_LIMIT:]
    start = max(0, text.rfind("\n", 0, max(0, at - DETAIL_LIMIT // 3)) + 1)
    return text[start:start + DETAIL_LIMIT]


async def marker_failures(git: Git, commit: str) -> list[Failure]:
    """Conflict markers (``<<<<<<<`` / ``>>>>>>>`` at a line start) in tracked text files at ``commit``."""
    out = await git.run("grep", "-I", "-n", "-z", "-E", "^(<{7}|>{7})( |$)", commit, "--", check=False)
    by_file: dict[str, list[str]] = {}
    for line in out.splitlines():
        # "<commit>:<path>\0<line>\0<text>": with -z the path is neither quoted nor cut at a ':'
        where, _, rest = line.partition("\0")
        path = where.removeprefix(f"{commit}:")
        number, _, content = rest.partition("\0")
        if path and _MARKER.match(content):
            by_file.setdefault(path, []).append(f"{path}:{number}: {content[:80]}")
    return [Failure(f"markers {path}", "markers", "conflict-marker scan", "\n".join(lines[:20]), path)
            for path, lines in sorted(by_file.items())]


def most_urgent(failures: list[Failure]) -> list[Failure]:
    """The failures of the most urgent level present (one level per sweep)."""
    if not failures:
        return []
    rank = min(f.rank for f in failures)
    return [f for f in failures if f.rank == rank]
