"""The bubblewrap profile: what is exposed, and toolchains that live under /tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bwrap import INSIDE_UID, SANDBOX_UID, bwrap_argv, toolchain_paths
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


@pytest.mark.parametrize("as_root", [True, False], ids=["orchestrator-root", "orchestrator-user"])
def test_both_identities_write_only_their_own_places_and_read_no_root_only_file(
        request: pytest.FixtureRequest, as_root: bool) -> None:
    """The profile for a root orchestrator (drop to nobody) and for a user's (a user namespace).

    The user's case runs bwrap as uid 65534 when this test runs as root."""
    if not as_root and os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to run the profile as another user")
    if as_root and os.geteuid() != 0:
        pytest.skip("the root profile needs root")
    base = Path(tempfile.mkdtemp(prefix="longshot-profile-"))  # pytest's folders are closed to other users
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    places = {name: base / name for name in ("co", "home", "tmp", "shm", "run")}
    for p in places.values():
        p.mkdir()
    secret = places["run"] / "root-only"  # visible inside (read-only /run/longshot), readable by root only
    secret.write_text("root-only-canary")
    secret.chmod(0o600)
    prefix: list[str] = []
    if os.geteuid() == 0:
        for p in places.values():
            os.chown(p, SANDBOX_UID, SANDBOX_UID)
        if not as_root:
            prefix = ["setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups"]
    argv = bwrap_argv(checkout=places["co"], home=places["home"], tmp=places["tmp"], network=False, ro_paths=[],
                      run_dir=places["run"], shm=places["shm"], root=as_root)
    script = ("for p in /workspace /home/sandbox /tmp /dev/shm / /run /run/longshot /dev /etc; do "
              "touch $p/x 2>/dev/null && echo WROTE:$p; done; cat /run/longshot/root-only 2>/dev/null; "
              "cat /etc/shadow >/dev/null 2>&1 && echo SHADOW; echo ok > /dev/null && echo DEVNULL; "
              "unshare -U true 2>/dev/null && echo USERNS; id -u")
    done = subprocess.run([*prefix, *argv, "bash", "-c", script], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/home/sandbox"}, timeout=60)
    lines = done.stdout.split()
    assert [w for w in lines if w.startswith("WROTE:")] == [f"WROTE:{p}" for p in
                                                            ("/workspace", "/home/sandbox", "/tmp", "/dev/shm")]
    assert "root-only-canary" not in done.stdout and "SHADOW" not in lines and "USERNS" not in lines
    assert "DEVNULL" in lines and lines[-1] == str(INSIDE_UID), done.stdout + done.stderr
