"""The bubblewrap profile: what is exposed, and toolchains that live under /tmp."""

from __future__ import annotations

import os
from pathlib import Path

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bwrap import toolchain_paths
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote


def test_toolchain_paths_expose_roots_not_secrets(tmp_path: Path) -> None:
    home = os.path.realpath(os.path.expanduser("~"))
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    paths = toolchain_paths(f"{venv}:/usr/bin:{home}/.ssh:relative/bin", [])
    assert str(venv) in paths and str(tmp_path / "venv") not in paths  # the prefix's parts, not the prefix
    assert not any(p == home or p.startswith(f"{home}/.ssh") for p in paths)
    assert "/usr/bin" not in paths and "/usr" not in paths  # system dirs are bound anyway
    assert not any(p.startswith("relative") for p in paths)


async def test_toolchain_under_tmp_is_usable_despite_private_tmp(tmp_path: Path) -> None:
    # pytest's tmp_path lives under /tmp, which the sandbox replaces with its own.
    assert str(tmp_path).startswith("/tmp/")
    tool_dir = tmp_path / "toolchain" / "bin"
    tool_dir.mkdir(parents=True)
    tool = tool_dir / "hello-tool"
    tool.write_text("#!/bin/sh\necho hello from the toolchain\n")
    tool.chmod(0o755)  # a toolchain is readable by everyone: the sandbox runs as another user
    remote = make_remote(tmp_path, {"a.txt": "a\n"})
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    base = git("rev-parse", "main", cwd=hub)
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(ro_paths=[str(tool_dir.parent)]))
    async with provider.open(SandboxSpec(task_id="t", branch="worker/t", base_commit=base, hub=hub)) as sb:
        r = await sb.exec(f"{tool} && echo private > /tmp/mine && cat /tmp/mine", 30)
        assert r.exit_code == 0, r.stderr
        assert r.stdout.split() == ["hello", "from", "the", "toolchain", "private"]
        writes = await sb.exec(f"touch {tool_dir}/planted", 30)
        assert writes.exit_code != 0 and not (tool_dir / "planted").exists()
