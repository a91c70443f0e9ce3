"""Checks per ecosystem and failure signatures, for real.

Detection reads manifests through a dict-backed reader; `CheckSource` reads a real hub;
signatures are taken from the real output of pytest, unittest and ``node --test``; and two
sample targets (Python with a local wheel, Node with a local package) go through
`run_commands` in real bubblewrap sandboxes, dependency set-up included.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from longshot.git import Git
from longshot.hub import Hub
from longshot.pipeline.checks import (
    ENV_FILE, PRELUDE, SETUP_CHECK, SHOWN_OUTPUT, Check, CheckPlan, CheckSource, check_result, configured_plan,
    detect_plan, guess_kind, run_commands,
)
from longshot.sandboxes.base import ExecResult
from longshot.pipeline.failures import Failure, failures_of, marker_failures, most_urgent
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote
from longshot.types import CheckResult

AUTHOR = ("Longshot", "longshot@localhost")
PYTEST_CHECK = "python -m pytest -q -p no:cacheprovider"
NODE = shutil.which("node")
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
needs_node = pytest.mark.skipif(NODE is None or shutil.which("npm") is None, reason="node/npm are not installed")
T = TypeVar("T")


# -- helpers ---------------------------------------------------------------------------


async def detect(files: dict[str, str]) -> CheckPlan:
    """`detect_plan` over an in-memory tree (path → text)."""

    async def read(path: str) -> str | None:
        return files.get(path)

    return await detect_plan(list(files), read)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a private loop (module fixtures; leaves the test's loop alone)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def commit(scratch: Path, files: dict[str, str | bytes | None], message: str) -> str:
    """Write (None: delete) files in a clone, commit, push to its origin's main; the new sha."""
    for path, content in files.items():
        target = scratch / path
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    git("add", "--all", cwd=scratch)
    git("commit", "--quiet", "-m", message, cwd=scratch)
    git("push", "--quiet", "origin", "HEAD:main", cwd=scratch)
    return git("rev-parse", "HEAD", cwd=scratch)


def history(base: Path, steps: list[dict[str, str | bytes | None]]) -> tuple[Hub, list[str]]:
    """A remote whose main has one commit per step, and an opened hub of it."""
    remote = make_remote(base, {"README.md": "# target\n"})
    scratch = base / "scratch"
    git("clone", "--quiet", str(remote), str(scratch), cwd=base)
    shas = [commit(scratch, step, f"step {i}") for i, step in enumerate(steps)]
    hub = Hub(base / "hub", url=str(remote), branch="main", author=AUTHOR)
    assert run_sync(hub.open()) == shas[-1]
    return hub, shas


def run(argv: list[str], cwd: Path, kind: str = "test", command: str | None = None,
        timeout: float = 60) -> CheckResult:
    """A real command on the host, as a `CheckResult`."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return CheckResult(command=command or shlex.join(argv), kind=kind, exit_code=done.returncode,  # type: ignore[arg-type]
                       output_tail=(done.stdout + "\n" + done.stderr).strip())


def signatures(result: CheckResult) -> list[str]:
    return [f.signature for f in failures_of(result)]


def install_args(setup: str) -> list[str]:
    """The words the shell passes to ``pip install`` in a Python set-up (after the options)."""
    step = next(s for s in setup.split(" && ") if " install --quiet --prefer-binary " in s)
    tail = step.split(" install --quiet --prefer-binary ", 1)[1]
    done = subprocess.run(["bash", "-c", f"printf '%s\\n' {tail}"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def wheel(name: str, version: str, files: dict[str, str]) -> bytes:
    """A pure-Python wheel (METADATA, WHEEL, RECORD with sha256 hashes), byte for byte stable."""
    info = f"{name}-{version}.dist-info"
    content = {path: text.encode() for path, text in files.items()}
    content[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    content[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: longshot-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
              for path, data in content.items()]
    content[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in content.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


# -- detection -------------------------------------------------------------------------


async def test_python_pyproject_installs_dependencies_and_test_extras_quoted() -> None:
    pyproject = """
[project]
name = "calc"
dependencies = ["requests>=2.31", "attrs", "rich[jupyter]>=13; python_version >= '3.8'"]

