"""Protected paths: a change may not weaken the checks without the planner's explicit allowance.

What is judged is weakening, not presence:

- **tests that exist on the base** may not be deleted (a test file with tests, or single test
  functions), skipped (a skip, skipif, xfail, importorskip, ``@unittest.skip``,
  ``self.skipTest``, ``it.skip``/``xit``/``.todo``, an added ``.only`` that narrows a file,
  ``t.Skip``, ``#[ignore]``) or put under a module-wide skip; allowed per test (or file, or
  pattern) by the task's ``"allow_removed_tests": [...]``;
- **new tests** may carry (conditional) skips: they are reported, not refused;
- **CI configuration, the checks' configuration and Longshot's own files** may not be
  changed at all unless the task says ``"allow_protected": true``.

Each refusal names the paths, the rule and how the planner allows it (`Protection.reason`).
The gate itself then compares which tests ran and how they ended (`outcomes.py`), which also
catches what no file rule sees (a collection hook, a configuration that deselects).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from longshot.git import Git
from longshot.pipeline.outcomes import ALLOW_TESTS, REFUSAL, allowed

TEST_FILE = re.compile(r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$"
                       r"|\.(test|spec)\.[cm]?[jt]sx?$")  # .mjs/.cjs/.mts/.cts too, as node --test finds them
CONFIG = re.compile(
    r"(^|/)(conftest\.py|pytest\.ini|tox\.ini|noxfile\.py|setup\.cfg|jest\.config\.[^/]+|vitest\.config\.[^/]+"
    r"|\.gitlab-ci\.yml|Jenkinsfile|\.travis\.yml|azure-pipelines\.yml)$"
    r"|^(\.github|\.ci|\.circleci|\.longshot)/"
)
PY_SKIP = re.compile(r"\bpytest\.mark\.(?:skip|skipif|xfail)\b|\bpytest\.(?:skip|xfail|importorskip)\(|\bskipTest\("
                     r"|@(?:unittest\.)?(?:skip|skipIf|skipUnless|expectedFailure)\b|raise\s+(?:unittest\.)?SkipTest\b")
_PY_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")
_PY_CLASS = re.compile(r"^(\s*)class\s+(\w+)")
_JS_TEST = re.compile(r"\b(x?)(it|test|describe)(\.skip|\.todo|\.only)?\s*\(\s*(['\"`])(.+?)\4")
_OTHER_SKIP = re.compile(r"\bt\.Skip(?:Now|f)?\(|#\[ignore\]")
RULE_TESTS = "weakens tests that exist on the base"
RULE_CONFIG = "changes CI or check configuration"
ALLOW_CONFIG = '"allow_protected": true'


@dataclass
class Protection:
    """What one change does to protected ground."""

    refused: list[str] = field(default_factory=list)
    """``path (what it does)`` for each refused path."""
    rules: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    """Tests of the base the change deletes or skips (not allowed by the task)."""
    new_skips: list[str] = field(default_factory=list)
    """New tests that carry a skip: allowed, reported."""

    def __bool__(self) -> bool:
        return bool(self.refused)

    def reason(self) -> str:
        """The refusal as a structured fact for the planner: paths, rule, how to allow it."""
        how = " and ".join(a for r, a in ((RULE_TESTS, ALLOW_TESTS), (RULE_CONFIG, ALLOW_CONFIG)) if r in self.rules)
        return (f"{REFUSAL}{'; '.join(self.rules)}): {', '.join(self.refused)}. To land it anyway, plan the "
                f"task again with {how}; otherwise change the task so that it keeps them")


Entry = tuple[str, str, str, str]
"""One changed path of a raw diff: (old blob, new blob, status letter, path)."""


async def raw_changes(git: Git, base: str, candidate: str) -> list[Entry]:
    """The paths ``base..candidate`` changes, exactly as named (``-z``: no quoting of unusual names)."""
    out = await git.run("diff", "--raw", "-z", "--no-abbrev", "--no-renames", base, candidate)
    return _parse(out, set()).get("", [])


async def raw_changes_many(git: Git, pairs: list[tuple[str, str]]) -> dict[str, list[Entry]]:
    """`raw_changes` of many ``(base, candidate)`` in one process: candidate -> its changed paths."""
    if not pairs:
        return {}
    stdin = "".join(f"{candidate} {base}\n" for base, candidate in pairs).encode()
    out = await git.run("diff-tree", "--stdin", "-r", "-z", "--raw", "--no-abbrev", "--no-renames", stdin=stdin)
    return _parse(out, {candidate for _, candidate in pairs})


def _parse(out: str, ids: set[str]) -> dict[str, list[Entry]]:
    """A ``-z`` raw diff's entries (``:<modes> <blobs> <status>``, then the path), grouped under
    the commit id that starts each diff of ``diff-tree --stdin`` (under "" before any)."""
    fields = out.split("\0")
    found: dict[str, list[Entry]] = {}
    section = found.setdefault("", [])
    i = 0
    while i < len(fields):
        field = fields[i]
        if field.startswith(":") and i + 1 < len(fields):
            parts = field.split()
            if len(parts) >= 5:
                section.append((parts[2], parts[3], parts[4][:1], fields[i + 1]))
            i += 2
            continue
        if field in ids:
            section = found.setdefault(field, [])
        i += 1
    return found


async def protected_changes(git: Git, base: str, candidate: str, allowances: list[str] | None = None, *,
                            allow_config: bool = False, changes: list[Entry] | None = None) -> Protection:
    """What ``base..candidate`` does to protected ground (``changes``: its `raw_changes`, when known)."""
    if changes is None:
        changes = await raw_changes(git, base, candidate)
    return await _judge(git, changes, allowances or [], allow_config)


async def protected_many(git: Git, pairs: list[tuple[str, str, list[str], bool]],
                         changes: dict[str, list[Entry]] | None = None) -> dict[str, Protection]:
    """`protected_changes` of many ``(base, candidate, allowances, allow_config)`` in one diff
    process (none when ``changes`` holds their `raw_changes_many`); candidates that touch
    protected ground (or add skipped tests) map to what they do."""
    if not pairs:
        return {}
    if changes is None:
        changes = await raw_changes_many(git, [(base, candidate) for base, candidate, _, _ in pairs])
    found = {c: await _judge(git, changes.get(c, []), a, allowed_config) for _, c, a, allowed_config in pairs}
    return {c: p for c, p in found.items() if p or p.new_skips}


async def _judge(git: Git, changes: list[Entry], allowances: list[str], allow_config: bool) -> Protection:
    out = Protection()
    weakened: list[tuple[str, str]] = []  # (path, what)
    for old, new, kind, path in changes:
        if CONFIG.search(path) and not allow_config:
            out.refused.append(f"{path} (CI or check configuration)")
            out.rules.append(RULE_CONFIG)
        if not TEST_FILE.search(path):
            continue
        before = await _blob(git, old) if kind != "A" else ""
        after = await _blob(git, new) if kind != "D" else ""
        removed, skipped, fresh = compare_tests(path, before, after)
        out.new_skips += fresh
        removed = [t for t in removed if not allowed(t, allowances)]
        skipped = [t for t in skipped if not allowed(t, allowances)]
        if removed:
            weakened.append((path, ("deletes a test file" if kind == "D" else "removes tests that exist on the base: "
                                    + ", ".join(t.split("::", 1)[-1] for t in removed[:8]))))
        if skipped:
            weakened.append((path, "skips tests that exist on the base: "
                             + ", ".join(t.split("::", 1)[-1] for t in skipped[:8])))
        out.tests += removed + skipped
    if weakened:
        out.refused += [f"{path} ({what})" for path, what in weakened]
        out.rules.append(RULE_TESTS)
    out.rules = list(dict.fromkeys(out.rules))
    return out


async def _blob(git: Git, sha: str) -> str:
    if set(sha) <= {"0"}:
        return ""
    data = await git.run("cat-file", "blob", sha)
    return data


def compare_tests(path: str, before: str, after: str) -> tuple[list[str], list[str], list[str]]:
    """(tests of ``before`` missing from ``after``, tests of ``before`` skipped more in ``after``,
    new tests of ``after`` that carry a skip), as ``path::name`` ids."""
    read = _python_tests if path.endswith(".py") else _js_tests if re.search(r"\.[cm]?[jt]sx?$", path) else _other_tests
    (old, old_all), (new, new_all) = read(before), read(after)
    removed = [f"{path}::{t}" for t in old if t not in new]
    skipped = [f"{path}::{t}" for t in old if t in new and new[t] + new_all > old[t] + old_all]
    fresh = [f"{path}::{t}" for t in new if t not in old and new[t] + new_all > 0]
    return removed, skipped, fresh


def _python_tests(text: str) -> tuple[dict[str, int], int]:
    """Each test (``Class::test_x`` or ``test_x``) with the skips that apply to it alone, and the
    skips that apply to the whole module."""
    tests: dict[str, int] = {}
    module = pending = 0
    classes: list[list[object]] = []  # [indent, name, skips]
    current: tuple[str, int] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if current is not None and indent <= current[1] and not stripped.startswith((")", "]", "}")):
            current = None
        while classes and indent <= int(str(classes[-1][0])) and not stripped.startswith((")", "]", "}", "@")):
            classes.pop()
        found = len(PY_SKIP.findall(line))
        if stripped.startswith("@"):
            pending += found
            continue
        if m := _PY_CLASS.match(line):
            classes.append([len(m.group(1)), m.group(2), pending])
            pending = 0
            continue
        if m := _PY_DEF.match(line):
            name = m.group(2)
            if name.startswith("test"):
                key = "::".join([*(str(c[1]) for c in classes), name])
                tests[key] = pending + sum(int(str(c[2])) for c in classes)
                current = (key, len(m.group(1)))
            else:
                current = None
            pending = 0
            continue
        if current is not None:
            tests[current[0]] += found
        elif classes and found:
            classes[-1][2] = int(str(classes[-1][2])) + found
            for key in tests:
                if key.startswith(f"{classes[-1][1]}::"):
                    tests[key] += found
        else:
            module += found
    return tests, module


def _js_tests(text: str) -> tuple[dict[str, int], int]:
    tests: dict[str, int] = {}
    for x, _, modifier, _, name in _JS_TEST.findall(text):
        tests[name] = tests.get(name, 0) + int(bool(x) or modifier in (".skip", ".todo"))
    return tests, text.count(".only(")


def _other_tests(text: str) -> tuple[dict[str, int], int]:
    return ({"(tests of this file)": 0} if text else {}), len(_OTHER_SKIP.findall(text))


TEST_NAME = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)|^\s*(?:it|test)\(\s*['\"]([^'\"]+)", re.MULTILINE)


async def _tests_changed(git: Git, base: str, rev: str) -> set[tuple[str, str]]:
    """(file, test name) for the tests in files that ``base..rev`` added or changed."""
    found: set[tuple[str, str]] = set()
    status = await git.run("diff", "--name-status", "--no-renames", base, rev)
    for line in status.splitlines():
        kind, _, path = line.partition("\t")
        if kind in ("A", "M") and TEST_FILE.search(path):
            text = await git.run("show", f"{rev}:{path}")
            found |= {(path, a or b) for a, b in TEST_NAME.findall(text)}
    return found


async def lost_tests(git: Git, source: str, tip: str, candidate: str) -> list[str]:
    """Tests that either side of a conflict added or changed but ``candidate`` no longer has.

    ``source`` is the change that conflicted, ``tip`` the target branch it conflicted with,
    ``candidate`` the resolution about to land. A resolution must keep both sides' work.
    """
    base = await git.run("merge-base", source, tip)
    wanted = await _tests_changed(git, base, source) | await _tests_changed(git, base, tip)
    lost = []
    texts: dict[str, str | None] = {}
    for path, name in sorted(wanted):
        if path not in texts:
            code, out, _ = await git.run_full("show", f"{candidate}:{path}")
            texts[path] = out if code == 0 else None
        text = texts[path]
        if text is None or name not in {a or b for a, b in TEST_NAME.findall(text)}:
            lost.append(f"{path}::{name}")
    return lost
