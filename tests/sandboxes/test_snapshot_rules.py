"""T17: git attacks from inside a worker, and the rules a snapshot enforces.

Everything runs under the real bubblewrap profile. The worker's commands plant git config,
hooks, nested repositories, submodules, escaping symlinks, huge files and many files; the
orchestrator's `snapshot` must never run the planted code on the host, and must refuse a
result that breaks a rule, naming the rule and the paths, without touching the hub.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.sandboxes.snapshot import SnapshotRefused
from longshot.testing.repos import git, make_remote

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

FILES = {"README.md": "# demo\n", "pkg/__init__.py": "", "pkg/core.py": "def f():\n    return 1\n"}
BRANCH = "worker/t17-x"
GIT_INSIDE = "git -c user.name=w -c user.email=w@sandbox"
SMALL = Limits(memory_mb=512, cpu_cores=1, processes=64, open_files=256, disk_mb=64, files=2000)


@dataclass
class Env:
    tmp: Path
    hub: Path
    base: str
    work: Path

    @property
    def spec(self) -> SandboxSpec:
        return SandboxSpec(task_id="t17", branch=BRANCH, base_commit=self.base, hub=self.hub)

    def provider(self, limits: Limits = SMALL, **kw: object) -> LocalSandboxProvider:
        return LocalSandboxProvider(self.work, LocalOptions(isolation="bubblewrap", limits=limits, **kw))  # type: ignore[arg-type]

    def hub_state(self) -> str:
        """Every ref of the hub with its commit."""
        return git("for-each-ref", "--format=%(refname) %(objectname)", cwd=self.hub)

    def branch_exists(self) -> bool:
        return git("for-each-ref", "--format=%(refname)", f"refs/heads/{BRANCH}", cwd=self.hub) != ""


def _make_env(base: Path) -> Env:
    remote = make_remote(base, FILES)
    hub = base / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=base)
    return Env(base, hub, git("rev-parse", "refs/heads/main", cwd=hub), base / "work")


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return _make_env(tmp_path)


@pytest.fixture
def fast_env(tmp_path: Path) -> Iterator[Env]:
    """An Env on tmpfs when there is one: creating 20,000 files on a slow disk takes long."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = Path(tempfile.mkdtemp(prefix="longshot-t17-", dir=shm))
        try:
            yield _make_env(base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    else:
        yield _make_env(tmp_path)


async def run_ok(sb: LocalSandbox, command: str, timeout: float = 30) -> str:
    r = await sb.exec(command, timeout)
    assert r.exit_code == 0, (command, r)
    return r.stdout


# -- planted git config and hooks ------------------------------------------------------


async def test_git_config_hooks_and_fsmonitor_planted_inside_never_run_on_the_host(env: Env) -> None:
    sentinel = env.tmp / f"HOOK-RAN-{os.getpid()}"
    script = f'#!/bin/sh\necho "$0 $*" >> {sentinel} 2>/dev/null\nexit 0\n'
    hub_before = env.hub_state()
    async with env.provider().open(env.spec) as sb:
        # there is no repository in the checkout to attack
        r = await sb.exec("cat .git/config; git rev-parse --git-dir; git push --force origin main", 20)
        assert r.exit_code != 0
        assert not (sb.checkout / ".git").exists()
        # a hand-written .git/config first, then a real repository with hooks and fsmonitor
        await run_ok(sb, "mkdir -p .git && printf '[core]\\n\\tfsmonitor = ./evil.sh\\n' > .git/config")
        await sb.write_file("evil.sh", script.encode())
        await run_ok(sb, "chmod +x evil.sh && git init -q . "
                     "&& git config core.fsmonitor ./evil.sh && git config core.hooksPath .git/hooks "
                     "&& git config alias.st '!./evil.sh' "
                     "&& for h in post-commit pre-commit post-checkout post-merge pre-push; do cp evil.sh .git/hooks/$h; done "
                     f"&& {GIT_INSIDE} add -A && {GIT_INSIDE} commit -qm planted && echo changed > README.md")
        assert (sb.checkout / ".git" / "hooks" / "post-commit").exists()
        assert "fsmonitor = ./evil.sh" in (sb.checkout / ".git" / "config").read_text()
        # the worker's own git cannot reach the hub: its path does not exist inside
        r = await sb.exec(f"{GIT_INSIDE} push --force {env.hub} HEAD:main; "
                          f"git --git-dir={env.hub} update-ref refs/heads/main HEAD; "
                          f"{GIT_INSIDE} reset --hard HEAD~5", 20)
        assert r.exit_code != 0
        assert env.hub_state() == hub_before
        assert not sentinel.exists(), "the planted hooks reached the host path from inside"

        sha = await sb.snapshot("the orchestrator's commit")

        assert sha is not None
        assert not sentinel.exists(), "a hook or fsmonitor planted by the worker ran on the host"
        tree = git("ls-tree", "-r", "--full-tree", sha, cwd=env.hub).splitlines()
        paths = [line.split("\t", 1)[1] for line in tree]
        modes = [line.split()[0] for line in tree]
        assert sorted(paths) == ["README.md", "evil.sh", "pkg/__init__.py", "pkg/core.py"]
        assert "160000" not in modes, "the nested repository became a gitlink"
        assert git("show", f"{sha}:README.md", cwd=env.hub) == "changed"
        assert git("rev-parse", "refs/heads/main", cwd=env.hub) == env.base
        assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=env.hub) == sha

        # Control: a naive host git in the same checkout DOES run the planted code, so the
        # sentinel check above can fail. (It trusts the checkout: run as root, the checkout belongs
        # to the sandbox's user, and git's own ownership check would otherwise refuse it.)
        plain = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(env.tmp), "GIT_CONFIG_NOSYSTEM": "1"}
        subprocess.run(["git", "-c", "safe.directory=*", "-c", "user.name=n", "-c", "user.email=n@host", "commit",
                        "--allow-empty", "-qm", "naive"],
                       cwd=sb.checkout, env=plain, capture_output=True, check=False)
    assert sentinel.exists(), "control failed: the planted hooks did not fire even for a naive git"
    ran = sentinel.read_text()
    assert "pre-commit" in ran and "post-commit" in ran and "./evil.sh" in ran