[project.optional-dependencies]
test = ["pytest-cov>=4", "attrs"]
docs = ["sphinx"]
"""
    plan = await detect({"pyproject.toml": pyproject, "requirements-dev.txt": "black\n", "src/calc/__init__.py": ""})

    assert plan.ecosystems == ["python"]
    assert plan.checks == [Check(PYTEST_CHECK, "test")]
    assert len(plan.setup) == 1
    setup = plan.setup[0]
    # What the shell hands pip: each requirement one word, duplicates once, no docs extra.
    assert install_args(setup) == ["-r", "requirements-dev.txt", "requests>=2.31", "attrs",
                                   "rich[jupyter]>=13; python_version >= '3.8'", "pytest-cov>=4"]
    assert "'requests>=2.31'" in setup and "sphinx" not in setup
    assert 'venv --system-site-packages --without-pip "$HOME/.venv"' in setup
    assert f'PYTHONPATH=$PWD/src:$PWD" >> "$HOME/{ENV_FILE}"' in setup  # src/ layout importable
    assert plan.setup_script == f"( {setup} )"


async def test_python_requirements_txt() -> None:
    plan = await detect({"requirements.txt": "flask==3.0\n", "app.py": "import flask\n"})
    assert plan.ecosystems == ["python"]
    assert plan.commands == [PYTEST_CHECK]
    assert install_args(plan.setup[0]) == ["-r", "requirements.txt"]


async def test_python_from_test_files_alone_has_no_install_step() -> None:
    plan = await detect({"lib.py": "X = 1\n", "tests/test_lib.py": "from lib import X\n"})
    assert plan.ecosystems == ["python"] and plan.commands == [PYTEST_CHECK]
    assert " install --quiet --prefer-binary" not in plan.setup[0]
    assert "import pytest" in plan.setup[0]  # pytest itself is still provided

    also = await detect({"pkg/thing_test.py": "def test_x():\n    pass\n"})
    assert also.ecosystems == ["python"]
    assert await detect({"tools/helper.py": "X = 1\n"}) == CheckPlan()  # Python code, but no tests


async def test_python_broken_pyproject_still_gets_pytest() -> None:
    plan = await detect({"pyproject.toml": "[project\nname = ", "tests/test_a.py": ""})
    assert plan.commands == [PYTEST_CHECK]
    assert " install --quiet --prefer-binary" not in plan.setup[0]


async def test_node_build_typecheck_and_test_scripts() -> None:
    manifest = {"name": "app", "scripts": {"build": "tsc -b", "typecheck": "tsc --noEmit", "test": "vitest run",
                                           "lint": "eslint ."}}
    plan = await detect({"package.json": json.dumps(manifest)})
    assert plan.ecosystems == ["node"]
    assert plan.checks == [Check("npm run build", "build"), Check("npm run typecheck", "types"),
                           Check("npm test", "test")]
    assert not any("npm install" in s or "npm ci" in s for s in plan.setup)  # no dependencies: nothing to install
    assert plan.setup == [f'echo "export PATH=$PWD/node_modules/.bin:\\$PATH" >> "$HOME/{ENV_FILE}"']


async def test_node_placeholder_test_script_is_not_a_check() -> None:
    manifest = {"name": "app", "scripts": {"test": 'echo "Error: no test specified" && exit 1'}}
    plan = await detect({"package.json": json.dumps(manifest)})
    assert plan.ecosystems == ["node"] and plan.checks == []


@pytest.mark.parametrize("lockfile, verb", [(True, "ci"), (False, "install")])
async def test_node_dependencies_are_installed_without_scripts(lockfile: bool, verb: str) -> None:
    files = {"package.json": json.dumps({"dependencies": {"left-pad": "^1.3.0"}, "scripts": {"test": "jest"}})}
    if lockfile:
        files["package-lock.json"] = "{}"
    plan = await detect(files)
    npm = [s for s in plan.setup if " npm " in f" {s}"]
    assert len(npm) == 1
    assert f"npm {verb} --ignore-scripts " in npm[0]
    assert plan.commands == ["npm test"]

    dev_only = await detect({"package.json": json.dumps({"devDependencies": {"jest": "29"}})})
    assert any("npm install --ignore-scripts " in s for s in dev_only.setup)


async def test_typescript_types_check() -> None:
    with_ts = {"package.json": json.dumps({"devDependencies": {"typescript": "^5"}}), "tsconfig.json": "{}"}
    plan = await detect(with_ts)
    assert Check("tsc --noEmit -p .", "types") in plan.checks
    # A typecheck script wins over the bare compiler.
    scripted = {**with_ts, "package.json": json.dumps({"devDependencies": {"typescript": "^5"},
                                                       "scripts": {"types": "tsc -p . --noEmit"}})}
    assert (await detect(scripted)).checks == [Check("npm run types", "types")]
    # tsconfig without typescript installed by the project: nothing to run it with.
    no_ts = {"package.json": json.dumps({"dependencies": {"react": "18"}}), "tsconfig.json": "{}"}
    assert (await detect(no_ts)).checks == []
    # tsconfig alone.
    alone = await detect({"tsconfig.json": "{}", "src/a.ts": "export const a = 1\n"})
    assert alone.ecosystems == ["typescript"] and alone.checks == [Check("tsc --noEmit -p .", "types")]


async def test_rust_and_go() -> None:
    rust = await detect({"Cargo.toml": "[package]\nname = 'x'\n", "src/main.rs": "fn main() {}\n"})
    assert rust.ecosystems == ["rust"]
    assert rust.checks == [Check("cargo build --quiet", "build"), Check("cargo test --quiet", "test")]
    assert any("cargo fetch" in s for s in rust.setup)

    go = await detect({"go.mod": "module x\n", "main.go": "package main\n"})
    assert go.ecosystems == ["go"]
    assert go.checks == [Check("go build ./...", "build"), Check("go vet ./...", "types"),
                         Check("go test ./...", "test")]
    assert any("go mod download" in s and "GOPROXY=off" in s for s in go.setup)


async def test_makefile_is_only_a_fallback() -> None:
    makefile = "CC := gcc\nFLAGS: = -O2\nbuild: main.o\n\t$(CC) -o app main.o\ntest: build\n\t./app --self-test\n"
    plan = await detect({"Makefile": makefile, "main.c": "int main(){}\n"})
    assert plan.ecosystems == ["make"]
    assert plan.checks == [Check("make build", "build"), Check("make test", "test")]

    other = await detect({"Makefile": "all:\n\tcc main.c\ncheck: all\n\t./a.out\n"})
    assert other.checks == [Check("make", "build"), Check("make check", "test")]

    with_go = await detect({"Makefile": makefile, "go.mod": "module x\n"})
    assert with_go.ecosystems == ["go"] and not any(c.command.startswith("make") for c in with_go.checks)


async def test_nothing_known_is_an_empty_plan() -> None:
    plan = await detect({"README.md": "# hi\n", "docs/guide.md": "text\n", "data.csv": "a,b\n"})
    assert plan == CheckPlan()
    assert plan.commands == [] and plan.setup_script is None


@pytest.mark.parametrize("command, kind", [
    ("tsc --noEmit", "types"), ("mypy src", "types"), ("npx pyright", "types"), ("go vet ./...", "types"),
    ("npm run typecheck", "types"), ("pytest -q", "test"), ("python -m pytest", "test"), ("npm test", "test"),
    ("cargo test", "test"), ("make check", "test"), ("make", "build"), ("make all", "build"),
    ("cargo build --release", "build"), ("npm run build", "build"),
])
def test_guess_kind_of_configured_commands(command: str, kind: str) -> None:
    assert guess_kind(command) == kind


def test_configured_plan_and_kind_of() -> None:
    plan = configured_plan(["make", "mypy .", "pytest -q"])
    assert plan.ecosystems == ["configured"] and plan.setup_script is None
    assert [(c.command, c.kind) for c in plan.checks] == [("make", "build"), ("mypy .", "types"), ("pytest -q", "test")]
    assert plan.kind_of("mypy .") == "types"
    assert plan.kind_of("ls -la") == "build"  # not in the plan: guessed


# -- CheckSource on a real hub -----------------------------------------------------------


@pytest.fixture(scope="module")
def node_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Hub, list[str]]:
    """A: package.json with a test script; B: the script is gone, a build script came."""
    base = tmp_path_factory.mktemp("source")
    a = {"package.json": json.dumps({"name": "x", "scripts": {"test": "node --test"}})}
    b = {"package.json": json.dumps({"name": "x", "scripts": {"build": "node build.js"}}), "build.js": ""}
    return history(base, [a, b])


async def test_configured_commands_are_used_as_they_are(node_history: tuple[Hub, list[str]]) -> None:
    hub, (a, b) = node_history
    source = CheckSource(hub, ["make lint", "pytest -q tests"])
    assert not source.explicit_none and source.known
    for sha in (a, b):
        plan = await source.plan_for(sha)
        assert plan.commands == ["make lint", "pytest -q tests"]
        assert plan.ecosystems == ["configured"] and plan.setup == []


async def test_check_commands_none_is_explicit(node_history: tuple[Hub, list[str]]) -> None:
    hub, (a, _) = node_history
    source = CheckSource(hub, [])
    assert source.explicit_none and not source.known
    assert (await source.plan_for(a)).checks == []
    detected = CheckSource(hub, None)
    assert not detected.explicit_none and not detected.known  # nothing detected yet


async def test_detection_grows_and_never_forgets(node_history: tuple[Hub, list[str]]) -> None:
    hub, (a, b) = node_history
    source = CheckSource(hub, None)

    plan_a = await source.plan_for(a)
    assert plan_a.commands == ["npm test"] and source.known
    plan_b = await source.plan_for(b)
    assert plan_b.commands == ["npm test", "npm run build"]  # B removed the script; the check stays
    assert plan_b.kind_of("npm test") == "test" and plan_b.kind_of("npm run build") == "build"

    fresh = CheckSource(hub, None)  # one that never saw A knows only what B says
    assert (await fresh.plan_for(b)).commands == ["npm run build"]


# -- failure signatures from real output -------------------------------------------------

PYTEST_FILES = {
    "pytest.ini": "[pytest]\n",
    "tests/test_add.py": "def add(a, b):\n    return a + b\n\n\ndef test_ok():\n    assert add(1, 1) == 2\n\n\n"
                         "def test_carry():\n    assert add(9, 1) == 11\n",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_pytest_failure_signature_is_stable_and_names_file_and_test(tmp_path: Path) -> None:
    write(tmp_path, PYTEST_FILES)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    first, second = run(argv, tmp_path), run(argv, tmp_path)

    assert "1 failed, 1 passed in" in first.output_tail  # a timing the signature must not carry
    assert signatures(first) == signatures(second) == ["test tests/test_add.py::test_carry"]
    [failure] = failures_of(first)
    assert failure.level == "test" and failure.file == "tests/test_add.py" and failure.command == shlex.join(argv)
    assert "test_carry" in failure.detail

    (tmp_path / "tests" / "test_add.py").write_text("import nosuchmodule_xyz\n")  # a collection error
    broken = run(argv, tmp_path)
    assert signatures(broken) == ["error tests/test_add.py"]
    assert failures_of(broken)[0].level == "build"


def test_pytest_parametrized_id_with_a_space(tmp_path: Path) -> None:
    write(tmp_path, {"pytest.ini": "[pytest]\n", "tests/test_p.py":
                     "import pytest\n\n@pytest.mark.parametrize('x', ['a b', 'c'])\ndef test_p(x):\n    assert x == 'c'\n"})
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert "FAILED tests/test_p.py::test_p[a b]" in result.output_tail
    assert signatures(result) == ["test tests/test_p.py::test_p[a b]"]


UNITTEST_FILES = {
    "test_units.py": "import unittest\n\n\nclass Calc(unittest.TestCase):\n"
                     "    def test_sum(self):\n        self.assertEqual(1 + 1, 3)\n\n"
                     "    def test_boom(self):\n        raise RuntimeError('boom')\n\n"
                     "    def test_fine(self):\n        pass\n",
    "test_broken.py": "import nosuchmodule_xyz\n",
}


def test_unittest_failures_errors_and_import_failures(tmp_path: Path) -> None:
    write(tmp_path, UNITTEST_FILES)
    argv = [sys.executable, "-m", "unittest"]
    first, second = run(argv, tmp_path), run(argv, tmp_path)

    assert "FAILED (failures=1, errors=2)" in first.output_tail
    expected = {"test test_units.Calc.test_sum", "test test_units.Calc.test_boom", "error import test_broken"}
    assert set(signatures(first)) == set(signatures(second)) == expected
    assert len(signatures(first)) == 3
    by_sig = {f.signature: f for f in failures_of(first)}
    assert by_sig["error import test_broken"].level == "build"
    assert by_sig["error import test_broken"].file == "test_broken.py"
    assert by_sig["test test_units.Calc.test_sum"].level == "test"
    assert not any("FAILED" in s or "errors=" in s or "unittest.loader" in s for s in signatures(first))


def test_many_failures_are_all_read_however_long_the_output(tmp_path: Path) -> None:
    """120 failing modules print far more than the events show; every failure is still read
    (a failure cut from one run's output and not the other's would look new to the gate)."""
    write(tmp_path, {f"tests/test_m{i:03d}.py": f"def test_fails_{i}():\n    assert {i} == -1, 'x' * 80\n"
                     for i in range(120)})
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    raw = ExecResult(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr)
    assert len(done.stdout) > 4 * SHOWN_OUTPUT  # much more than an event shows

    result = check_result("pytest", "test", raw)

    assert len(signatures(result)) == 120
    assert len(signatures(result.model_copy(update={"output_tail": result.output_tail[-SHOWN_OUTPUT:]}))) < 120


def test_a_summary_line_alone_is_never_a_signature() -> None:
    result = CheckResult(command="python -m unittest", exit_code=1,
                         output_tail="Ran 6 tests in 0.012s\n\nFAILED (errors=6)")
    assert signatures(result) == ["test `python -m unittest` exit 1"]


NODE_TEST = ("const test = require('node:test');\nconst assert = require('node:assert');\n\n"
             "test('adds numbers', () => { assert.strictEqual(1 + 1, 3); });\n"
             "test('keeps zero', () => { assert.strictEqual(0 + 0, 0); });\n")


@needs_node
@pytest.mark.parametrize("reporter", [[], ["--test-reporter=tap"]])
def test_node_test_failure_signature_is_stable(tmp_path: Path, reporter: list[str]) -> None:
    write(tmp_path, {"test/calc.test.js": NODE_TEST})
    argv = [str(NODE), "--test", *reporter]
    first, second = run(argv, tmp_path), run(argv, tmp_path)
    assert first.exit_code != 0 and "duration_ms" in first.output_tail  # timings differ run to run
    assert signatures(first) == signatures(second) == ["test adds numbers"]
    assert failures_of(first)[0].level == "test" and "adds numbers" in failures_of(first)[0].detail


@needs_node
def test_node_spec_reporter_names_the_failing_test(tmp_path: Path) -> None:
    write(tmp_path, {"test/calc.test.js": NODE_TEST})
    argv = [str(NODE), "--test", "--test-reporter=spec"]
    first, second = run(argv, tmp_path), run(argv, tmp_path)
    assert "test adds numbers" in signatures(first)
    assert signatures(first) == signatures(second)  # "(1.87ms)" is not part of it


@needs_node
def test_node_spec_reporter_summary_header_is_not_a_signature(tmp_path: Path) -> None:
    write(tmp_path, {"test/calc.test.js": NODE_TEST})
    result = run([str(NODE), "--test", "--test-reporter=spec"], tmp_path)
    assert "failing tests:" in result.output_tail
    assert signatures(result) == ["test adds numbers"]


def test_tsc_error_signature() -> None:
    output = ("src/a.ts(3,5): error TS2322: Type 'string' is not assignable to type 'number'.\n"
              "src/a.ts(9,1): error TS2322: Type 'string' is not assignable to type 'number'.\n"
              "lib/b.ts(1,10): error TS2304: Cannot find name 'foo'.\n\nFound 3 errors in 2 files.\n")
    result = CheckResult(command="tsc --noEmit -p .", kind="types", exit_code=2, output_tail=output)
    failures = failures_of(result)
    assert [f.signature for f in failures] == ["types src/a.ts TS2322", "types lib/b.ts TS2304"]
    assert [f.file for f in failures] == ["src/a.ts", "lib/b.ts"] and {f.level for f in failures} == {"types"}
    moved = output.replace("(3,5)", "(30,7)").replace("(9,1)", "(12,2)")  # lines move: the signature does not
    assert signatures(result.model_copy(update={"output_tail": moved})) == [f.signature for f in failures]


def test_unparseable_failure_falls_back_to_one_generic_signature(tmp_path: Path) -> None:
    command = "sh -c 'echo something went wrong >&2; exit 3'"
    result = run(["sh", "-c", "echo something went wrong >&2; exit 3"], tmp_path, kind="build", command=command)
    [failure] = failures_of(result)
    assert failure.signature == f"build `{command}` exit 3"
    assert failure.level == "build" and failure.command == command and "something went wrong" in failure.detail
    assert failures_of(result.model_copy(update={"exit_code": 0})) == []


def test_timeout_signature_without_parseable_output() -> None:
    result = CheckResult(command="npm test", exit_code=124, timed_out=True, output_tail="> x@1 test\n> jest\n")
    assert signatures(result) == ["test `npm test` timed out"]


# -- conflict markers and urgency -------------------------------------------------------


@pytest.fixture
def marked_repo(tmp_path: Path) -> tuple[Path, str, str]:
    """A repo whose second commit holds a real merge conflict, committed with its markers."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    write(repo, {"conflict.txt": "one\ntwo\nthree\n",
                 "docs/index.rst": "Title\n=======\n\nSome text.\n\nSection\n-------\n",
                 "notes.py": "PROMPT = '<<<<<<< not a marker at line start'\n"})
    (repo / "blob.bin").write_bytes(b"\x00\x01\x02<<<<<<< HEAD\nbinary\n=======\n>>>>>>> other\n\x00")
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "-m", "base", cwd=repo)
    clean = git("rev-parse", "HEAD", cwd=repo)
    git("checkout", "--quiet", "-b", "other", cwd=repo)
    write(repo, {"conflict.txt": "one\nTWO (theirs)\nthree\n"})
    git("commit", "--quiet", "-am", "theirs", cwd=repo)
    git("checkout", "--quiet", "main", cwd=repo)
    write(repo, {"conflict.txt": "one\ntwo (ours)\nthree\n"})
    git("commit", "--quiet", "-am", "ours", cwd=repo)
    merged = subprocess.run(["git", "merge", "other"], cwd=repo, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1",
                                 "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
                                 "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"})
    assert merged.returncode != 0 and "CONFLICT" in merged.stdout
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "--no-edit", "-m", "merge with markers", cwd=repo)
    return repo, clean, git("rev-parse", "HEAD", cwd=repo)


