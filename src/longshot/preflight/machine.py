"""Preflight of this machine and the target: sandbox (bubblewrap, cgroups, SDKs), disk, git,
and the target repository (reachable, branch present; SPEC.md and FEATURES.json when local)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
from pathlib import Path

from longshot.git import SAFE_CONFIG, Git
from longshot.preflight.check import Finding, PreflightOptions
from longshot.target import inspect_target

GIT_TIMEOUT = 10.0
MIN_GIT = (2, 38)
"""``git merge-tree --write-tree`` (conflict prediction) needs 2.38."""
DISK_WARN_MB = 2048
DISK_FAIL_MB = 200


async def _exec(argv: list[str], timeout: float, cwd: Path | None = None) -> tuple[int, str]:
    """(exit code, stderr+stdout) of ``argv``; killed after ``timeout`` seconds (code -1)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=8"}
    try:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as e:
        return 127, str(e)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"no answer within {timeout:g} s"
    return proc.returncode or 0, (err + out).decode("utf-8", "replace").strip()


async def check_sandbox(options: PreflightOptions) -> list[Finding]:
    provider = options.sandbox_provider
    if provider != "local":
        module = "ray" if provider == "ray" else "modal"
        if importlib.util.find_spec(module) is None:
            return [Finding("sandbox", "fail", f"SANDBOX_PROVIDER={provider} needs the {module} package, "
                                             "which is not installed", "SANDBOX_PROVIDER",
                          f"pip install 'longshot[{module}]' (or: scripts/setup.sh --{module})")]
        found = [Finding("sandbox", "ok", f"{provider}: the {module} package is installed")]
        if provider == "modal":
            return found
    else:
        found = []
    if options.sandbox_isolation == "none":
        found.append(Finding("sandbox", "warn", "SANDBOX_ISOLATION=none: model-written commands run without isolation",
                           "SANDBOX_ISOLATION", "install bubblewrap and unset SANDBOX_ISOLATION"))
    elif provider == "local":
        found.append(await _bubblewrap())
    if provider == "local":
        found.append(_cgroup(options.cgroup_version))
    return found


async def _bubblewrap() -> Finding:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Finding("sandbox", "fail", "bubblewrap (bwrap) is not installed", "SANDBOX_ISOLATION",
                     "apt-get install bubblewrap, or SANDBOX_ISOLATION=none to run unisolated at your own risk")
    code, out = await _exec([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all",
                             "--die-with-parent", "true"], 10)
    if code != 0:
        return Finding("sandbox", "fail", f"bubblewrap cannot make a sandbox here: {out[-200:]}", "SANDBOX_ISOLATION",
                     "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
                     "or SANDBOX_ISOLATION=none at your own risk")
    return Finding("sandbox", "ok", "bubblewrap makes sandboxes (no network, read-only system)")


def _cgroup(version: int | None) -> Finding:
    if version is None:
        return Finding("sandbox", "warn", "no cgroup can be made: memory, CPU and process limits per sandbox fall back "
                                        "to rlimits", "", "run where a cgroup v2 subtree is delegated to your user")
    return Finding("sandbox", "ok", f"cgroup v{version}: memory, CPU and process limits are enforced")


def check_disk(options: PreflightOptions) -> Finding:
    where = options.disk_path
    probe = next((p for p in [where, *where.parents] if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free // 2**20
    if free < DISK_FAIL_MB:
        return Finding("disk", "fail", f"only {free} MiB free at {probe}", "LONGSHOT_WORK_DIR",
                     "free some space or point LONGSHOT_WORK_DIR elsewhere")
    if free < DISK_WARN_MB:
        return Finding("disk", "warn", f"{free} MiB free at {probe}: many checkouts may not fit", "LONGSHOT_WORK_DIR",
                     "free some space or lower MAX_WORKERS")
    return Finding("disk", "ok", f"{free:,} MiB free at {probe}")


async def check_git(options: PreflightOptions, *, content: bool) -> list[Finding]:
    code, out = await _exec(["git", "--version"], GIT_TIMEOUT)
    version = tuple(int(x) for x in re.findall(r"\d+", out)[:2]) if code == 0 else ()
    if code != 0:
        return [Finding("git", "fail", "git is not installed", "", "install git (apt-get install git)")]
    found = [Finding("git", "ok" if version >= MIN_GIT else "warn",
                   out.splitlines()[0] + ("" if version >= MIN_GIT else f" (older than {'.'.join(map(str, MIN_GIT))}: "
                                          "conflicts are predicted later)"))]
    return found + await _target(options, content=content)


async def _target(options: PreflightOptions, *, content: bool) -> list[Finding]:
    url, branch = options.repo_url, options.branch
    code, out = await _exec(["git", *SAFE_CONFIG, "ls-remote", "--heads", url, f"refs/heads/{branch}"], GIT_TIMEOUT)
    if code != 0:
        return [Finding("target", "fail", f"cannot read the repository {url}: {out[-300:]}", "GIT_REPO_URL",
                      "give a git URL you can clone from here, or the path of a local repository")]
    if f"refs/heads/{branch}" not in out:
        return [Finding("target", "fail", f"{url} has no branch {branch!r}", "GIT_MAIN_BRANCH",
                      "set GIT_MAIN_BRANCH to an existing branch, or create it")]
    found = [Finding("target", "ok", f"{url}: branch {branch} found")]
    if content and Path(url).is_dir():
        findings = await inspect_target(Git(Path(url)), f"refs/heads/{branch}", url)
        found += [Finding("target", "warn", w.partition(". Fix: ")[0], fix=w.partition(". Fix: ")[2])
                  for w in findings.warnings]
        found += [Finding("target", "fail", p, "FEATURES.json") for p in findings.problems]
        if not findings.warnings and not findings.problems:
            found.append(Finding("target", "ok", "SPEC.md present; FEATURES.json absent or valid"))
    elif content:
        found.append(Finding("target", "ok", "SPEC.md and FEATURES.json are checked once the run has fetched them"))
    return found
