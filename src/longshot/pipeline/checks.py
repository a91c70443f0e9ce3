"""The target's checks: which commands prove it builds and passes, and how to run them.

`CHECK_COMMANDS`, when set, is used as it is (trusted configuration; ``none`` means no
checks, said explicitly). Otherwise `detect_plan` reads the target's manifests
(pyproject/requirements, package.json, Cargo.toml, go.mod, tsconfig, a Makefile) and
returns the commands and the dependency set-up each ecosystem needs.

The set-up is trusted text built here, never taken from a branch. It runs once per check
sandbox reaching only the package indexes (like ``SANDBOX_SETUP_COMMAND``, through the proxy
of `longshot.sandboxes.egress`) and installs only what the manifests name, without running the target's own install hooks: npm with
``--ignore-scripts``, and the Python project put on ``PYTHONPATH`` instead of running its
``setup.py``. What the set-up exports (PATH, PYTHONPATH ...) goes into ``$HOME/.longshot-env``,
which every check command sources, so the visible command stays the plain one.

Every check has a kind, the reconciler's priority order: build, then types, then test.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from longshot.capture import cap_text
from longshot.errors import SandboxError, SetupFailed, backoff_delay, policy_for
from longshot.events import Emit, RunWarning
from longshot.hub import Hub
from longshot.sandboxes.base import ExecResult, SandboxProvider, SandboxSpec
from longshot.types import CheckKind, CheckResult

SETUP_CHECK = "dependency set-up"
ENV_FILE = ".longshot-env"
PRELUDE = f'[ -f "$HOME/{ENV_FILE}" ] && . "$HOME/{ENV_FILE}"; '
"""Prepended to every check command: the set-up's exports, when there are any."""

PY_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", "requirements.txt")
PY_REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "requirements-test.txt", "dev-requirements.txt",
                   "test-requirements.txt")
PY_TEST_EXTRAS = ("test", "tests", "testing", "dev")
NPM_PLACEHOLDER = "no test specified"
_MAKE_TARGET = re.compile(r"^([A-Za-z][\w-]*)\s*:(?!=)", re.MULTILINE)


@dataclass(frozen=True)
class Check:
    """One check command and what kind of breakage it finds."""

    command: str
    kind: CheckKind


@dataclass
class CheckPlan:
    """The commands to run and the set-up they need (empty set-up: nothing to install)."""

    checks: list[Check] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    ecosystems: list[str] = field(default_factory=list)

    @property
    def commands(self) -> list[str]:
        return [c.command for c in self.checks]

    @property
    def setup_script(self) -> str | None:
        return " && ".join(f"( {s} )" for s in self.setup) or None

    def kind_of(self, command: str) -> CheckKind:
        return next((c.kind for c in self.checks if c.command == command), guess_kind(command))


def guess_kind(command: str) -> CheckKind:
    """The kind of a configured command, from its words."""
    words = command.lower()
    if re.search(r"\b(tsc|mypy|pyright|go vet|typecheck|type-check|flow)\b", words):
        return "types"
    if re.search(r"\b(test|tests|pytest|unittest|jest|vitest|mocha|check)\b", words):
        return "test"
    return "build"


def configured_plan(commands: list[str]) -> CheckPlan:
    return CheckPlan(checks=[Check(c, guess_kind(c)) for c in commands], ecosystems=["configured"])


Reader = Callable[[str], Awaitable[str | None]]
"""Reads a file of the target branch by path; None when it does not exist."""


class Pinning(Protocol):
    """How the gate pins a check command's machinery (`pipeline/pin.py`): shell text to run
    before it and around it, and how to read back what its test runners reported."""

    def setup_command(self) -> str: ...

    @property
    def env(self) -> str: ...

    def collect_command(self) -> str: ...

    def read(self, result: CheckResult, collected: str) -> CheckResult: ...