async def test_marker_failures_find_markers_in_text_files_only(marked_repo: tuple[Path, str, str]) -> None:
    repo, clean, marked = marked_repo
    assert "<<<<<<< HEAD" in (repo / "conflict.txt").read_text()
    git_ = Git(repo, author=AUTHOR)

    failures = await marker_failures(git_, marked)
    assert [f.signature for f in failures] == ["markers conflict.txt"]  # not blob.bin, docs/index.rst, notes.py
    [failure] = failures
    assert failure.level == "markers" and failure.file == "conflict.txt"
    assert failure.command == "conflict-marker scan"
    assert "conflict.txt:2: <<<<<<< HEAD" in failure.detail and "conflict.txt:6: >>>>>>> other" in failure.detail
    assert await marker_failures(git_, clean) == []


@pytest.mark.parametrize("name", ["we:ird.txt", "café.txt"])
async def test_marker_failures_report_the_real_path(tmp_path: Path, name: str) -> None:
    git("init", "--quiet", "--initial-branch=main", cwd=tmp_path)
    (tmp_path / name).write_text("<<<<<<< HEAD\na\n=======\nb\n>>>>>>> other\n")
    git("add", "--all", cwd=tmp_path)
    git("commit", "--quiet", "-m", "markers", cwd=tmp_path)
    failures = await marker_failures(Git(tmp_path, author=AUTHOR), "HEAD")
    assert [(f.signature, f.file) for f in failures] == [(f"markers {name}", name)]