# -- nested repositories and submodules ------------------------------------------------


async def test_nested_repository_with_a_commit_is_refused_as_a_gitlink(env: Env) -> None:
    hub_before = env.hub_state()
    async with env.provider().open(env.spec) as sb:
        await run_ok(sb, f"mkdir sub && cd sub && git init -q && echo a > a && {GIT_INSIDE} add a "
                     f"&& {GIT_INSIDE} commit -qm inner && cd .. && echo ok > ok.txt")
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("smuggle a gitlink")
        assert "submodules and nested repositories" in info.value.rule
        assert info.value.paths == ["sub"]
        assert "sub" in str(info.value)
    assert env.hub_state() == hub_before
    assert not env.branch_exists()


async def test_git_file_pointing_at_the_hub_is_refused(env: Env) -> None:
    """A ``sub/.git`` file naming the hub turns ``sub`` into a gitlink of the hub's HEAD."""
    hub_before = env.hub_state()
    async with env.provider().open(env.spec) as sb:
        await run_ok(sb, f"mkdir sub && echo 'gitdir: {env.hub}' > sub/.git && echo x > sub/file")
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("point at the hub")
        assert "submodules and nested repositories" in info.value.rule
        assert info.value.paths == ["sub"]
    assert env.hub_state() == hub_before
    assert not env.branch_exists()


async def test_nested_repository_without_commits_is_refused_not_a_git_crash(env: Env) -> None:
    """``git init sub`` (no commit yet) is a nested repository too: refused by the rule,
    or left out of the commit — never a raw git failure the task runner does not expect."""
    hub_before = env.hub_state()
    async with env.provider().open(env.spec) as sb:
        await run_ok(sb, "mkdir sub && cd sub && git init -q && echo a > a")
        try:
            sha = await sb.snapshot("an empty nested repository")
        except SnapshotRefused as e:
            assert "submodules and nested repositories" in e.rule
            assert any(p.rstrip("/") == "sub" for p in e.paths), e.paths
            assert env.hub_state() == hub_before
            return
        assert sha is not None
        tree = git("ls-tree", "-r", "--full-tree", sha, cwd=env.hub)
        assert "160000" not in tree and ".git" not in tree


@pytest.mark.parametrize("path", [".gitmodules", "lib/.gitmodules"])
async def test_gitmodules_is_refused(env: Env, path: str) -> None:
    hub_before = env.hub_state()
    async with env.provider().open(env.spec) as sb:
        await sb.write_file(path, b'[submodule "x"]\n\tpath = x\n\turl = /etc\n')
        await sb.write_file("ok.txt", b"fine\n")
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("add a submodule")
        assert "submodules and nested repositories" in info.value.rule
        assert info.value.paths == [path]
    assert env.hub_state() == hub_before
    assert not env.branch_exists()


# -- symlinks --------------------------------------------------------------------------