async def detect_plan(files: list[str], read: Reader) -> CheckPlan:
    """The checks and set-up the target's own files call for (empty when nothing is known)."""
    top = {f for f in files if "/" not in f}
    plan = CheckPlan()
    if top & set(PY_MARKERS) or any(_is_python_test(f) for f in files):
        await _python(plan, top, read)
    if "package.json" in top:
        await _node(plan, top, read)
    elif "tsconfig.json" in top:
        plan.ecosystems.append("typescript")
        plan.checks.append(Check("tsc --noEmit -p .", "types"))
    if "Cargo.toml" in top:
        plan.ecosystems.append("rust")
        plan.setup.append('export CARGO_HOME="$HOME/.cargo" && cargo fetch --quiet')
        plan.setup.append(f'echo "export CARGO_HOME=$HOME/.cargo CARGO_NET_OFFLINE=true" >> "$HOME/{ENV_FILE}"')
        plan.checks += [Check("cargo build --quiet", "build"), Check("cargo test --quiet", "test")]
    if "go.mod" in top:
        plan.ecosystems.append("go")
        exports = "export GOMODCACHE=$HOME/go/pkg/mod GOCACHE=$HOME/.cache/go-build GOFLAGS=-mod=mod"
        plan.setup.append(f'{exports} && go mod download && echo "{exports} GOPROXY=off" >> "$HOME/{ENV_FILE}"')
        plan.checks += [Check("go build ./...", "build"), Check("go vet ./...", "types"), Check("go test ./...", "test")]
    if not plan.checks and "Makefile" in top:
        targets = set(_MAKE_TARGET.findall(await read("Makefile") or ""))
        plan.ecosystems.append("make")
        plan.checks.append(Check("make build" if "build" in targets else "make", "build"))
        plan.checks += [Check(f"make {t}", "test") for t in ("test", "check") if t in targets][:1]
    return plan