async def test_most_urgent_orders_markers_build_types_test(marked_repo: tuple[Path, str, str], tmp_path: Path) -> None:
    repo, _, marked = marked_repo
    markers = await marker_failures(Git(repo, author=AUTHOR), marked)
    build = failures_of(CheckResult(command="make", kind="build", exit_code=2, output_tail="make: *** [all] Error 1"))
    types = failures_of(CheckResult(command="tsc --noEmit -p .", kind="types", exit_code=2,
                                    output_tail="src/a.ts(3,5): error TS2322: Type 'string' is not assignable."))
    test = failures_of(run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           write(tmp_path / "py", PYTEST_FILES)))
    assert [f.level for f in build + types + test] == ["build", "types", "test"]

    everything: list[Failure] = test + types + build + markers
    assert most_urgent(everything) == markers
    assert most_urgent(test + types + build) == build
    assert most_urgent(test + types) == types
    assert most_urgent(test) == test
    assert most_urgent([]) == []


# -- sample targets in real sandboxes ----------------------------------------------------


@dataclass
class Sample:
    hub: Hub
    commits: list[str]
    provider: LocalSandboxProvider

    async def plan(self, index: int) -> CheckPlan:
        sha = self.commits[index]
        return await detect_plan(await self.hub.files(sha), lambda p: self.hub.show(sha, p))

    async def run(self, index: int, plan: CheckPlan, *, commands: list[str] | None = None,
                  timeout: float = 90) -> dict[str, CheckResult]:
        return await run_commands(self.provider, self.hub, self.commits[index], plan, timeout=timeout,
                                  branch=f"check/{index}", label=f"check{index}", commands=commands)


