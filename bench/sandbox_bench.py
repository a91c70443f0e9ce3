"""Benchmark of the local sandbox provider (issue 3): ready time, exec overhead, 100 at once.

Run: ``.venv/bin/python bench/sandbox_bench.py [--quick]``. Prints ONE JSON object on
stdout; progress goes to stderr. Everything happens in a temporary directory that is
removed at the end.

What is measured, on a generated repository of 1,000 files (hub = a bare clone of it,
base commit = ``main``):

1. ``ready_ms``: ``provider.open(spec)`` entered plus the first ``exec("true", 30)``
   completed, sandboxes opened one after another, isolation "bubblewrap" and "none"
   interleaved (rotating order); for diagnosis also bubblewrap with the work dir on
   tmpfs (/dev/shm), when the host has one.
2. ``exec_overhead_ms``: ``true`` run (a) as a bare ``bash -c true`` subprocess, (b) by
   ``exec`` in a bubblewrap sandbox, (c) by ``exec`` in an isolation-"none" sandbox, and,
   to split the overhead, the very process (b) and (c) start, spawned directly;
   interleaved in rotating order so drift hits all of them alike.
3. ``concurrent_open``: 100 sandboxes opened at once, one command in each, all closed.
4. ``breakdown_ms``: the steps of opening a sandbox and running its first command, timed
   one by one with the same git / bwrap command lines `longshot.sandboxes.local` uses,
   and the file-system cost of a checkout on the work dir's disk against tmpfs.

Percentiles use linear interpolation between closest ranks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from longshot.git import SAFE_CONFIG
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bwrap import SANDBOX_HOME, WORKSPACE, bwrap_argv, toolchain_paths
from longshot.sandboxes.limits import Cgroup, Limits, launcher, usage
from longshot.sandboxes.local import ENV_ALLOW, EXCLUDES, LocalOptions, LocalSandboxProvider
from longshot.testing.repos import git, make_remote
from common import SMOKE_HELP, machine, percentile, stats

N_FILES = 1000
BRANCH = "longshot/bench"
TASK_PREFIX = "bench"


def log(msg: str) -> None:
    print(f"[sandbox_bench] {msg}", file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def my_cgroups() -> list[Path]:
    """Cgroup directories this run created (every name holds ``bench`` and this pid) still present."""
    found: list[Path] = []
    for controller in ("pids", "memory", "cpu"):
        root = Path("/sys/fs/cgroup", controller)
        if root.is_dir():
            found += root.rglob(f"longshot-{TASK_PREFIX}-*-{os.getpid()}-*")
    return sorted(found)


def rmdir_retry(dirs: list[Path], tries: int = 100) -> list[Path]:
    """rmdir each directory, retrying while the kernel still counts exiting tasks; return those left."""
    left = [d for d in dirs if d.exists()]
    for _ in range(tries):
        for d in list(left):
            with contextlib.suppress(OSError):
                d.rmdir()
            if not d.exists():
                left.remove(d)
        if not left:
            break
        time.sleep(0.01)
    return left


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def maxrss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux


# -- fixtures ------------------------------------------------------------------------


def make_hub(tmp: Path, n_files: int = N_FILES, name: str = "hub.git") -> tuple[Path, str]:
    """A bare remote of ``n_files`` modules and the hub (a bare clone of it); return (hub, main's commit)."""
    files = {f"src/pkg{i // 50}/mod{i}.py": f'"""Module {i}."""\n\nVALUE = {i}\n\n\ndef f{i}(x: int) -> int:\n'
             f"    return x + VALUE\n" for i in range(n_files)}
    remote = make_remote(tmp, files, name=f"target-{name}")
    hub = tmp / name
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp)
    base = git("rev-parse", "refs/heads/main", cwd=hub)
    count = len(git("ls-tree", "-r", "--name-only", base, cwd=hub).splitlines())
    assert count == n_files, count
    return hub, base


def spec(task_id: str, hub: Path, base: str) -> SandboxSpec:
    return SandboxSpec(task_id=task_id, branch=BRANCH, base_commit=base, hub=hub)


# -- 1. ready --------------------------------------------------------------------------


