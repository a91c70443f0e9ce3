"""`LocalSandboxProvider` for real: git checkouts, subprocesses and bubblewrap."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from longshot.errors import PathOutsideSandbox
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.bwrap import SANDBOX_HOME, WORKSPACE
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.sandboxes.snapshot import SnapshotRefused
from longshot.testing.repos import git, make_remote

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

FILES = {"README.md": "# demo\n", "pkg/__init__.py": "", "pkg/core.py": "def f():\n    return 1\n"}
BRANCH = "worker/t1-x"


@dataclass
class Env:
    tmp: Path
    remote: Path
    hub: Path
    base: str
    spec: SandboxSpec

    def provider(self, isolation: str = "bubblewrap", **kw: object) -> LocalSandboxProvider:
        return LocalSandboxProvider(self.tmp / "work", LocalOptions(isolation=isolation, **kw))  # type: ignore[arg-type]


def inside(sb: LocalSandbox, isolation: str) -> tuple[str, str]:
    """(checkout, HOME) as a command in the sandbox sees them."""
    if isolation == "none":
        return str(sb.checkout), str(sb.home)
    return WORKSPACE, SANDBOX_HOME


@pytest.fixture
def env(tmp_path: Path) -> Env:
    remote = make_remote(tmp_path, FILES)
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    base = git("rev-parse", "refs/heads/main", cwd=hub)
    return Env(tmp_path, remote, hub, base, SandboxSpec(task_id="t1", branch=BRANCH, base_commit=base, hub=hub))


def pgrep(marker: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    return done.stdout.split()


def wait_gone(marker: str, seconds: float = 3.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while (found := pgrep(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


# -- checkout ------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_checkout_has_the_files_and_no_git_entry(env: Env, isolation: str) -> None:
    async with env.provider(isolation).open(env.spec) as sb:
        assert isinstance(sb, LocalSandbox)
        checkout = sb.checkout
        assert (checkout / "README.md").read_text() == "# demo\n"
        assert (checkout / "pkg" / "core.py").read_text() == FILES["pkg/core.py"]
        assert not (checkout / ".git").exists() and not (checkout / ".git").is_symlink()
        assert sorted(os.listdir(checkout)) == ["README.md", "pkg"]
        r = await sb.exec("ls -A; git rev-parse --git-dir", 20)
        assert r.stdout.split("\n")[:2] == ["README.md", "pkg"]
        assert ".git" not in r.stdout.split()
        assert r.exit_code != 0, "git found a repository from inside the checkout"


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_exec_exit_code_stdout_stderr(env: Env, isolation: str) -> None:
    async with env.provider(isolation).open(env.spec) as sb:
        r = await sb.exec("echo out; echo err >&2; cat README.md; exit 3", 20)
        assert r.exit_code == 3
        assert r.stdout == "out\n# demo\n"
        assert r.stderr == "err\n"
        assert not r.timed_out and not r.truncated
        r = await sb.exec("pwd", 20)
        assert r.stdout.strip() == inside(sb, isolation)[0]
        r = await sb.exec("cat", 20)  # stdin is closed, not inherited
        assert r.exit_code == 0 and r.stdout == ""


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_timeout_kills(env: Env, isolation: str) -> None:
    marker = f"sleep 30.{os.getpid()}{len(isolation)}"
    async with env.provider(isolation).open(env.spec) as sb:
        r = await sb.exec(f"echo started; {marker}; touch late", 1)
        assert r.timed_out
        assert r.exit_code == 124
        assert r.stdout == "started\n"
        assert wait_gone(marker) == [], "the timed-out command was left running"
        assert not (sb.checkout / "late").exists()


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_background_process_does_not_survive(env: Env, isolation: str) -> None:
    marker = f"sleep 3001.{os.getpid()}{len(isolation)}"
    try:
        async with env.provider(isolation).open(env.spec) as sb:
            r = await sb.exec(f"{marker} >/dev/null 2>&1 & echo spawned", 20)
            assert r.exit_code == 0 and r.stdout == "spawned\n" and not r.timed_out
            assert wait_gone(marker) == [], "a background process outlived its command"
    finally:
        for pid in pgrep(marker):
            subprocess.run(["kill", "-9", pid], check=False)


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_background_process_holding_stdout_does_not_hang_exec(env: Env, isolation: str) -> None:
    """The command ends when its shell ends, even if a child it left behind holds the pipe."""
    marker = f"sleep 3003.{os.getpid()}{len(isolation)}"
    try:
        async with env.provider(isolation).open(env.spec) as sb:
            r = await sb.exec(f"{marker} & echo again", 4)
            assert r.stdout.startswith("again")
            assert not r.timed_out, "a finished command was reported as timed out"
            assert r.exit_code == 0
            assert wait_gone(marker) == []
    finally:
        for pid in pgrep(marker):
            subprocess.run(["kill", "-9", pid], check=False)


async def test_output_is_capped(env: Env) -> None:
    limit = 10_000
    async with env.provider(output_limit=limit).open(env.spec) as sb:
        r = await sb.exec("yes | head -c 5000000; echo done >&2", 30)
        assert r.exit_code == 0
        assert r.truncated
        assert len(r.stdout) < limit + 200
        assert r.stdout.startswith("y\ny\n") and r.stdout.endswith("y\n")
        assert "bytes of output omitted" in r.stdout
        assert r.stderr == "done\n"


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_environment_is_clean(env: Env, isolation: str) -> None:
    os.environ["LONGSHOT_CANARY_KEY"] = "canary-123"
    try:
        async with env.provider(isolation).open(env.spec) as sb:
            r = await sb.exec("env", 20)
            assert r.exit_code == 0
            assert "canary-123" not in r.stdout and "LONGSHOT_CANARY_KEY" not in r.stdout
            variables = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
            home = inside(sb, isolation)[1]
            assert variables["HOME"] == home
            r = await sb.exec('echo "$HOME" > ~/h && cat ~/h && touch "$TMPDIR/t" && echo ok', 20)
            assert r.stdout == f"{home}\nok\n", r.stderr
            # the sandbox's HOME and TMPDIR are its own directories on the host
            assert (sb.home / "h").read_text() == f"{home}\n"
            assert (sb.tmp / "t").exists()
    finally:
        del os.environ["LONGSHOT_CANARY_KEY"]


async def test_no_network_under_bubblewrap(env: Env) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        async with env.provider().open(env.spec) as sb:
            code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1); print('CONNECTED')"
            r = await sb.exec(f'python3 -c "{code}"', 20)
            assert r.exit_code != 0
            assert "CONNECTED" not in r.stdout
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


async def test_network_control_without_isolation(env: Env) -> None:
    """The same probe reaches the listener when nothing isolates it (the test can fail)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        async with env.provider("none").open(env.spec) as sb:
            code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 1); print('CONNECTED')"
            r = await sb.exec(f'python3 -c "{code}"', 20)
            assert "CONNECTED" in r.stdout
    finally:
        listener.close()


