"""Every sandbox provider set up the same way for tests: one repository, the same limits.

Kinds: ``local`` (bubblewrap here), ``ray`` (an actor on the session's local Ray cluster),
``modal-fake`` (the real Modal adapter driving `longshot.testing.fake_modal`), and
``modal`` (the real service, only with MODAL_TOKEN_ID set).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bundle import ResultRules
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.sandboxes.orphans import start_time
from longshot.testing.fake_modal import FakeModal
from longshot.testing.repos import git, make_remote

KINDS = ("local", "ray", "modal-fake", "modal")
RUN_ID = "run-20260101-000000-test"
BRANCH = "worker/t1-contract"
FILES = {"README.md": "# demo\n", "pkg/__init__.py": "", "pkg/core.py": "def f():\n    return 1\n"}
CANARY_KEY = "sk-canary-key-3f9a1c5e"
"""An API key in the orchestrator's environment (os.environ) during a test."""
CANARY_TOKEN = "ghp_canaryToken7d2e44"
"""A git credential in the hub's remote URL, as with GIT_REPO_URL=https://<token>@host/repo."""
RAY_CANARY = "sk-canary-ray-cluster-51be90"
"""In this process's environment (as LLM_API_KEY) while the session's Ray cluster starts."""
OUTPUT_LIMIT = 4000
MAX_FILE = 256 * 1024
MAX_FILES = 20


def local_options(**kw: Any) -> LocalOptions:
    limits = Limits(memory_mb=1024, cpu_cores=1, processes=256, disk_mb=512, files=20_000)
    return LocalOptions(**{"output_limit": OUTPUT_LIMIT, "max_file_bytes": MAX_FILE, "max_changed_files": MAX_FILES,
                           "limits": limits, "author": ("Longshot Test", "lt@localhost"), **kw})


def make_hub(tmp: Path, files: dict[str, str] | None = None) -> tuple[Path, str]:
    """A bare hub whose remote URL carries a token (as a real hub's may); returns (hub, main)."""
    remote = make_remote(tmp, files or FILES)
    hub = tmp / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp)
    git("remote", "set-url", "origin", f"https://x-access-token:{CANARY_TOKEN}@example.invalid/t.git", cwd=hub)
    return hub, git("rev-parse", "refs/heads/main", cwd=hub)


@dataclass
class Case:
    kind: str
    tmp: Path
    hub: Path
    base: str
    provider: Any
    fake: FakeModal | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self, task_id: str = "t1", setup: str | None = None, branch: str = BRANCH) -> SandboxSpec:
        return SandboxSpec(task_id=task_id, branch=branch, base_commit=self.base, hub=self.hub, setup=setup)

    @property
    def remote(self) -> bool:
        return self.kind != "local"

    async def identify(self, sb: Any) -> Any:
        """What `gone` needs to check later that this sandbox no longer exists."""
        if self.kind == "local":
            return sb.root
        if self.kind == "ray":
            return (await sb.probe())["pid"]
        return sb.sb

    async def gone(self, ident: Any) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.kind == "local":
                done = not ident.exists()
            elif self.kind == "ray":
                done = start_time(ident) is None  # the actor's worker process is dead
            elif self.kind == "modal-fake":
                done = ident.ended is not None
            else:
                done = await ident.poll.aio() is not None
            if done:
                return True
            await asyncio.sleep(0.1)
        return False


def build_case(kind: str, tmp: Path, **local_kw: Any) -> Case:
    tmp.mkdir(parents=True, exist_ok=True)
    hub, base = make_hub(tmp)
    options = local_options(**local_kw)
    if kind == "local":
        return Case(kind, tmp, hub, base, LocalSandboxProvider(tmp / "work", options))
    if kind == "ray":
        from longshot.sandboxes.ray import RayOptions, RaySandboxProvider

        return Case(kind, tmp, hub, base, RaySandboxProvider(
            tmp / "work", RayOptions(cpus=1, memory_mb=256, local=options), RUN_ID))
    from longshot.sandboxes.modal import ModalOptions, ModalSandboxProvider

    modal_options = ModalOptions(app_name="longshot-tests", cpus=1, memory_mb=1024, lifetime=600, idle_timeout=120,
                                 network=options.network, setup_command=options.setup_command,
                                 output_limit=OUTPUT_LIMIT, rules=ResultRules(MAX_FILE, MAX_FILES, options.author))
    if kind == "modal-fake":
        fake = FakeModal(tmp / "modal")
        return Case(kind, tmp, hub, base, ModalSandboxProvider(tmp / "work", modal_options, RUN_ID, sdk=fake), fake)
    return Case(kind, tmp, hub, base, ModalSandboxProvider(tmp / "work", modal_options, RUN_ID))


def modal_credentials() -> bool:
    return bool(os.environ.get("MODAL_TOKEN_ID"))