async def one_ready(provider: LocalSandboxProvider, s: SandboxSpec) -> tuple[float, float]:
    t0 = time.perf_counter()
    async with provider.open(s) as sb:
        r = await sb.exec("true", 30)
        t1 = time.perf_counter()
        if r.exit_code != 0:
            raise RuntimeError(f"exec true failed: {r}")
    t2 = time.perf_counter()
    return ms(t1 - t0), ms(t2 - t1)


async def bench_ready(providers: dict[str, LocalSandboxProvider], hub: Path, base: str, n: int) -> dict[str, Any]:
    ready: dict[str, list[float]] = {k: [] for k in providers}
    close: dict[str, list[float]] = {k: [] for k in providers}
    for name, p in providers.items():  # one warm-up each (page cache, imports), not counted
        await one_ready(p, spec(f"{TASK_PREFIX}-warm-{name}", hub, base))
    names = list(providers)
    for i in range(n):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:  # rotating order
            r, c = await one_ready(providers[name], spec(f"{TASK_PREFIX}-ready-{name}", hub, base))
            ready[name].append(r)
            close[name].append(c)
        if (i + 1) % 10 == 0:
            log(f"ready: {i + 1}/{n}")
    return {"n": n, "warmup": 1, "interleaved": True,
            **{name: stats(v) for name, v in ready.items()},
            "close": {name: stats(v) for name, v in close.items()}}


# -- 2. exec overhead ------------------------------------------------------------------