async def test_writes_outside_the_checkout_fail_under_bubblewrap(env: Env) -> None:
    sentinel = env.tmp / "sentinel"
    hub_sentinel = env.hub / "sentinel"
    usr_sentinel = Path(f"/usr/longshot-sentinel-{os.getpid()}")
    hub_head = (env.hub / "HEAD").read_text()
    try:
        async with env.provider().open(env.spec) as sb:
            r = await sb.exec(f"touch /tmp/../{str(env.tmp).lstrip('/')}/sentinel", 20)
            assert r.exit_code != 0
            r = await sb.exec(f"touch {hub_sentinel}; echo x > {env.hub}/HEAD", 20)
            assert r.exit_code != 0
            r = await sb.exec(f"touch {usr_sentinel}", 20)
            assert r.exit_code != 0
            r = await sb.exec(f"touch {sb.root}/git/sentinel; rm -rf {sb.root}/git", 20)
            assert (sb.root / "git" / "HEAD").exists()
            r = await sb.exec("touch inside && echo ok", 20)
            assert r.stdout == "ok\n" and (sb.checkout / "inside").exists()
        assert not sentinel.exists()
        assert not hub_sentinel.exists()
        assert (env.hub / "HEAD").read_text() == hub_head
        assert not usr_sentinel.exists()
    finally:
        usr_sentinel.unlink(missing_ok=True)


