"""Attacks on the local sandbox under the real bubblewrap profile (T10, T16, T18-T21).

Destructive commands, secret exfiltration, network egress, resource exhaustion, hung and
flooding commands, lingering processes, an orchestrator killed mid-command, and the
trusted set-up command. Limits are small so every attack ends in seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from longshot.errors import SandboxError
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bwrap import SANDBOX_HOME
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.testing.repos import git, make_remote

from listener import Listener

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

FILES = {"README.md": "# demo\n", "pkg/__init__.py": "", "pkg/core.py": "def f():\n    return 1\n"}
SMALL = Limits(memory_mb=256, cpu_cores=1, processes=64, open_files=256, disk_mb=64, files=2000)
PID = os.getpid()


@dataclass
class Env:
    tmp: Path
    hub: Path
    base: str
    work: Path

    def spec(self, task_id: str = "t1") -> SandboxSpec:
        return SandboxSpec(task_id=task_id, branch=f"worker/{task_id}", base_commit=self.base, hub=self.hub)

    def provider(self, limits: Limits = SMALL, work: Path | None = None, **kw: object) -> LocalSandboxProvider:
        return LocalSandboxProvider(work or self.work, LocalOptions(isolation="bubblewrap", limits=limits, **kw))  # type: ignore[arg-type]


def make_env(base: Path) -> Env:
    remote = make_remote(base, FILES)
    hub = base / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=base)
    return Env(base, hub, git("rev-parse", "refs/heads/main", cwd=hub), base / "work")


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture(params=["disk", "tmpfs"])
def storage_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """The work dir on the test's disk, or on tmpfs (fast file creation, as on many CI hosts)."""
    if request.param == "disk":
        yield make_env(tmp_path)
        return
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        pytest.skip("no writable tmpfs at /dev/shm")
    base = Path(tempfile.mkdtemp(prefix="longshot-attacks-", dir=shm))
    try:
        yield make_env(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def need_cgroup(sb: LocalSandbox) -> None:
    if sb.cgroup is None:
        pytest.skip("no cgroup could be created on this host: process/memory limits are not enforced")


# -- process helpers -------------------------------------------------------------------


def pgrep(marker: str) -> list[str]:
    """PIDs whose whole command line is exactly ``marker`` (not shells that mention it)."""
    pattern = "^" + marker.replace(".", "\\.") + "$"
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()


def wait_for(marker: str, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while not (found := pgrep(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def wait_gone(marker: str, seconds: float = 3.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (found := pgrep(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def kill_stray(*markers: str) -> None:
    for marker in markers:
        for pid in pgrep(marker):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def cgroup_left(sb: LocalSandbox, seconds: float = 2.0) -> set[int]:
    """PIDs still in the sandbox's cgroup after a short grace (SIGKILLed ones take a moment)."""
    if sb.cgroup is None:
        return set()
    deadline = time.monotonic() + seconds
    while (left := sb.cgroup.pids()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def digest(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """sha256 of every file (and the target of every link, the set of dirs) under ``root``."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for d in dirnames:
            found[str((here / d).relative_to(root)) + "/"] = "dir"
        for name in filenames:
            path = here / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    assert found, f"nothing to compare under {root}"
    return found


# -- T16 destructive commands ----------------------------------------------------------


async def test_destructive_commands_touch_nothing_outside_the_checkout(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # a fake host HOME with a key in it, set as the orchestrator's HOME
    home = env.tmp / "fakehome"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN FAKE PRIVATE KEY-----\nsentinel\n")
    (home / ".gitconfig").write_text("[user]\n\tname = host\n")
    (home / "notes.txt").write_text("keep me\n")
    monkeypatch.setenv("HOME", str(home))
    provider = env.provider()
    async with provider.open(env.spec("t1")) as sb, provider.open(env.spec("t2")) as sibling:
        (sb.checkout.parent / "sentinel").write_text("parent of the checkout\n")
        await sibling.write_file("sibling.txt", b"the sibling's work\n")
        (env.hub / "sentinel").write_text("hub\n")
        own = (sb.checkout, sb.home, sb.tmp)
        guarded = {
            "fake HOME": (home, ()),
            "checkout parent (task root, git dir)": (sb.root, own),
            "sibling task": (sibling.root, ()),
            "hub": (env.hub, ()),
        }
        before = {name: digest(path, skip) for name, (path, skip) in guarded.items()}
        await sb.exec("echo x > ~/mine && echo y > /tmp/mine && mkdir -p deep/dir && echo z > deep/dir/f", 20)

        attacks = [
            "rm -rf ~", 'rm -rf "$HOME"', "rm -rf ~/..", "rm -rf /", "rm -rf ..", "rm -rf /workspace/..",
            "mkdir -p '~' && rm -rf '~'", "rm -rf ../*", "rm -rf --no-preserve-root /",
            f"rm -rf {home} {env.hub} {sibling.root} {sb.root} {env.tmp}",
            f"rm -rf /tmp/../{str(env.tmp).lstrip('/')}", "find / -delete",
        ]
        for attack in attacks:
            r = await sb.exec(attack, 20)
            assert not r.timed_out, (attack, r)

        # the attacks really ran: the task's own checkout, HOME and /tmp are emptied
        assert os.listdir(sb.checkout) == []
        assert not (sb.home / "mine").exists() and not (sb.tmp / "mine").exists()
        after = {name: digest(path, skip) for name, (path, skip) in guarded.items()}
        for name in guarded:
            assert after[name] == before[name], f"{name} changed"
        assert (sibling.checkout / "sibling.txt").read_text() == "the sibling's work\n"
        r = await sibling.exec("cat sibling.txt README.md", 20)
        assert r.exit_code == 0 and r.stdout == "the sibling's work\n# demo\n"
    git("fsck", "--full", "--strict", cwd=env.hub)
    assert git("rev-parse", "refs/heads/main", cwd=env.hub) == env.base
    assert (home / ".ssh" / "id_rsa").read_text().endswith("sentinel\n")


# -- T18 secret exfiltration -----------------------------------------------------------


CANARIES = {
    "OPENAI_API_KEY": f"sk-canary-openai-{PID}",
    "GITHUB_TOKEN": f"ghp_canary_github_{PID}",
    "LLM_API_KEY": f"canary-llm-{PID}",
}


async def test_no_secrets_host_home_hub_or_other_tasks_are_visible(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CANARIES.items():
        monkeypatch.setenv(key, value)
    host_home = os.path.realpath(os.path.expanduser("~"))
    # a host process whose environment holds a secret (as the orchestrator's would)
    holder_value = f"canary-holder-{PID}"
    holder = subprocess.Popen(["sleep", "60"], env={**os.environ, "HOLDER_SECRET": holder_value})
    provider = env.provider()
    try:
        async with provider.open(env.spec("t1")) as sb, provider.open(env.spec("t2")) as other:
            probes = ["env", "cat /proc/*/environ", "cat /proc/1/environ", "cat ~/.ssh/id_rsa",
                      "git config --list --show-origin", f"cat {host_home}/.ssh/id_rsa",
                      f"cat {host_home}/.gitconfig {host_home}/.npmrc {host_home}/.netrc", "cat /root/.ssh/*",
                      f"cat /proc/{os.getpid()}/environ", f"cat /proc/{holder.pid}/environ"]
            for probe in probes:
                r = await sb.exec(probe, 20)
                seen = r.stdout + r.stderr
                for value in (*CANARIES.values(), holder_value):
                    assert value not in seen, (probe, value)
            r = await sb.exec("env", 20)
            assert not set(CANARIES) & {line.split("=", 1)[0] for line in r.stdout.splitlines()}

            # the host HOME shows at most the folders on the way to the read-only toolchain parts exposed
            exposed = {Path(p).relative_to(host_home).parts[0] for p in provider.ro_paths
                       if p.startswith(host_home + "/")}
            assert not {str(Path(host_home) / e) for e in exposed} & set(provider.ro_paths), "a whole HOME folder"
            r = await sb.exec(f"ls -A {host_home}", 20)
            visible = set(r.stdout.split()) if r.exit_code == 0 else set()
            assert visible <= exposed, visible - exposed
            for name in sorted(os.listdir(host_home)):
                if name not in exposed:
                    path = shlex.quote(f"{host_home}/{name}")
                    r = await sb.exec(f"test -e {path} || test -L {path}", 20)
                    assert r.exit_code != 0, f"{host_home}/{name} is visible in the sandbox"
            r = await sb.exec("ls -A /root/.ssh /root/.config /root/.aws", 20)
            assert r.exit_code != 0 and r.stdout == ""

            # neither the hub, the work dir, nor another task's directories are there
            for path in (env.hub, env.work, env.work / "tasks", other.root, other.checkout, sb.root):
                r = await sb.exec(f"ls {path}", 20)
                assert r.exit_code != 0, f"{path} is visible inside"
    finally:
        holder.kill()
        holder.wait()


async def test_control_proc_environ_probe_detects_a_visible_secret(env: Env) -> None:
    """Without isolation the same probe reads the host process's secret: the check can fail."""
    holder_value = f"canary-holder-{PID}-control"
    holder = subprocess.Popen(["sleep", "60"], env={**os.environ, "HOLDER_SECRET": holder_value})
    try:
        provider = LocalSandboxProvider(env.work, LocalOptions(isolation="none", limits=SMALL))
        async with provider.open(env.spec("t1")) as sb:
            r = await sb.exec(f"cat /proc/{holder.pid}/environ", 20)
            assert holder_value in r.stdout
    finally:
        holder.kill()
        holder.wait()


# -- T19 network egress ----------------------------------------------------------------


def py(code: str) -> str:
    return f"python3 -c '{code}'"


async def test_network_egress_is_blocked(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    tcp = Listener()
    sock_path = env.tmp / "agent.sock"
    unix = Listener(socket.AF_UNIX, str(sock_path))
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock_path))
    port = tcp.port
    try:
        async with env.provider().open(env.spec()) as sb:
            probes = [
                py(f'import socket; s = socket.create_connection(("127.0.0.1", {port}), 2); s.sendall(b"leak"); print("CONNECTED")'),
                f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo leak >&3 && echo CONNECTED",
                py('import socket; print(socket.getaddrinfo("example.com", 80)); print("CONNECTED")'),
                py('import socket; socket.create_connection(("10.0.0.1", 80), 2); print("CONNECTED")'),
                py('import socket; socket.create_connection(("169.254.169.254", 80), 2); print("CONNECTED")'),
                py(f'import socket; s = socket.socket(socket.AF_UNIX); s.connect("{sock_path}"); s.sendall(b"leak"); print("CONNECTED")'),
                'test -n "$SSH_AUTH_SOCK" && echo CONNECTED',
                "test -e /var/run/docker.sock -o -e /run/docker.sock && echo CONNECTED",
            ]
            if shutil.which("curl"):
                probes.append(f"curl -s -m 2 http://127.0.0.1:{port}/ && echo CONNECTED")
            for probe in probes:
                r = await sb.exec(probe, 10)
                assert r.exit_code != 0, (probe, r)
                assert "CONNECTED" not in r.stdout, probe
                assert not r.timed_out, probe
        time.sleep(0.2)
        assert tcp.connections == 0 and tcp.received == b""
        assert unix.connections == 0 and unix.received == b""
    finally:
        tcp.close()
        unix.close()


async def test_network_opt_in_really_reaches_the_host_loopback(env: Env) -> None:
    """With ``network=True`` (``--share-net``) the same probe gets through: the opt-in is real."""
    tcp = Listener()
    try:
        async with env.provider(network=True).open(env.spec()) as sb:
            code = f'import socket; s = socket.create_connection(("127.0.0.1", {tcp.port}), 2); s.sendall(b"hello"); s.close(); print("CONNECTED")'
            r = await sb.exec(py(code), 10)
            assert r.exit_code == 0 and "CONNECTED" in r.stdout, r
        deadline = time.monotonic() + 3
        while tcp.received != b"hello" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tcp.connections == 1 and tcp.received == b"hello"
    finally:
        tcp.close()


# -- T20 resource exhaustion -----------------------------------------------------------


def bomb(name: str) -> str:
    return f"{name}(){{ {name}|{name}& }};{name}"


async def test_fork_bomb_is_stopped_by_the_process_limit_and_other_tasks_carry_on(env: Env) -> None:
    name = f"bomb{PID}"
    limits = Limits(memory_mb=1024, cpu_cores=1, processes=64, open_files=256, disk_mb=64, files=2000)
    provider = env.provider(limits)
    async with provider.open(env.spec("a")) as a, provider.open(env.spec("b")) as b:
        need_cgroup(a)
        assert a.cgroup is not None
        running = asyncio.create_task(a.exec(f"{bomb(name)}; sleep 2", 15))
        try:
            deadline = time.monotonic() + 10
            while a.cgroup.counters()["processes"] == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert a.cgroup.counters()["processes"] > 0, "the bomb never reached the process limit"
            # while A's bomb is at its limit, B works normally
            r = await b.exec("echo ok", 10)
            assert r.exit_code == 0 and r.stdout == "ok\n" and not r.timed_out
            result = await asyncio.wait_for(running, 20)
        finally:
            if not running.done():
                running.cancel()
        assert not result.timed_out, result  # ended by the process limit, not by its 15 s
        assert result.limit is not None and result.limit.startswith("process limit"), result.limit
        assert "64" in result.limit
        assert cgroup_left(a) == set(), "processes of the bomb survived its command"
        assert subprocess.run(["pgrep", "-f", f"{name}\\|{name}"], capture_output=True).stdout == b""
        r = await a.exec("echo alive", 10)
        assert r.stdout == "alive\n", "the sandbox is unusable after the bomb"


async def test_classic_fork_bomb_leaves_nothing_running(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        need_cgroup(sb)
        assert sb.cgroup is not None
        r = await sb.exec(":(){ :|:& };:", 10)
        if r.limit is not None:
            assert r.limit.startswith(("process limit", "time limit")), r.limit
        assert cgroup_left(sb) == set()
        await asyncio.sleep(0.5)
        assert sb.cgroup.pids() == set(), "the bomb respawned after its command was killed"
        r = await sb.exec("echo alive", 10)
        assert r.stdout == "alive\n"


async def test_memory_blowup_is_stopped_by_the_memory_limit(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        need_cgroup(sb)
        r = await sb.exec(py('x = b"x" * (1024 ** 3); print("ALLOCATED")'), 20)
        assert not r.timed_out, r
        assert r.exit_code != 0 and "ALLOCATED" not in r.stdout
        assert r.limit is not None and r.limit.startswith("memory limit"), r
        assert "256 MB" in r.limit
        r = await sb.exec("echo alive", 10)
        assert r.stdout == "alive\n"


async def test_filling_the_disk_is_stopped(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        r = await sb.exec("dd if=/dev/zero of=fill bs=1M count=1000", 20)
        assert r.exit_code != 0
        assert r.limit is not None and r.limit.startswith(("disk limit", "file size limit")), r
        assert (sb.checkout / "fill").stat().st_size <= 64 * 1024 * 1024


async def test_filling_home_and_tmp_with_small_files_hits_the_disk_limit(env: Env) -> None:
    """Many files under the per-file size cap, in HOME and /tmp: the total is what counts."""
    limits = Limits(memory_mb=1024, cpu_cores=1, processes=64, open_files=256, disk_mb=64, files=2000)
    async with env.provider(limits).open(env.spec()) as sb:
        r = await sb.exec("for i in 1 2 3; do head -c 30000000 /dev/zero > /tmp/f$i; head -c 30000000 /dev/zero > ~/f$i; done;"
                          " sleep 5; echo SURVIVED", 15)
        assert "SURVIVED" not in r.stdout, r  # stopped before its sleep ended, not at its 15 s
        assert r.limit is not None and r.limit.startswith("disk limit"), r
        assert not r.timed_out, r


async def test_too_many_open_files_is_stopped_by_the_open_files_limit(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        r = await sb.exec(py('fs = [open("/dev/null") for _ in range(10000)]; print("OPENED")'), 20)
        assert r.exit_code != 0 and "OPENED" not in r.stdout
        assert r.limit is not None and r.limit.startswith("open files limit"), r
        assert "256" in r.limit


async def test_many_tiny_files_hit_the_file_count_limit(storage_env: Env) -> None:
    """The command that takes the sandbox over its file cap is the one told so, however
    fast the filesystem lets it create the files."""
    async with storage_env.provider().open(storage_env.spec()) as sb:
        r = await sb.exec("for i in $(seq 1 5000); do : > f$i; done; echo DONE", 20)
        assert r.limit is not None and r.limit.startswith("file count limit"), r
        assert "2000" in r.limit
        assert r.exit_code != 0


# -- T10 hung, interactive and flooding commands ---------------------------------------


async def test_hung_command_times_out_quickly(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        for command in ("sleep 100000", "touch log && tail -f log"):
            r = await sb.exec(command, 1)
            assert r.timed_out and r.exit_code == 124, (command, r)
            assert r.limit is not None and r.limit.startswith("time limit")
            assert cgroup_left(sb) == set(), command


async def test_interactive_commands_end_at_once_with_stdin_closed(env: Env) -> None:
    async with env.provider().open(env.spec()) as sb:
        for command in ("python3", "python3 -i", "cat", "read line; echo got-$?", "bash -i"):
            r = await sb.exec(command, 10)
            assert not r.timed_out, command
        r = await sb.exec("read line; echo status=$?", 10)
        assert r.stdout == "status=1\n"


async def test_endless_output_is_bounded(env: Env) -> None:
    limit = 64_000
    async with env.provider(output_limit=limit).open(env.spec()) as sb:
        r = await sb.exec("yes", 2)
        assert r.timed_out and r.exit_code == 124
        assert r.truncated
        assert len(r.stdout) <= limit + 100
        assert r.stdout.startswith("y\ny\n") and "bytes of output omitted" in r.stdout


async def test_a_gigabyte_without_newlines_keeps_memory_bounded(env: Env) -> None:
    limit = 64_000
    total = 1_000_000_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    async with env.provider(output_limit=limit).open(env.spec()) as sb:
        r = await sb.exec(f"head -c {total} /dev/zero | tr '\\0' 'a'", 30)
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert not r.timed_out and r.exit_code == 0, r.limit
    assert r.truncated
    assert len(r.stdout) <= limit + 100
    assert r.stdout.startswith("a" * 1000) and r.stdout.endswith("a" * 1000)
    assert f"[... {total - limit} bytes of output omitted ...]" in r.stdout
    assert (peak_after - peak_before) < 200 * 1024, f"the orchestrator grew by {(peak_after - peak_before) // 1024} MB"


# -- T21 lingering processes -----------------------------------------------------------


async def test_daemons_do_not_outlive_their_command(env: Env) -> None:
    nohup, setsid, daemon = (f"sleep 9999.{PID}1", f"sleep 9998.{PID}2", f"sleep 9996.{PID}3")
    double_fork = ("import os\n"
                   "if os.fork() == 0:\n"
                   "    os.setsid()\n"
                   "    if os.fork() == 0:\n"
                   "        fd = os.open(\"/dev/null\", os.O_RDWR)\n"
                   "        [os.dup2(fd, i) for i in (0, 1, 2)]\n"
                   f"        os.execvp(\"sleep\", \"{daemon}\".split())\n"
                   "    os._exit(0)\n"
                   "os.wait()\n")
    try:
        async with env.provider().open(env.spec()) as sb:
            r = await sb.exec(f"nohup {nohup} >/dev/null 2>&1 & (setsid {setsid} >/dev/null 2>&1 &) & "
                              f"python3 -c '{double_fork}'; sleep 0.5; pgrep -a sleep; echo started", 20)
            assert r.exit_code == 0 and r.stdout.endswith("started\n"), r  # did not wait for the daemons
            for marker in (nohup, setsid, daemon):
                assert marker in r.stdout, f"{marker} never started"
            for marker in (nohup, setsid, daemon):
                assert wait_gone(marker) == [], f"{marker} outlived its command"
            assert cgroup_left(sb) == set()
    finally:
        kill_stray(nohup, setsid, daemon)


async def test_leaving_the_block_kills_what_still_runs(env: Env) -> None:
    fg, bg = f"sleep 9995.{PID}1", f"sleep 9994.{PID}2"
    running = None
    try:
        async with env.provider().open(env.spec()) as sb:
            root = sb.root
            running = asyncio.create_task(sb.exec(f"(setsid {bg} >/dev/null 2>&1 &); {fg}", 120))
            deadline = time.monotonic() + 10
            while not (pgrep(fg) and pgrep(bg)) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert pgrep(fg) and pgrep(bg), "the command did not start"
        assert wait_gone(fg) == [] and wait_gone(bg) == [], "a process outlived its sandbox"
        assert not root.exists()
        result = await asyncio.wait_for(running, 10)
        assert result.exit_code != 0
    finally:
        kill_stray(fg, bg)
        if running is not None and not running.done():
            running.cancel()


DRIVER = """
import asyncio, sys
from pathlib import Path
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider

work, hub, base, fg, bg = sys.argv[1:6]

async def main():
    limits = Limits(memory_mb=256, cpu_cores=1, processes=64, open_files=256, disk_mb=64, files=2000)
    provider = LocalSandboxProvider(Path(work), LocalOptions(limits=limits))
    spec = SandboxSpec(task_id="killed", branch="worker/killed", base_commit=base, hub=Path(hub))
    async with provider.open(spec) as sb:
        await sb.exec(f"(setsid sleep {bg} >/dev/null 2>&1 &); sleep {fg}", 600)

asyncio.run(main())
"""


def _own_cgroup_dirs(name: str) -> list[Path]:
    """Where a cgroup ``name`` made by a child of this process would be (v1 and v2)."""
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") or [""]:
            mount = Path("/sys/fs/cgroup") / controller if controller else Path("/sys/fs/cgroup")
            for parent in (mount / path.lstrip("/"), mount):
                if (parent / name).is_dir():
                    found.append(parent / name)
    return found


async def test_sigkill_of_the_orchestrator_kills_the_sandbox(env: Env) -> None:
    fg_n, bg_n = f"9993.{PID}1", f"9992.{PID}2"
    fg, bg = f"sleep {fg_n}", f"sleep {bg_n}"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(env.tmp / "driver-work"), str(env.hub), env.base,
                               fg_n, bg_n], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(fg, 30) and wait_for(bg, 5), "the driver's command did not start"
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        assert wait_gone(fg, 5) == [], "the sandbox's command survived the orchestrator"
        assert wait_gone(bg, 5) == [], "a daemon of the sandbox survived the orchestrator"
        # the dead run's cgroups are swept by the next provider
        LocalSandboxProvider(env.tmp / "next-work", LocalOptions(limits=SMALL))
        assert _own_cgroup_dirs(f"longshot-killed-{driver.pid}-1") == [], "the dead run's cgroups were left behind"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        kill_stray(fg, bg)
        for d in _own_cgroup_dirs(f"longshot-killed-{driver.pid}-1"):
            try:
                d.rmdir()
            except OSError:
                pass


# -- the trusted set-up command ----------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[int, list[str]]]:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"package-data")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


async def test_setup_command_has_network_and_cache_then_exec_does_not(env: Env, http_server: tuple[int, list[str]]) -> None:
    port, hits = http_server
    fetch = (f'import urllib.request; data = urllib.request.urlopen("http://127.0.0.1:{port}/pkg", timeout=5).read(); '
             f'open("{SANDBOX_HOME}/.cache/marker", "wb").write(data)')
    first = env.provider(setup_command=py(fetch), setup_timeout=30, setup_hosts=(f"127.0.0.1:{port}",))
    async with first.open(env.spec("t1")) as sb:
        assert hits == ["/pkg"], "the set-up command did not reach the network"
        assert (first.cache_dir / "marker").read_bytes() == b"package-data"
        r = await sb.exec(py(fetch), 10)
        assert r.exit_code != 0, "a normal command reached the network after set-up"
        assert hits == ["/pkg"]
        r = await sb.exec("test -e ~/.cache/marker", 10)
        assert r.exit_code != 0, "the shared cache is mounted outside set-up"

    # a later sandbox's set-up sees the shared cache; its commands do not
    second = env.provider(setup_command="test -f ~/.cache/marker && grep -q package-data ~/.cache/marker")
    async with second.open(env.spec("t2")) as sb:
        r = await sb.exec("test -e ~/.cache/marker", 10)
        assert r.exit_code != 0

    # a fresh cache does not have it: the same set-up fails, naming the command
    failing = env.provider(work=env.tmp / "other-work", setup_command="test -f ~/.cache/marker")
    with pytest.raises(SandboxError) as info:
        async with failing.open(env.spec("t3")):
            pass
    assert "test -f ~/.cache/marker" in str(info.value)
    assert list((env.tmp / "other-work" / "tasks").iterdir()) == [], "a failed set-up left its sandbox behind"