async def bare_true(cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec("bash", "-c", "true", cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await proc.communicate()
    t1 = time.perf_counter()
    if proc.returncode != 0:
        raise RuntimeError("bare bash -c true failed")
    return ms(t1 - t0)


async def sandbox_true(sb: Any) -> float:
    t0 = time.perf_counter()
    r = await sb.exec("true", 30)
    t1 = time.perf_counter()
    if r.exit_code != 0:
        raise RuntimeError(f"exec true failed: {r}")
    return ms(t1 - t0)


def raw_runner(sb: Any, provider: LocalSandboxProvider) -> Any:
    """The process ``sb.exec("true")`` starts (same argv, env, cwd, hook, cgroup), spawned directly.

    The difference between ``sb.exec`` and this is the Python machinery of `LocalSandbox._run`
    (disk watch, exit polling, limit counters, kill of the group and cgroup, output capping).
    """
    isolated = provider.options.isolation != "none"
    argv = ["bash", "-c", "true"]
    if isolated:
        argv = [*bwrap_argv(checkout=sb.checkout, home=sb.home, tmp=sb.tmp, network=False,
                            ro_paths=provider.ro_paths), *argv]
    argv = [*launcher(provider.options.limits, sb.cgroup.procs_files if sb.cgroup else [],
                      memory_rlimit=sb.cgroup is None), *argv]
    env = sandbox_env(isolated, sb.root)
    return lambda: timed_proc(argv, cwd=sb.checkout, env=env, start_new_session=True)


async def bench_exec(providers: dict[str, LocalSandboxProvider], hub: Path, base: str, n: int,
                     cwd: Path) -> dict[str, Any]:
    small_hub, small_base = make_hub(cwd, 1, "hub-1-file.git")  # the disk watch has one file to scan
    async with contextlib.AsyncExitStack() as stack:
        bw = await stack.enter_async_context(providers["bubblewrap"].open(spec(f"{TASK_PREFIX}-exec-bw", hub, base)))
        nn = await stack.enter_async_context(providers["none"].open(spec(f"{TASK_PREFIX}-exec-none", hub, base)))
        bw1 = await stack.enter_async_context(
            providers["bubblewrap"].open(spec(f"{TASK_PREFIX}-exec-bw1", small_hub, small_base)))
        runners = {"bare_subprocess": lambda: bare_true(cwd), "bubblewrap": lambda: sandbox_true(bw),
                   "none": lambda: sandbox_true(nn),
                   "bubblewrap_process_only": raw_runner(bw, providers["bubblewrap"]),
                   "none_process_only": raw_runner(nn, providers["none"]),
                   "bubblewrap_1_file_repo": lambda: sandbox_true(bw1)}
        samples: dict[str, list[float]] = {k: [] for k in runners}
        names = list(runners)
        for name in names:  # warm-up, not counted
            await runners[name]()
        for i in range(n):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:  # rotating order: ABCDE, BCDEA, ...
                samples[name].append(await runners[name]())
            if (i + 1) % 50 == 0:
                log(f"exec: {i + 1}/{n}")
    a, b, c = samples["bare_subprocess"], samples["bubblewrap"], samples["none"]
    med = {k: percentile(v, 50) for k, v in samples.items()}
    return {
        "n": n, "interleaved": "rotating order per round (ABCDEF, BCDEFA, ...)",
        "note": ("bare_subprocess: asyncio bash -c true + communicate; bubblewrap / none: sb.exec('true', 30); "
                 "*_process_only: the same process sb.exec starts (argv, env, launcher (cgroup join and rlimits), cgroup), spawned "
                 "directly with create_subprocess_exec + communicate; bubblewrap_1_file_repo: sb.exec in a "
                 "sandbox whose checkout holds 1 file instead of 1,000 (the disk watch scans the checkout)"),
        **{k: stats(v) for k, v in samples.items()},
        "overhead_median_ms": round(med["bubblewrap"] - med["bare_subprocess"], 2),
        "overhead_none_median_ms": round(med["none"] - med["bare_subprocess"], 2),
        "overhead_paired_median_ms": round(percentile([y - x for x, y in zip(a, b)], 50), 2),
        "overhead_none_paired_median_ms": round(percentile([y - x for x, y in zip(a, c)], 50), 2),
        "split_median_ms": {
            "bubblewrap_process_start": round(med["bubblewrap_process_only"] - med["bare_subprocess"], 2),
            "bubblewrap_exec_machinery": round(med["bubblewrap"] - med["bubblewrap_process_only"], 2),
            "none_process_start": round(med["none_process_only"] - med["bare_subprocess"], 2),
            "none_exec_machinery": round(med["none"] - med["none_process_only"], 2),
            "bubblewrap_disk_watch_of_1000_files": round(med["bubblewrap"] - med["bubblewrap_1_file_repo"], 2),
        },
    }


# -- 3. concurrent open ----------------------------------------------------------------


async def bench_concurrent(provider: LocalSandboxProvider, hub: Path, base: str, count: int) -> dict[str, Any]:
    rss_before = rss_now_mb()
    maxrss_before = maxrss_mb()
    tasks_dir = provider.work_dir / "tasks"
    t0 = time.perf_counter()
    open_errors: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        entered = await asyncio.gather(
            *(stack.enter_async_context(provider.open(spec(f"{TASK_PREFIX}-conc{i}", hub, base))) for i in range(count)),
            return_exceptions=True)
        sandboxes = [x for x in entered if not isinstance(x, BaseException)]
        open_errors = [repr(x) for x in entered if isinstance(x, BaseException)]
        t1 = time.perf_counter()
        open_dirs = len(list(tasks_dir.iterdir())) if tasks_dir.exists() else 0
        rss_open = rss_now_mb()
        log(f"concurrent: {len(sandboxes)}/{count} open in {t1 - t0:.2f}s")
        results = await asyncio.gather(*(sb.exec("echo $((1+1))", 60) for sb in sandboxes), return_exceptions=True)
        t2 = time.perf_counter()
        ok = sum(1 for r in results if not isinstance(r, BaseException) and r.exit_code == 0 and r.stdout.strip() == "2")
        exec_errors = [repr(r)[:300] for r in results
                       if isinstance(r, BaseException) or r.exit_code != 0 or r.stdout.strip() != "2"]
        log(f"concurrent: {ok}/{len(sandboxes)} commands printed 2 in {t2 - t1:.2f}s")
    t3 = time.perf_counter()
    left = sorted(p.name for p in tasks_dir.iterdir()) if tasks_dir.exists() else []
    cgroups_left = [str(p) for p in my_cgroups() if p.name.startswith(f"longshot-{TASK_PREFIX}-conc")]
    return {
        "count": count, "opened": len(sandboxes), "open_errors": open_errors[:5],
        "task_dirs_while_open": open_dirs, "success": ok, "exec_errors": exec_errors[:5],
        "all_outputs_2": ok == count,
        "open_s": round(t1 - t0, 3), "exec_s": round(t2 - t1, 3), "close_s": round(t3 - t2, 3),
        "total_s": round(t3 - t0, 3),
        "rss_before_mb": rss_before, "rss_all_open_mb": rss_open,
        "peak_rss_mb": maxrss_mb(), "peak_rss_before_phase_mb": maxrss_before,
        "peak_rss_children_mb": maxrss_mb(resource.RUSAGE_CHILDREN),
        "tasks_dir_empty_after": not left, "tasks_left": left[:5], "cgroups_left": cgroups_left[:5],
    }


# -- 4. breakdown ----------------------------------------------------------------------


def git_env() -> dict[str, str]:
    """What `longshot.git.Git` passes to git."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C",
               GIT_AUTHOR_NAME="Longshot", GIT_AUTHOR_EMAIL="longshot@localhost",
               GIT_COMMITTER_NAME="Longshot", GIT_COMMITTER_EMAIL="longshot@localhost")
    return env


def sandbox_env(isolated: bool, root: Path) -> dict[str, str]:
    """What `LocalSandbox._env` passes to a command."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=SANDBOX_HOME if isolated else str(root / "home"),
               TMPDIR="/tmp" if isolated else str(root / "tmp"),
               PWD=WORKSPACE if isolated else str(root / "checkout"), TERM="dumb", PYTHONDONTWRITEBYTECODE="1",
               GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


async def timed_proc(argv: list[str], **kw: Any) -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, **kw)
    out, err = await proc.communicate()
    t1 = time.perf_counter()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]}... failed ({proc.returncode}): {err.decode()[-500:]}")
    return ms(t1 - t0)