async def test_writes_outside_succeed_without_isolation(env: Env) -> None:
    """Control: the probe above does detect a write when nothing isolates the command."""
    async with env.provider("none").open(env.spec) as sb:
        r = await sb.exec(f"touch {env.tmp}/sentinel-none", 20)
        assert r.exit_code == 0
    assert (env.tmp / "sentinel-none").exists()


# -- files ---------------------------------------------------------------------------


async def test_resolve_refuses_escapes(env: Env) -> None:
    async with env.provider().open(env.spec) as sb:
        for bad in ["/etc/passwd", "../x", "pkg/../../x", "~/x", "a\x00b", str(sb.checkout / "README.md"),
                    f"{WORKSPACE}/../../etc/passwd", f"{WORKSPACE}/../x"]:
            with pytest.raises(PathOutsideSandbox):
                sb.resolve(bad)
            with pytest.raises(PathOutsideSandbox):
                await sb.read_file(bad)
            with pytest.raises(PathOutsideSandbox):
                await sb.write_file(bad, b"x")
        r = await sb.exec("ln -s /etc/passwd link && ln -s .. up && ln -s pkg inner", 20)
        assert r.exit_code == 0, r.stderr
        with pytest.raises(PathOutsideSandbox):
            await sb.read_file("link")
        with pytest.raises(PathOutsideSandbox):
            await sb.write_file("up/escaped", b"x")
        with pytest.raises(PathOutsideSandbox):
            await sb.list_dir("up")
        assert not (sb.root / "escaped").exists()
        # a symlink that stays inside is fine
        assert await sb.read_file("inner/core.py") == FILES["pkg/core.py"].encode()
        assert sb.resolve("") == sb.resolve(".") == Path(os.path.realpath(sb.checkout))


async def test_file_round_trip(env: Env) -> None:
    async with env.provider().open(env.spec) as sb:
        await sb.write_file("new/deep/file.txt", b"hello\x00bytes")
        assert await sb.read_file("new/deep/file.txt") == b"hello\x00bytes"
        assert (sb.checkout / "new" / "deep" / "file.txt").read_bytes() == b"hello\x00bytes"
        await sb.write_file("README.md", b"changed\n")
        assert await sb.read_file("README.md") == b"changed\n"
        assert await sb.read_file(f"{WORKSPACE}/README.md") == b"changed\n"  # the path seen inside
        assert await sb.list_dir("") == ["README.md", "new/", "pkg/"]
        assert await sb.list_dir(".") == ["README.md", "new/", "pkg/"]
        assert await sb.list_dir("new") == ["deep/"]
        assert await sb.list_dir("pkg") == ["__init__.py", "core.py"]
        r = await sb.exec("cat new/deep/file.txt | tr '\\0' ' '", 20)
        assert r.stdout == "hello bytes"
        with pytest.raises(FileNotFoundError):
            await sb.read_file("missing.txt")
        with pytest.raises(IsADirectoryError):
            await sb.read_file("pkg")
        with pytest.raises(IsADirectoryError):
            await sb.write_file("", b"x")


# -- snapshot ------------------------------------------------------------------------


async def test_snapshot(env: Env) -> None:
    async with env.provider().open(env.spec) as sb:
        root = sb.root
        assert root.exists()
        assert await sb.snapshot("nothing") is None
        assert git("for-each-ref", "--format=%(refname)", f"refs/heads/{BRANCH}", cwd=env.hub) == ""

        await sb.write_file("pkg/new.py", b"X = 1\n")
        r = await sb.exec("mkdir -p pkg/__pycache__ && echo junk > pkg/__pycache__/x.pyc && echo j > top.pyc", 20)
        assert r.exit_code == 0
        sha = await sb.snapshot("Add new module\n\nLongshot-Task: t1")
        assert sha is not None and len(sha) == 40

        assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=env.hub) == sha
        assert git("rev-parse", f"{sha}^", cwd=env.hub) == env.base
        assert git("log", "-1", "--format=%B", sha, cwd=env.hub).strip() == "Add new module\n\nLongshot-Task: t1"
        files = git("ls-tree", "-r", "--name-only", sha, cwd=env.hub).splitlines()
        assert sorted(files) == ["README.md", "pkg/__init__.py", "pkg/core.py", "pkg/new.py"]
        assert git("show", f"{sha}:pkg/new.py", cwd=env.hub) == "X = 1"
        # the hub's main did not move
        assert git("rev-parse", "refs/heads/main", cwd=env.hub) == env.base

        # nothing new → None, branch unchanged
        assert await sb.snapshot("again") is None
        # a second change stacks on the first
        await sb.write_file("README.md", b"# changed\n")
        second = await sb.snapshot("second")
        assert second is not None
        assert git("rev-parse", f"{second}^", cwd=env.hub) == sha
        assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=env.hub) == second
    assert not root.exists(), "the sandbox root survived the async with"