async def test_symlinks_pointing_outside_are_refused_and_inside_ones_pass(env: Env) -> None:
    fake_key = env.tmp / "fakehome" / ".ssh" / "id_rsa"
    fake_key.parent.mkdir(parents=True)
    fake_key.write_text("-----BEGIN FAKE KEY-----\n")
    hub_before = env.hub_state()
    async with env.provider().open(env.spec) as sb:
        await run_ok(sb, f"ln -s /etc/passwd leak && ln -s ../../secret up && ln -s {fake_key} key "
                     "&& ln -s .. parent && mkdir -p a/b && ln -s ../../../x a/b/up "
                     "&& ln -s pkg/core.py alias && ln -s ../README.md pkg/readme && ln -s ../pkg a/pkg "
                     "&& echo data > ok.txt")
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("smuggle links")
        assert "symlinks" in info.value.rule
        assert sorted(info.value.paths) == sorted([
            "leak -> /etc/passwd", "up -> ../../secret", f"key -> {fake_key}", "parent -> ..",
            "a/b/up -> ../../../x",
        ])
        assert "leak" in str(info.value)
        assert env.hub_state() == hub_before, "a refused result reached the hub"
        assert not env.branch_exists()

        # without the escaping links the same checkout is accepted, inside links included
        await run_ok(sb, "rm leak up key parent a/b/up")
        sha = await sb.snapshot("inside links only")
        assert sha is not None
        links = {line.split("\t", 1)[1]: line.split()[0]
                 for line in git("ls-tree", "-r", "--full-tree", sha, cwd=env.hub).splitlines()}
        assert links["alias"] == links["pkg/readme"] == links["a/pkg"] == "120000"
        assert not {"leak", "up", "key", "parent", "a/b/up"} & set(links)
        assert git("show", f"{sha}:alias", cwd=env.hub) == "pkg/core.py"


# -- size and count limits -------------------------------------------------------------


async def test_a_200_mb_file_is_refused_naming_it(env: Env) -> None:
    limits = Limits(memory_mb=1024, cpu_cores=1, processes=64, open_files=256, disk_mb=400, files=2000)
    hub_before = env.hub_state()
    async with env.provider(limits, max_file_bytes=10 * 1024 * 1024).open(env.spec) as sb:
        # 10 MB exactly is allowed; 200 MB is not
        await run_ok(sb, "truncate -s 200M big.bin && truncate -s 10M edge.bin && echo small > ok.txt")
        assert (sb.checkout / "big.bin").stat().st_size == 200 * 1024 * 1024
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("add a huge binary")
        assert "files larger than 10 MB" in info.value.rule
        assert info.value.paths == ["big.bin (200 MB)"]
        assert "big.bin" in str(info.value)
    assert env.hub_state() == hub_before
    assert not env.branch_exists()


async def test_20000_new_files_are_refused_by_the_file_count_rule(fast_env: Env) -> None:
    env = fast_env
    limits = Limits(memory_mb=1024, cpu_cores=1, processes=64, open_files=256, disk_mb=400, files=50_000)
    hub_before = env.hub_state()
    async with env.provider(limits, max_changed_files=5000).open(env.spec) as sb:
        r = await sb.exec("mkdir gen && cd gen && seq -f 'f%g' 1 20000 | xargs touch && ls | wc -l", 60)
        assert r.exit_code == 0 and r.limit is None, r
        assert r.stdout.strip() == "20000"
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("20,000 files")
        assert "more than 5000 changed files" in info.value.rule
        assert len(info.value.paths) == 20000
        assert "and 19990 more" in str(info.value)
    assert env.hub_state() == hub_before
    assert not env.branch_exists()


async def test_changed_file_count_boundary(env: Env) -> None:
    """The count is of all changes against the base: N passes, N + 1 is refused."""
    async with env.provider(max_changed_files=3).open(env.spec) as sb:
        await run_ok(sb, "echo 1 > a && echo 2 > b && echo changed > README.md")
        first = await sb.snapshot("three changes")
        assert first is not None
        await run_ok(sb, "echo 3 > c")
        with pytest.raises(SnapshotRefused) as info:
            await sb.snapshot("four changes")
        assert "more than 3 changed files" in info.value.rule
        assert sorted(info.value.paths) == ["README.md", "a", "b", "c"]
        # the branch still holds the last accepted commit
        assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=env.hub) == first


def test_nested_repositories_are_found_at_any_depth_but_not_in_skipped_or_linked_directories(tmp_path: Path) -> None:
    from longshot.sandboxes.snapshot import check_nested_repos

    checkout = tmp_path / "checkout"
    for d in (".git", "a/b/c/.git", "a/x", "file_repo", "node_modules/dep/.git", "real/inner/.git"):
        (checkout / d).mkdir(parents=True)
    (checkout / "file_repo" / ".git").write_text("gitdir: /elsewhere\n")
    (checkout / "a" / "x" / ".git").symlink_to(tmp_path)
    (checkout / "linked").symlink_to(checkout / "real")  # walked once, through "real" only
    with pytest.raises(SnapshotRefused) as info:
        check_nested_repos(checkout)
    assert info.value.paths == ["a/b/c", "a/x", "file_repo", "real/inner"]

    clean = tmp_path / "clean"
    (clean / ".git").mkdir(parents=True)
    (clean / "src" / "pkg").mkdir(parents=True)
    check_nested_repos(clean)  # the root's own .git is not nested
