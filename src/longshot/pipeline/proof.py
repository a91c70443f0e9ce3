"""The tests that prove a feature, and whether they pass on a tree.

A feature names its tests as files (``tests/test_slug.py``) or commands (``pytest -k slug``).
The final checks already ran on the final tree; a test file is judged from them wherever
they cover it, so the suite is never run a second time:

- a check *covers* a test file when it is a test check and it names that file, a directory
  above it or its dotted module, or names no path of the tree at all (a whole-suite command
  such as ``pytest`` or ``python -m unittest discover``);
- a covering check that passed proves the file passes; one that failed proves it fails when
  one of its failure signatures (`pipeline/failures.py`) names the file or its module, and
  proves it passes when the failures could be told apart and none is about the file; a
  failure that cannot be told apart counts against every file the check covers.

A command that is not one of the final checks runs once per tree, all of them in one
sandbox on the tree (with the checks' dependency set-up). A test file that no check covers
and no command runs proves nothing: its feature stays ``claimed``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from longshot.git import trailers
from longshot.hub import Hub
from longshot.pipeline.checks import CheckSource, run_commands
from longshot.pipeline.failures import failures_of
from longshot.pipeline.handoff import TRAILER
from longshot.pipeline.parse import safe_scope_path
from longshot.pipeline.protect import TEST_FILE
from longshot.sandboxes.base import SandboxProvider
from longshot.types import CheckResult

RUNNERS = ("python", "python3", "pytest", "py.test", "npm", "npx", "node", "yarn", "pnpm", "bun", "deno", "cargo",
           "go", "make", "bash", "sh", "uv", "tox", "nox", "jest", "vitest", "mocha", "ruby", "rspec", "bundle",
           "mvn", "gradle", "./")
"""First words that make a sentence of an acceptance a command (``pytest tests/test_a.py passes``)."""
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_ENDING = re.compile(r"\s+(passes|pass|succeeds|succeed|is green|exits 0|returns 0|runs green)\b.*$", re.IGNORECASE)
_PATH = re.compile(r"[\w./-]+\.\w+")
_ARGUMENT = re.compile(r"^-|[/.:]|^(test|tests|run|build|check|vet|lint|ci|exec)$")
"""A second word that makes ``<runner> <word> ...`` a command and not prose (``go to the docs``)."""
NOT_RUN = (126, 127)
"""Exit codes of a shell that could not run the command at all (not found, not executable)."""
NOT_TESTS = ("__init__.py", "conftest.py")


def is_test_file(path: str) -> bool:
    """A file the project's test runner would collect (helpers such as ``conftest.py`` are not)."""
    return bool(TEST_FILE.search(path)) and path.rsplit("/", 1)[-1] not in NOT_TESTS and "." in path.rsplit("/", 1)[-1]


def is_command(text: str) -> bool:
    """A command rather than a path: words, a runner's name, or a script of the tree (``./run-tests``)."""
    first = text.strip().split()[0] if text.strip() else ""
    return bool(first) and (any(c.isspace() for c in text.strip()) or first in RUNNERS or first.startswith("./"))


def named_in(text: str) -> tuple[list[str], list[str]]:
    """(test files, commands) a prose acceptance names: backticked spans, test paths, or a
    sentence that starts with a command (its ``passes`` cut off)."""
    files: list[str] = []
    commands: list[str] = []
    spans = _BACKTICKED.findall(text)
    for span in spans:
        span = span.strip()
        if is_command(span):
            commands.append(span)
        elif (path := safe_scope_path(span)) and is_test_file(path):
            files.append(path)
    if not spans:
        for sentence in re.split(r"(?<=;)\s+|(?<=[^.]\.)\s+|\n", text):  # "./..." ends no sentence
            sentence = re.sub(r"(?<!\.)[.;]$", "", sentence.strip())
            words = sentence.split()
            if words and (words[0].startswith("./") or (
                    words[0] in RUNNERS and len(words) > 1 and _ARGUMENT.search(words[1]))):
                commands.append(_ENDING.sub("", sentence))
    for token in _PATH.findall(text):
        path = safe_scope_path(token)
        if path and is_test_file(path) and path not in files and not any(path in c for c in commands):
            files.append(path)
    return list(dict.fromkeys(files)), list(dict.fromkeys(commands))


def module_of(path: str) -> str:
    """``tests/test_a.py`` -> ``tests.test_a`` (how unittest and import errors name it)."""
    return path.rsplit(".", 1)[0].replace("/", ".")


def mentions(signature: str, path: str) -> bool:
    """Whether a failure signature is about the test file ``path``."""
    if path in signature:
        return True
    module = module_of(path)
    return bool(re.search(rf"(^|[\s(]){re.escape(module)}(\.|\s|$)", signature))