async def test_snapshot_refuses_a_symlink_pointing_outside(env: Env) -> None:
    async with env.provider().open(env.spec) as sb:
        r = await sb.exec("ln -s /etc/passwd pw && echo data > ok.txt", 20)
        assert r.exit_code == 0, r.stderr
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("try to smuggle a link")
        assert "pw" in str(info.value)
        assert git("for-each-ref", "--format=%(refname)", f"refs/heads/{BRANCH}", cwd=env.hub) == ""


async def test_snapshot_records_deletions(env: Env) -> None:
    async with env.provider("none").open(env.spec) as sb:
        r = await sb.exec("rm pkg/core.py", 20)
        assert r.exit_code == 0
        sha = await sb.snapshot("remove core")
        assert sha is not None
        files = git("ls-tree", "-r", "--name-only", sha, cwd=env.hub).splitlines()
        assert "pkg/core.py" not in files and "README.md" in files


@pytest.mark.parametrize("isolation", ["bubblewrap", "none"])
async def test_leaving_the_block_kills_running_commands_and_removes_the_root(env: Env, isolation: str) -> None:
    marker = f"sleep 3002.{os.getpid()}{len(isolation)}"
    root = None
    running = None
    try:
        with pytest.raises(RuntimeError, match="boom"):
            async with env.provider(isolation).open(env.spec) as sb:
                root = sb.root
                running = asyncio.create_task(sb.exec(marker, 60))
                deadline = time.monotonic() + 5
                while not pgrep(marker) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert pgrep(marker), "the command did not start"
                raise RuntimeError("boom")
        assert root is not None and not root.exists()
        assert wait_gone(marker) == [], "a command outlived its sandbox"
        result = await asyncio.wait_for(running, 10)
        assert result.exit_code != 0
    finally:
        for pid in pgrep(marker):
            subprocess.run(["kill", "-9", pid], check=False)
        if running is not None and not running.done():
            running.cancel()


async def test_two_sandboxes_are_separate(env: Env) -> None:
    provider = env.provider()
    spec2 = env.spec.model_copy(update={"task_id": "t2", "branch": "worker/t2-y"})
    async with provider.open(env.spec) as a, provider.open(spec2) as b:
        assert a.root != b.root
        await a.write_file("only-a.txt", b"a")
        r = await b.exec("ls", 20)
        assert "only-a.txt" not in r.stdout
        r = await b.exec(f"touch {a.checkout}/from-b", 20)
        assert r.exit_code != 0
        assert not (a.checkout / "from-b").exists()


async def test_a_refused_result_leaves_no_object_in_the_hub(env: Env) -> None:
    async with env.provider().open(env.spec) as sb:
        await sb.write_file("ok.txt", b"fine\n")
        r = await sb.exec("ln -s /etc/passwd pw", 20)
        assert r.exit_code == 0, r.stderr
        with pytest.raises(SnapshotRefused):
            await sb.snapshot("smuggle")
        blob = subprocess.run(["git", "hash-object", "--stdin"], input=b"fine\n", capture_output=True).stdout.decode()
        assert git("cat-file", "-t", blob.strip(), cwd=sb.root / "git") == "blob"  # staged in the task's repository
        missing = subprocess.run(["git", "cat-file", "-e", blob.strip()], cwd=env.hub, capture_output=True)
        assert missing.returncode != 0  # the staged file stayed in the task's own repository