async def git_clone_shared(hub: Path, dest: Path) -> float:
    """``git clone --shared --bare`` as `LocalSandbox.create` runs it; time in ms."""
    return await timed_proc(["git", *SAFE_CONFIG, "clone", "--quiet", "--shared", "--bare", str(hub), str(dest)],
                            cwd=hub, env=git_env())


async def git_checkout(git_dir: Path, work_tree: Path, base: str) -> float:
    """The checkout of the base commit on the task branch as `LocalSandbox.create` runs it; time in ms."""
    return await timed_proc(["git", *SAFE_CONFIG, f"--git-dir={git_dir}", f"--work-tree={work_tree}", "checkout",
                             "--quiet", "--force", "-B", BRANCH, base], cwd=git_dir.parent, env=git_env())


async def one_ready_path(root: Path, hub: Path, base: str, ro_paths: list[str], limits: Limits,
                         i: int, rmdir_errors: list[str]) -> dict[str, float]:
    """Open a sandbox step by step as `LocalSandboxProvider.open` does, timing each step."""
    out: dict[str, float] = {}
    t = time.perf_counter()
    cgroup = Cgroup.create(f"longshot-{TASK_PREFIX}-bd-{os.getpid()}-{i}", limits)
    out["cgroup_create"] = ms(time.perf_counter() - t)
    if cgroup is None:
        raise RuntimeError("no cgroup could be created on this host")
    try:
        t = time.perf_counter()
        checkout, home, tmp = root / "checkout", root / "home", root / "tmp"
        for d in (checkout, home, tmp):
            d.mkdir(parents=True, exist_ok=True)
        out["mkdirs"] = ms(time.perf_counter() - t)
        out["git_clone_shared"] = await git_clone_shared(hub, root / "git")
        t = time.perf_counter()
        (root / "git" / "info").mkdir(exist_ok=True)
        (root / "git" / "info" / "exclude").write_text(EXCLUDES + "\n")
        out["write_exclude"] = ms(time.perf_counter() - t)
        out["git_checkout"] = await git_checkout(root / "git", checkout, base)
        argv = [*launcher(limits, cgroup.procs_files, memory_rlimit=False),
                *bwrap_argv(checkout=checkout, home=home, tmp=tmp, network=False, ro_paths=ro_paths),
                "bash", "-c", "true"]
        out["first_command_bwrap"] = await timed_proc(argv, cwd=checkout, start_new_session=True,
                                                      env=sandbox_env(True, root))
    finally:
        t = time.perf_counter()
        cgroup.remove()
        out["cgroup_remove"] = ms(time.perf_counter() - t)
        survived = [d for d in cgroup.dirs.values() if d.exists()]
        out["cgroup_dirs_left_by_remove"] = float(len(survived))  # Cgroup.remove ignores a failed rmdir
        for d in survived:
            try:
                d.rmdir()
            except OSError as e:
                rmdir_errors.append(f"{d.parent.name or d.parent}/{d.name}: {os.strerror(e.errno or 0)}")
        rmdir_retry(survived)
        t = time.perf_counter()
        shutil.rmtree(root, ignore_errors=True)
        out["rmtree"] = ms(time.perf_counter() - t)
    return out