def covers(command: str, path: str, tree: set[str]) -> bool:
    """Whether the check ``command`` runs the test file ``path`` (see the module docstring)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    dirs = {d for f in tree for d in _parents(f)}
    named = []
    for word in words[1:]:
        if word.startswith("-"):
            continue
        candidate = safe_scope_path(word.split("::")[0])
        if candidate and (candidate in tree or candidate in dirs):
            named.append(candidate)
        elif re.fullmatch(r"[\w]+(\.[\w]+)+", word) and (as_file := word.replace(".", "/") + ".py") in tree:
            named.append(as_file)
    if not named:
        return True
    return any(path == n or path.startswith(n.rstrip("/") + "/") for n in named)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


@dataclass
class Proof:
    """Whether a feature's tests pass on a tree: ``passed`` None when nothing ran them."""

    passed: bool | None
    evidence: str = ""


@dataclass
class Prover:
    """Reads what landed for which task, and judges tests on a tree (one sandbox per tree at most)."""

    provider: SandboxProvider
    hub: Hub
    checks: CheckSource
    start_commit: str
    timeout: float
    prefix: str
    _ran: dict[tuple[str, str], CheckResult] = field(default_factory=dict)

    async def landed(self, commit: str) -> dict[str, list[str]]:
        """Task id -> the commits on the target branch (oldest first) whose trailer names it."""
        git = self.hub.git
        rng = f"{self.start_commit}..{commit}" if await git.rev_parse(self.start_commit) else commit
        found: dict[str, list[str]] = {}
        for sha, task_id in reversed(await trailers(git, rng, TRAILER)):
            found.setdefault(task_id, []).append(sha)
        return found

    async def tests_changed(self, commits: list[str]) -> dict[str, list[str]]:
        """Commit -> the test files it added or changed."""
        if not commits:
            return {}
        out = await self.hub.git.run("diff-tree", "--stdin", "-r", "--name-only", "--no-renames",
                                     stdin="".join(f"{c}\n" for c in commits).encode())
        found: dict[str, list[str]] = {}
        current = ""
        for line in out.splitlines():
            if line in commits:
                current = line
            elif current and is_test_file(line):
                found.setdefault(current, []).append(line)
        return found

    async def tree(self, commit: str) -> set[str]:
        return set(await self.hub.files(commit))

    async def run(self, commit: str, commands: list[str]) -> dict[str, CheckResult]:
        """Run the commands not run on ``commit`` yet, all in one sandbox; every result."""
        todo = [c for c in dict.fromkeys(commands) if (commit, c) not in self._ran]
        if todo:
            plan = await self.checks.plan_for(commit)
            results = await run_commands(self.provider, self.hub, commit, plan, timeout=self.timeout,
                                         branch=f"{self.prefix}features", label="features", commands=todo)
            for command in todo:
                self._ran[(commit, command)] = results.get(command) or next(iter(results.values()))
        return {c: self._ran[(commit, c)] for c in commands}

    async def judge(self, commit: str, files: list[str], commands: list[str], checks: list[CheckResult],
                    tree: set[str]) -> Proof:
        """Whether ``files`` and ``commands`` pass on ``commit``, reusing the final ``checks``."""
        by_command = {c.command: c for c in checks}
        ran = await self.run(commit, [c for c in commands if c not in by_command])
        bad: list[str] = []
        good: list[str] = []
        unproven: list[str] = []
        for command in commands:
            result = by_command.get(command) or ran[command]
            if result.exit_code in NOT_RUN:
                unproven.append(f"`{command}` could not run (exit {result.exit_code}): {result.output_tail[-200:]}")
            else:
                (good if result.ok else bad).append(f"`{command}` {'passed' if result.ok else f'failed (exit {result.exit_code})'}")
        for path in files:
            verdict = file_verdict(path, checks, tree)
            if verdict is None:
                unproven.append(f"{path} is run by no check")
            else:
                (good if verdict.passed else bad).append(verdict.evidence)
        if bad:
            return Proof(False, "; ".join(bad))
        if good and not unproven:
            return Proof(True, "; ".join(good))
        return Proof(None, "; ".join(unproven))


def file_verdict(path: str, checks: list[CheckResult], tree: set[str]) -> Proof | None:
    """The test file judged from the checks that cover it; None when none does."""
    covering = [c for c in checks if c.kind == "test" and covers(c.command, path, tree)]
    if not covering:
        return None
    for check in covering:
        if check.ok:
            continue
        failures = failures_of(check)
        about = [f.signature for f in failures if mentions(f.signature, path) or f.file == path]
        generic = [f.signature for f in failures if f.signature.startswith(f"{f.level} `")]
        if about or generic:
            return Proof(False, f"{path} failed in `{check.command}`: {', '.join((about or generic)[:3])}")
    return Proof(True, f"{path} passed in `{covering[0].command}`")