def _is_python_test(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


async def _python(plan: CheckPlan, top: set[str], read: Reader) -> None:
    plan.ecosystems.append("python")
    requirements = [r for r in PY_REQUIREMENTS if r in top]
    packages: list[str] = []
    if "pyproject.toml" in top:
        try:
            project = tomllib.loads(await read("pyproject.toml") or "").get("project", {})
        except tomllib.TOMLDecodeError:
            project = {}
        packages += [d for d in project.get("dependencies", []) if isinstance(d, str)]
        extras = project.get("optional-dependencies", {})
        for name in PY_TEST_EXTRAS:
            packages += [d for d in extras.get(name, []) if isinstance(d, str)]
    install = " ".join([*(f"-r {r}" for r in requirements), *(shlex.quote(p) for p in dict.fromkeys(packages))])
    venv = '"$HOME/.venv/bin/python"'
    # The real interpreter, not a version manager's shim: a pyenv shim's `pip install` exits 1
    # when it cannot rehash its (read-only, in a sandbox) shims, although the install worked.
    # Isolated mode (-I) everywhere: a module in the checkout (a planted venv.py or pip/) is
    # never imported in place of the real one. The set-up reaches only the package indexes.
    steps = [
        "PY=\"$(python3 -I -c 'import sys; print(sys.executable)')\"",
        "\"$PY\" -I -m venv --system-site-packages --without-pip \"$HOME/.venv\"",
        *([f"\"$PY\" -I -m pip --python {venv} install --quiet --prefer-binary {install}"] if install else []),
        f"{{ {venv} -I -c 'import pytest' 2>/dev/null || \"$PY\" -I -m pip --python {venv} install --quiet pytest; }}",
        f'echo "export PATH=$HOME/.venv/bin:\\$PATH PYTHONPATH=$PWD/src:$PWD" >> "$HOME/{ENV_FILE}"',
    ]
    plan.setup.append(" && ".join(steps))
    plan.checks.append(Check("python -m pytest -q -p no:cacheprovider", "test"))


async def _node(plan: CheckPlan, top: set[str], read: Reader) -> None:
    plan.ecosystems.append("node")
    try:
        manifest = json.loads(await read("package.json") or "{}")
    except json.JSONDecodeError:
        manifest = {}
    scripts = manifest.get("scripts") or {}
    deps = {**(manifest.get("dependencies") or {}), **(manifest.get("devDependencies") or {})}
    if deps:
        verb = "ci" if "package-lock.json" in top else "install"
        plan.setup.append(f'export npm_config_cache="$HOME/.cache/npm" && npm {verb} --ignore-scripts --no-audit '
                          f'--no-fund --loglevel=error')
    plan.setup.append(f'echo "export PATH=$PWD/node_modules/.bin:\\$PATH" >> "$HOME/{ENV_FILE}"')
    if "build" in scripts:
        plan.checks.append(Check("npm run build", "build"))
    typecheck = next((s for s in ("typecheck", "type-check", "types") if s in scripts), None)
    if typecheck:
        plan.checks.append(Check(f"npm run {typecheck}", "types"))
    elif "tsconfig.json" in top and "typescript" in deps:
        plan.checks.append(Check("tsc --noEmit -p .", "types"))
    test = scripts.get("test")
    if isinstance(test, str) and NPM_PLACEHOLDER not in test:
        plan.checks.append(Check("npm test", "test"))


class CheckSource:
    """The check plan for a commit: the configured one, or detection that only ever grows.

    Detected checks are read from the tree being judged's *base* by the gate and from the
    swept commit by the reconciler; a check once detected keeps running even if a later
    commit removes its manifest entry, so a change cannot switch off the checks that judge it.
    """

    def __init__(self, hub: Hub, configured: list[str] | None) -> None:
        self.hub = hub
        self.configured = None if configured is None else configured_plan(configured)
        self._seen: list[Check] = []
        self._cache: dict[str, CheckPlan] = {}

    @property
    def explicit_none(self) -> bool:
        return self.configured is not None and not self.configured.checks

    @property
    def known(self) -> bool:
        """Whether any check is configured or was detected so far."""
        return bool(self.configured.checks if self.configured is not None else self._seen)

    async def plan_for(self, commit: str) -> CheckPlan:
        if self.configured is not None:
            return self.configured
        if commit not in self._cache:
            detected = await detect_plan(await self.hub.files(commit), lambda p: self.hub.show(commit, p))
            for check in detected.checks:
                if check not in self._seen:
                    self._seen.append(check)
            self._cache[commit] = CheckPlan(checks=list(self._seen), setup=detected.setup,
                                            ecosystems=detected.ecosystems)
        return self._cache[commit]


async def run_commands(
    provider: SandboxProvider, hub: Hub, commit: str, plan: CheckPlan, *, timeout: float, branch: str,
    label: str, commands: list[str] | None = None, emit: Emit | None = None, pin: Pinning | None = None,
) -> dict[str, CheckResult]:
    """Run the plan's commands (or ``commands``) on ``commit`` in one fresh sandbox.

    A failed dependency set-up is itself a failing check (``SETUP_CHECK``, kind build): a
    change can break it (a bad requirements file), and nothing else can run without it.
    A sandbox lost on the way (a remote node or container died) is replaced and the
    commands run again, as often as `RETRY_POLICY` allows; ``emit`` hears of each retry.
    """
    attempt = 1
    while True:
        try:
            return await _run_once(provider, hub, commit, plan, timeout=timeout, branch=branch, label=label,
                                   commands=commands, pin=pin)
        except SandboxError as e:
            policy = policy_for(e)
            if not policy.retry or attempt >= policy.max_attempts:
                raise
            if emit is not None:
                emit(RunWarning(code="sandbox.retry", message=f"checks ({label}): {e}; running them again in a new sandbox "
                                        f"(attempt {attempt + 1} of {policy.max_attempts})"))
            await asyncio.sleep(backoff_delay(policy, attempt))
            attempt += 1


KEPT_OUTPUT = 40_000
"""Characters of a check's output kept (head and tail) to read failures from: enough for the
summary lines of a few hundred failing tests, so a failure is never taken for new because it
was cut from one run's output and not the other's. Events show the last `SHOWN_OUTPUT`."""
SHOWN_OUTPUT = 6000


def check_result(command: str, kind: CheckKind, r: ExecResult) -> CheckResult:
    """One command's result as a check: both streams, capped to `KEPT_OUTPUT`."""
    text = cap_text((r.stdout + "\n" + r.stderr).strip(), KEPT_OUTPUT)
    return CheckResult(command=command, kind=kind, exit_code=r.exit_code, output_tail=text, timed_out=r.timed_out)


async def _run_once(
    provider: SandboxProvider, hub: Hub, commit: str, plan: CheckPlan, *, timeout: float, branch: str,
    label: str, commands: list[str] | None, pin: Pinning | None,
) -> dict[str, CheckResult]:
    results: dict[str, CheckResult] = {}
    spec = SandboxSpec(task_id=label, branch=branch, base_commit=commit, hub=hub.path, setup=plan.setup_script)
    try:
        async with provider.open(spec) as sandbox:
            for command in plan.commands if commands is None else commands:
                if pin is None:
                    r = await sandbox.exec(PRELUDE + command, timeout)
                    results[command] = check_result(command, plan.kind_of(command), r)
                    continue
                await sandbox.exec(pin.setup_command(), timeout)
                r = await sandbox.exec(PRELUDE + pin.env + command, timeout)
                results[command] = pin.read(check_result(command, plan.kind_of(command), r),
                                            (await sandbox.exec(pin.collect_command(), timeout)).stdout)
    except SetupFailed as e:
        return {SETUP_CHECK: CheckResult(command=SETUP_CHECK, kind="build", exit_code=1,
                                         output_tail=cap_text(f"{e.command}\n{e.output}", 6000))}
    return results