def attach_times(cgroup: Cgroup) -> dict[str, float]:
    """Time moving a running process into each controller's cgroup (what the launcher (cgroup join and rlimits) writes)."""
    proc = subprocess.Popen(["sleep", "30"])
    out: dict[str, float] = {}
    try:
        for controller, d in cgroup.dirs.items():
            t = time.perf_counter()
            (d / "cgroup.procs").write_text(str(proc.pid))
            out[f"cgroup_attach_{controller}"] = ms(time.perf_counter() - t)
    finally:
        proc.kill()
        proc.wait()
    return out


async def bench_commands(root: Path, hub: Path, base: str, ro_paths: list[str], limits: Limits,
                         n: int) -> dict[str, Any]:
    """Where the per-command time goes: the same `true`, started in each of the ways below, interleaved."""
    cgroup = Cgroup.create(f"longshot-{TASK_PREFIX}-cmd-{os.getpid()}-0", limits)
    if cgroup is None:
        raise RuntimeError("no cgroup could be created on this host")
    samples: dict[str, list[float]] = {}
    try:
        checkout, home, tmp = root / "checkout", root / "home", root / "tmp"
        for d in (checkout, home, tmp):
            d.mkdir(parents=True, exist_ok=True)
        await git_clone_shared(hub, root / "git")
        await git_checkout(root / "git", checkout, base)
        with_cgroup = launcher(limits, cgroup.procs_files, memory_rlimit=False)
        rlimits_only = launcher(limits, [], memory_rlimit=False)
        bw = [*bwrap_argv(checkout=checkout, home=home, tmp=tmp, network=False, ro_paths=ro_paths),
              "bash", "-c", "true"]
        bash = ["bash", "-c", "true"]
        plain_env, bw_env = sandbox_env(False, root), sandbox_env(True, root)
        dirs = [checkout, home, tmp]
        variants: dict[str, tuple[list[str], dict[str, Any], bool]] = {
            "bash_bare": (bash, {}, False),
            "bash_launcher_rlimits_only": ([*rlimits_only, *bash], {"start_new_session": True,
                                                                     "env": plain_env}, False),
            "bash_launcher_cgroup": ([*with_cgroup, *bash], {"start_new_session": True, "env": plain_env}, False),
            "bwrap_no_launcher": (bw, {"start_new_session": True, "env": bw_env}, False),
            "bwrap_launcher_cgroup": ([*with_cgroup, *bw], {"start_new_session": True, "env": bw_env}, False),
            "bwrap_launcher_cgroup_with_disk_scan": ([*with_cgroup, *bw], {"start_new_session": True,
                                                                           "env": bw_env}, True),
        }
        names = list(variants)
        for i in range(-1, n):  # round -1 is a warm-up
            shift = i % len(names)
            for key in names[shift:] + names[:shift]:
                argv, kw, scan = variants[key]
                # local.py starts the disk watch (a scan in a worker thread) as the command starts
                scanning = asyncio.ensure_future(asyncio.to_thread(usage, dirs, 1 << 40, 1 << 30)) if scan else None
                took = await timed_proc(argv, cwd=checkout, **kw)
                if scanning is not None:
                    await scanning  # untimed: keeps samples independent
                if i >= 0:
                    samples.setdefault(f"cmd_{key}", []).append(took)
            if i >= 0:
                for k, v in attach_times(cgroup).items():
                    samples.setdefault(k, []).append(v)
                t = time.perf_counter()
                cgroup.counters()
                cgroup.kill()
                samples.setdefault("cgroup_counters_and_kill", []).append(ms(time.perf_counter() - t))
                t = time.perf_counter()
                usage(dirs, limits.disk_mb * 1024 * 1024, limits.files)
                samples.setdefault("disk_watch_scan", []).append(ms(time.perf_counter() - t))
            if i >= 0 and (i + 1) % 50 == 0:
                log(f"command breakdown: {i + 1}/{n}")
    finally:
        cgroup.remove()
        rmdir_retry(list(cgroup.dirs.values()))
        shutil.rmtree(root, ignore_errors=True)
    med = {k: percentile(v, 50) for k, v in samples.items()}
    return {
        "n": n, "interleaved": "rotating order per round",
        "note": ("`true` via bash: bare (as in exec_overhead_ms a); with the launcher (cgroup join and rlimits), which forces fork "
                 "instead of vfork, sets rlimits and (cgroup) joins the sandbox cgroup; under bwrap without and "
                 "with the hook, and with the disk-watch scan running in a thread as local.py does. "
                 "cgroup_attach_*: writing a running process's pid into that controller's cgroup.procs"),
        **{k: stats(v) for k, v in samples.items()},
        "derived_median": {
            "bwrap_start": round(med["cmd_bwrap_no_launcher"] - med["cmd_bash_bare"], 2),
            "launcher_and_rlimits": round(med["cmd_bash_launcher_rlimits_only"] - med["cmd_bash_bare"], 2),
            "cgroup_join": round(med["cmd_bash_launcher_cgroup"] - med["cmd_bash_launcher_rlimits_only"], 2),
            "disk_scan_contention": round(
                med["cmd_bwrap_launcher_cgroup_with_disk_scan"] - med["cmd_bwrap_launcher_cgroup"], 2),
        },
    }