def sample(base: Path, steps: list[dict[str, str | bytes | None]]) -> Sample:
    hub, shas = history(base, steps)
    provider = LocalSandboxProvider(base / "work", LocalOptions(tasks_dir=base / "tasks"))
    return Sample(hub, shas, provider)


CALC_PY = "import tinydep\n\n\ndef add(a, b):\n    return a + b\n\n\ndef answer():\n    return tinydep.bump(tinydep.VALUE)\n"
TEST_CALC_PY = ("from calc import add, answer\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                "def test_answer():\n    assert answer() == 42\n")
REQUIREMENTS = "--find-links wheels\n--no-index\ntinydep==1.0\n"


@pytest.fixture(scope="module")
def py_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """0: green; 1: test_add broken; 2: a requirement no index can give."""
    good = {
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1"\ndependencies = ["tinydep==1.0"]\n',
        "requirements.txt": REQUIREMENTS,
        "wheels/tinydep-1.0-py3-none-any.whl": wheel("tinydep", "1.0", {
            "tinydep/__init__.py": "VALUE = 41\n\n\ndef bump(x):\n    return x + 1\n"}),
        "src/calc/__init__.py": CALC_PY,
        "tests/test_calc.py": TEST_CALC_PY,
        "tools/boom.py": "def main():\n    raise RuntimeError('boom')\n\n\nmain()\n",
    }
    broken = {"tests/test_calc.py": TEST_CALC_PY.replace("add(2, 3) == 5", "add(2, 3) == 6")}
    uninstallable = {"requirements.txt": REQUIREMENTS + "nosuchdep==9.9\n"}
    return sample(tmp_path_factory.mktemp("pysample"), [good, broken, uninstallable])


@needs_bwrap
async def test_python_sample_installs_its_dependency_and_passes(py_sample: Sample) -> None:
    plan = await py_sample.plan(0)
    assert plan.ecosystems == ["python"] and plan.commands == [PYTEST_CHECK]
    assert install_args(plan.setup[0]) == ["-r", "requirements.txt", "tinydep==1.0"]

    results = await py_sample.run(0, plan)
    assert list(results) == [PYTEST_CHECK], [r.output_tail for r in results.values()]
    result = results[PYTEST_CHECK]
    assert result.ok and result.kind == "test", result.output_tail
    assert "2 passed" in result.output_tail

    # Without the set-up (no venv with tinydep, no src/ on the path) the same check cannot even
    # import the project: the set-up did the work.
    bare = await py_sample.run(0, CheckPlan(checks=plan.checks))
    assert not bare[PYTEST_CHECK].ok
    assert "ModuleNotFoundError" in bare[PYTEST_CHECK].output_tail, bare[PYTEST_CHECK].output_tail
    assert signatures(bare[PYTEST_CHECK]) == ["error tests/test_calc.py"]


@needs_bwrap
async def test_python_sample_broken_test_is_named(py_sample: Sample) -> None:
    plan = await py_sample.plan(1)
    results = await py_sample.run(1, plan)
    result = results[PYTEST_CHECK]
    assert not result.ok and result.exit_code == 1
    assert signatures(result) == ["test tests/test_calc.py::test_add"]
    assert failures_of(result)[0].file == "tests/test_calc.py"


@needs_bwrap
async def test_python_sample_uninstallable_requirement_fails_the_setup(py_sample: Sample) -> None:
    plan = await py_sample.plan(2)
    results = await py_sample.run(2, plan)
    assert list(results) == [SETUP_CHECK]
    result = results[SETUP_CHECK]
    assert result.kind == "build" and not result.ok
    assert "nosuchdep" in result.output_tail
    assert signatures(result) == [f"build `{SETUP_CHECK}` exit 1"]


@needs_bwrap
async def test_sandbox_timeout_and_traceback_fallback(py_sample: Sample) -> None:
    results = await py_sample.run(0, CheckPlan(), commands=["python3 tools/boom.py", "sleep 60"], timeout=4)

    boom = results["python3 tools/boom.py"]
    assert boom.exit_code == 1 and "RuntimeError: boom" in boom.output_tail
    assert signatures(boom) == ["build `python3 tools/boom.py` exit 1 tools/boom.py"]  # /workspace/ stripped

    slow = results["sleep 60"]
    assert slow.timed_out and not slow.ok
    assert signatures(slow) == ["build `sleep 60` timed out"]


@needs_bwrap
async def test_prelude_sources_the_setup_exports(py_sample: Sample) -> None:
    plan = CheckPlan(setup=[f'echo "export LONGSHOT_PROBE=from-setup" >> "$HOME/{ENV_FILE}"'])
    results = await py_sample.run(0, plan, commands=["echo probe=$LONGSHOT_PROBE"])
    assert results["echo probe=$LONGSHOT_PROBE"].output_tail == "probe=from-setup"
    assert PRELUDE.startswith('[ -f "$HOME/') and ENV_FILE in PRELUDE


NODE_CALC_TEST = ("const test = require('node:test');\nconst assert = require('node:assert');\n"
                  "const { bump } = require('tinydep');\n\n"
                  "test('bumps with tinydep', () => { assert.strictEqual(bump(41), 42); });\n"
                  "test('adds', () => { assert.strictEqual(2 + 3, 5); });\n")
NO_POSTINSTALL = "test ! -e POSTINSTALL_RAN && test ! -e vendor/tinydep/DEP_POSTINSTALL_RAN"


@pytest.fixture(scope="module")
def node_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """0: green (with postinstall scripts that must not run); 1: the tinydep test broken."""
    good = {
        "package.json": json.dumps({
            "name": "calc", "version": "1.0.0", "private": True,
            "scripts": {"test": "node --test", "postinstall": "touch POSTINSTALL_RAN"},
            "dependencies": {"tinydep": "file:vendor/tinydep"}}, indent=2),
        "vendor/tinydep/package.json": json.dumps({
            "name": "tinydep", "version": "1.0.0", "main": "index.js",
            "scripts": {"postinstall": "touch DEP_POSTINSTALL_RAN"}}),
        "vendor/tinydep/index.js": "module.exports = { bump: (x) => x + 1 };\n",
        "test/calc.test.js": NODE_CALC_TEST,
    }
    broken = {"test/calc.test.js": NODE_CALC_TEST.replace("bump(41), 42", "bump(41), 43")}
    return sample(tmp_path_factory.mktemp("nodesample"), [good, broken])


@needs_bwrap
@needs_node
async def test_node_sample_installs_without_scripts_and_passes(node_sample: Sample) -> None:
    detected = await node_sample.plan(0)
    assert detected.ecosystems == ["node"] and detected.commands == ["npm test"]
    assert any("npm install --ignore-scripts " in s for s in detected.setup)
    plan = CheckPlan(checks=[*detected.checks, Check("ls -a", "build"), Check(NO_POSTINSTALL, "build"),
                             Check("npm run postinstall --silent && test -e POSTINSTALL_RAN", "build")],
                     setup=detected.setup, ecosystems=detected.ecosystems)

    results = await node_sample.run(0, plan)
    assert list(results) == plan.commands
    assert results["npm test"].ok, results["npm test"].output_tail
    listing = results["ls -a"].output_tail.split()
    assert "node_modules" in listing and "POSTINSTALL_RAN" not in listing  # installed, hook not run
    assert results[NO_POSTINSTALL].ok, results[NO_POSTINSTALL].output_tail
    # The hook works when asked to: it was --ignore-scripts that kept it from running.
    assert results["npm run postinstall --silent && test -e POSTINSTALL_RAN"].ok


@needs_bwrap
@needs_node
async def test_node_sample_broken_test_is_named(node_sample: Sample) -> None:
    plan = await node_sample.plan(1)
    results = await node_sample.run(1, plan)
    result = results["npm test"]
    assert not result.ok and result.kind == "test"
    assert signatures(result) == ["test bumps with tinydep"]