def write_blob(repo: Path, data: bytes) -> str:
    done = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, capture_output=True, check=True)
    return done.stdout.decode().strip()


async def test_copy_objects_brings_loose_objects_and_packs_pack_before_index(env: Env, tmp_path: Path) -> None:
    from longshot.sandboxes.snapshot import copy_objects

    source = tmp_path / "source.git"
    git("clone", "--quiet", "--bare", "--shared", str(env.hub), str(source), cwd=tmp_path)
    loose, packed = write_blob(source, b"loose\n"), write_blob(source, b"packed\n")
    git("repack", "-q", "-l", "-d", cwd=source)  # both into a pack of the source's own objects...
    loose2 = write_blob(source, b"loose again\n")  # ...and one loose object beside it
    target = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", str(target), cwd=tmp_path)

    assert copy_objects(source / "objects", target / "objects") >= 3  # a pack, its index, a loose object
    for sha, text in ((loose, "loose"), (packed, "packed"), (loose2, "loose again")):
        assert git("cat-file", "blob", sha, cwd=target) == text
    assert copy_objects(source / "objects", target / "objects") == 0  # what the target has is not copied again
    assert not list((target / "objects").rglob("tmp_*"))


def test_tasks_bringing_the_same_object_at_once_both_succeed(tmp_path: Path) -> None:
    """Two workers that wrote the same file content make the same blob; their snapshots copy it
    into the hub at the same time, each under a temporary name of its own."""
    import threading

    from longshot.sandboxes.snapshot import copy_objects

    target = tmp_path / "hub.git"
    git("init", "--quiet", "--bare", str(target), cwd=tmp_path)
    sources = []
    for i in range(8):
        source = tmp_path / f"task{i}.git"
        git("init", "--quiet", "--bare", str(source), cwd=tmp_path)
        blobs = [write_blob(source, f"same content {n}\n".encode()) for n in range(200)]
        sources.append(source)
    start, errors = threading.Barrier(len(sources)), []

    def copy(source: Path) -> None:
        start.wait()
        try:
            copy_objects(source / "objects", target / "objects")
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=copy, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(git("cat-file", "-t", sha, cwd=target) == "blob" for sha in blobs)
    assert not list((target / "objects").rglob("tmp_*"))


async def test_a_dead_run_killed_between_copying_objects_and_moving_the_branch_is_salvaged(env: Env) -> None:
    from longshot.sandboxes.snapshot import copy_objects

    provider = env.provider("none")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid whose process has ended: the "dead run"
    async with provider.open(env.spec) as sb:
        await sb.write_file("work.txt", b"done before the crash\n")
        await sb._git.run("add", "--all")  # noqa: SLF001 - the snapshot's first steps, as a killed run did them
        await sb._git.run("commit", "--quiet", "-m", "work\n\nLongshot-Task: t1")  # noqa: SLF001
        head = await sb._git.run("rev-parse", "HEAD")  # noqa: SLF001
        copy_objects(sb.root / "git" / "objects", env.hub / "objects")  # killed here, before update-ref
        left = sb.root.with_name(f"t1-{gone.pid}-1")
        shutil.copytree(sb.root, left, symlinks=True)
    assert git("cat-file", "-t", head, cwd=env.hub) == "commit"

    found = await provider.recover(env.hub, lambda branch: "salvaged\n\nLongshot-Task: t1")

    assert [(f.branch, f.commit) for f in found] == [(BRANCH, head)]
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=env.hub) == head
    assert not left.exists()


async def test_the_task_repository_borrows_the_hub_s_objects_and_holds_only_its_branch(env: Env) -> None:
    git("update-ref", "refs/heads/worker/other", env.base, cwd=env.hub)
    async with env.provider().open(env.spec) as sb:
        task_git = sb.root / "git"
        assert git("for-each-ref", "--format=%(refname)", cwd=task_git) == f"refs/heads/{BRANCH}"
        assert git("cat-file", "-t", env.base, cwd=task_git) == "commit"  # from the hub, through alternates
        assert not list((task_git / "objects").glob("??/*"))  # nothing copied
        assert not (task_git / "hooks").exists()