def create_files(root: Path, n: int) -> float:
    """Time creating ``n`` small files in 20 directories (what a checkout writes), in ms."""
    t = time.perf_counter()
    for i in range(n):
        d = root / f"pkg{i // 50}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i}.py").write_text("VALUE = 1\n")
    return ms(time.perf_counter() - t)


async def one_fs_probe(work_fs: Path, tmpfs: Path | None, hub: Path, base: str, i: int) -> dict[str, float]:
    """File creation and the clone + checkout on the work dir's file system and on tmpfs."""
    out: dict[str, float] = {}
    places = {"work_fs": work_fs} | ({"tmpfs": tmpfs} if tmpfs else {})
    for label, place in places.items():
        d = place / f"fs{i}"
        out[f"create_{N_FILES}_files_{label}"] = create_files(d / "files", N_FILES)
        out[f"git_clone_shared_{label}"] = await git_clone_shared(hub, d / "git")
        (d / "checkout").mkdir()
        out[f"git_checkout_{label}"] = await git_checkout(d / "git", d / "checkout", base)
        shutil.rmtree(d)
    return out


def tmpfs_dir() -> Path | None:
    """A scratch directory on tmpfs (/dev/shm), or None when there is none."""
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == "/dev/shm" and parts[2] == "tmpfs" and os.access("/dev/shm", os.W_OK):
            return Path(tempfile.mkdtemp(prefix="longshot-sandbox-bench-", dir="/dev/shm"))
    return None


async def bench_breakdown(tmp: Path, hub: Path, base: str, n: int, n_cmd: int) -> dict[str, Any]:
    ro_paths = toolchain_paths(os.environ.get("PATH", ""), [])
    limits = LocalOptions().limits
    samples: dict[str, list[float]] = {}
    rmdir_errors: list[str] = []
    await one_ready_path(tmp / "bd-warm", hub, base, ro_paths, limits, -1, [])
    for i in range(n):
        for k, v in (await one_ready_path(tmp / f"bd{i}", hub, base, ro_paths, limits, i, rmdir_errors)).items():
            samples.setdefault(k, []).append(v)
    left_by_remove = int(sum(samples.pop("cgroup_dirs_left_by_remove", [])))
    log(f"ready path done; command breakdown, N={n_cmd}")
    commands = await bench_commands(tmp / "cmd", hub, base, ro_paths, limits, n_cmd)
    log(f"file-system probe, N={n}")
    fs: dict[str, list[float]] = {}
    shm = tmpfs_dir()
    try:
        for i in range(n):
            for k, v in (await one_fs_probe(tmp, shm, hub, base, i)).items():
                fs.setdefault(k, []).append(v)
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)
    med = {k: percentile(v, 50) for k, v in samples.items()}
    ready_steps = ["cgroup_create", "mkdirs", "git_clone_shared", "write_exclude", "git_checkout",
                   "first_command_bwrap"]
    return {
        "ready_path": {
            "n": n, "warmup": 1,
            "note": "each step of open() + first exec timed alone, with the command lines local.py uses",
            **{k: stats(v) for k, v in samples.items()},
            "sum_of_ready_step_medians": round(sum(med[k] for k in ready_steps), 2),
            "cgroup_dirs_left_by_remove_total": left_by_remove,
            "cgroup_rmdir_errors_right_after_remove": rmdir_errors[:6],
        },
        "command": commands,
        "file_system": {"tmpfs": str(shm) if shm else None,
                        "note": "the same file creation, clone --shared and checkout on the work dir's file system "
                                "and on tmpfs (/dev/shm), alternating",
                        **{k: stats(v) for k, v in fs.items()}},
    }


# -- main ------------------------------------------------------------------------------


async def run(quick: bool | str, tmp: Path) -> dict[str, Any]:
    """``quick``: False, True or "smoke" (the smallest run through every part)."""
    n_ready, n_exec, n_bd, n_conc = ((2, 5, 2, 4) if quick == "smoke" else (10, 50, 10, 100) if quick
                                     else (30, 200, 30, 100))
    n_cmd = n_exec
    log(f"making a repository of {N_FILES} files and its hub in {tmp}")
    t = time.perf_counter()
    hub, base = make_hub(tmp)
    log(f"hub ready in {time.perf_counter() - t:.1f}s (base {base[:12]})")
    work = tmp / "work"
    providers = {"bubblewrap": LocalSandboxProvider(work, LocalOptions()),
                 "none": LocalSandboxProvider(work, LocalOptions(isolation="none"))}
    shm = tmpfs_dir()  # a third, diagnostic provider: bubblewrap with its work dir on tmpfs
    ready_providers = dict(providers) | ({"bubblewrap_tmpfs_work_dir": LocalSandboxProvider(shm / "work")}
                                         if shm else {})
    result: dict[str, Any] = {
        "benchmark": "sandbox", "quick": quick, "machine": machine(),
        "repo": {"files": N_FILES, "base": base},
        "profile": {k: p.describe().model_dump() for k, p in providers.items()},
    }
    log(f"1. ready time, N={n_ready} per isolation")
    try:
        result["ready_ms"] = await bench_ready(ready_providers, hub, base, n_ready)
    finally:
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)
    log(f"2. exec overhead, N={n_exec} each")
    result["exec_overhead_ms"] = await bench_exec(providers, hub, base, n_exec, tmp)
    log(f"3. breakdown: the ready path step by step, N={n_bd}")
    result["breakdown_ms"] = await bench_breakdown(tmp, hub, base, n_bd, n_cmd)
    log(f"4. {n_conc} sandboxes at once (bubblewrap)")
    result["concurrent_open"] = await bench_concurrent(providers["bubblewrap"], hub, base, n_conc)
    leaked = my_cgroups()
    result["cgroups_left_by_sandboxes"] = {"count": len(leaked), "examples": [str(p) for p in leaked[:5]],
                                           "still_left_after_retrying_rmdir": len(rmdir_retry(leaked))}
    result["targets"] = targets(result)
    return result


def targets(r: dict[str, Any]) -> dict[str, Any]:
    ready = r["ready_ms"]["bubblewrap"]["median"]
    over = r["exec_overhead_ms"]["overhead_median_ms"]
    c = r["concurrent_open"]
    return {
        "ready_median_le_100ms": {"measured": ready, "target": 100, "met": ready <= 100},
        "exec_overhead_median_le_15ms": {"measured": over, "target": 15, "met": over <= 15},
        "open_100_at_once": {"measured": c["success"], "target": c["count"],
                             "met": c["success"] == c["count"] and c["tasks_dir_empty_after"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (N=10 / 50) for a fast check")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="longshot-sandbox-bench-"))
    try:
        result = asyncio.run(run("smoke" if args.smoke else args.quick, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        rmdir_retry(my_cgroups())  # after a crash too: no cgroup of this run stays behind
    result["temp_dir_removed"] = not tmp.exists()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
