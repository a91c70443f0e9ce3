"""Copy-on-write local sandboxes (`longshot.sandboxes.cow`, `longshot.sandboxes.overlay`), for real:
the kernel's overlayfs, bubblewrap, git. Skipped where this host cannot mount overlays."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from longshot.errors import SnapshotRefused
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.cow import OverlaySandbox
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.sandboxes.orphans import OWNER_FILE
from longshot.sandboxes.overlay import probe
from longshot.testing.repos import git, make_remote

with tempfile.TemporaryDirectory() as _probe_dir:
    WHY_NOT = probe(Path(_probe_dir)) if shutil.which("bwrap") else "bubblewrap is not installed"
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"no overlays here: {WHY_NOT}")

FILES = {"README.md": "# demo\n", "pkg/__init__.py": "", "pkg/core.py": "def f():\n    return 1\n",
         "old/a.txt": "a\n", "old/b.txt": "b\n", "swap": "file\n",
         ".gitignore": "*.log\n", "run.sh": "echo hi\n"}
FILES.update({f"many/f{i:03}.txt": f"{i}\n" for i in range(120)})


def setup_hub(tmp: Path) -> tuple[Path, str]:
    remote = make_remote(tmp, FILES)
    hub = tmp / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp)
    return hub, git("rev-parse", "refs/heads/main", cwd=hub)


def provider(tmp: Path, **kw: object) -> LocalSandboxProvider:
    return LocalSandboxProvider(tmp / "work", LocalOptions(overlay="on", **kw))  # type: ignore[arg-type]


def spec(hub: Path, base: str, task: str = "t1") -> SandboxSpec:
    return SandboxSpec(task_id=task, branch=f"worker/{task}", base_commit=base, hub=hub)


def tree(hub: Path, sha: str) -> dict[str, str]:
    out = git("ls-tree", "-r", "--format=%(objectmode) %(path)", sha, cwd=hub)
    return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in out.splitlines()}


def show(hub: Path, sha: str, path: str) -> str:
    return git("show", f"{sha}:{path}", cwd=hub)


async def test_sandboxes_share_one_read_only_base_and_write_only_their_own_upper(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    p = provider(tmp_path)
    async with p.open(spec(hub, base, "t1")) as one, p.open(spec(hub, base, "t2")) as two:
        assert isinstance(one, OverlaySandbox) and isinstance(two, OverlaySandbox)
        r = await one.exec("echo changed > README.md && rm -r old && echo new > pkg/new.py && ls many | wc -l", 30)
        assert r.exit_code == 0, r.stderr
        assert r.stdout.strip() == "120"
        assert (await two.read_file("README.md")) == b"# demo\n"  # the other sandbox is untouched
        assert await two.list_dir("old") == ["a.txt", "b.txt"]
        assert (await one.read_file("pkg/new.py")) == b"new\n"
        bases = os.listdir(tmp_path / "work" / "bases")
        assert bases == [base]
        lower = tmp_path / "work" / "bases" / base / "tree"
        assert (lower / "README.md").read_text() == "# demo\n" and (lower / "old" / "a.txt").exists()
        # What the sandbox holds on its own disk is what it wrote, not the repository.
        upper = sorted(str(f.relative_to(one.upper)) for f in one.upper.rglob("*"))
        assert upper == ["README.md", "old", "pkg", "pkg/new.py"]
        assert oct(os.stat(tmp_path / "work" / "bases").st_mode & 0o777) == "0o700"
    assert os.listdir(tmp_path / "work" / "tasks") == []
    assert not any(os.path.ismount(m.split()[1]) for m in Path("/proc/mounts").read_text().splitlines()
                   if str(tmp_path) in m)


async def test_snapshot_from_upper_records_every_kind_of_change(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    async with provider(tmp_path).open(spec(hub, base)) as sb:
        script = ("echo more >> README.md && rm -rf old && rm swap && mkdir swap && echo in > swap/x && "
                  "rm -r pkg && mkdir pkg && echo fresh > pkg/core.py && chmod +x run.sh && "
                  "echo ignored > new.log && ln -s pkg/core.py link && "
                  "mkdir -p node_modules/m && echo j > node_modules/m/i.js && rm many/f007.txt")
        r = await sb.exec(script, 30)
        assert r.exit_code == 0, r.stderr
        sha = await sb.snapshot("first")
        assert sha is not None
        files = tree(hub, sha)
        assert "old/a.txt" not in files and "old/b.txt" not in files
        assert files["swap/x"] == "100644" and "swap" not in files
        assert sorted(p for p in files if p.startswith("pkg/")) == ["pkg/core.py"]  # an opaque directory
        assert files["run.sh"] == "100755" and files["link"] == "120000"
        assert "new.log" not in files and "node_modules/m/i.js" not in files  # ignored, as with git add
        assert show(hub, sha, "README.md") == "# demo\nmore" and "many/f007.txt" not in files
        assert len([p for p in files if p.startswith("many/")]) == 119
        assert await sb.snapshot("nothing new") is None
        # Created after the first snapshot, then deleted: gone from the next one (not in upper/).
        assert (await sb.exec("echo t > temp.txt", 30)).exit_code == 0
        second = await sb.snapshot("second")
        assert second is not None and "temp.txt" in tree(hub, second)
        assert (await sb.exec("rm temp.txt", 30)).exit_code == 0
        third = await sb.snapshot("third")
        assert third is not None and "temp.txt" not in tree(hub, third)
        assert git("rev-parse", "refs/heads/worker/t1", cwd=hub) == third
        assert git("rev-list", "--count", f"{base}..{third}", cwd=hub) == "3"


@pytest.mark.parametrize("script, rule", [
    ("ln -s /etc/passwd leak", "symlinks must point inside"),
    ("ln -s ../../x pkg/up", "symlinks must point inside"),
    ("mkdir -p vendor/lib && git init -q vendor/lib", "nested repositories"),
    ("mkdir -p old/sub && echo gitdir: /x > old/sub/.git", "nested repositories"),
    ("head -c 3000000 /dev/zero > big.bin", "larger than"),
    # 0.9 MB on disk, 2.7 MB as a blob: git add re-encodes Shift_JIS half-width katakana (one
    # byte each) as UTF-8 (three bytes each), so the file's size alone would let it through
    ("echo 'kana.txt working-tree-encoding=SHIFT-JIS' > .gitattributes && "
     "head -c 900000 /dev/zero | tr '\\0' '\\261' > kana.txt", "larger than"),
    ("for i in $(seq 1 30); do echo $i > n$i; done", "changed files"),
])
async def test_snapshot_from_upper_keeps_the_snapshot_rules(tmp_path: Path, script: str, rule: str) -> None:
    hub, base = setup_hub(tmp_path)
    p = provider(tmp_path, max_file_bytes=2 * 1024 * 1024, max_changed_files=20)
    async with p.open(spec(hub, base)) as sb:
        assert (await sb.exec(script, 30)).exit_code == 0
        with pytest.raises(SnapshotRefused, match=rule):
            await sb.snapshot("refused")
        assert await sb.peek([base], "peek") is None
    assert git("branch", "--list", "worker/t1", cwd=hub) == ""


async def test_disk_guard_counts_what_the_task_wrote_not_the_repository(tmp_path: Path) -> None:
    """The repository alone (130 files) is over this file cap: a checkout would be refused every command."""
    hub, base = setup_hub(tmp_path)
    p = provider(tmp_path, limits=Limits(files=60))
    async with p.open(spec(hub, base)) as sb:
        ok = await sb.exec("echo x > one.txt", 30)
        assert ok.exit_code == 0 and ok.limit is None
        over = await sb.exec("mkdir lots && for i in $(seq 1 80); do echo $i > lots/$i; done", 30)
        assert over.limit is not None and "SANDBOX_MAX_FILES" in over.limit


async def test_peek_and_put_tree_work_through_the_overlay(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    async with provider(tmp_path).open(spec(hub, base)) as sb:
        assert (await sb.exec("echo w > worker.txt && rm old/a.txt", 30)).exit_code == 0
        peek = await sb.peek([base], "peek")
        assert peek is not None
        assert "worker.txt" in tree(hub, peek.commit) and "old/a.txt" not in tree(hub, peek.commit)
        assert git("branch", "--list", "worker/t1", cwd=hub) == ""  # a peek moves no branch
        other = git("commit-tree", git("rev-parse", f"{base}^{{tree}}", cwd=hub), "-m", "x", cwd=hub)
        await sb.put_tree(git("rev-parse", f"{other}^{{tree}}", cwd=hub))
        assert (await sb.read_file("old/a.txt")) == b"a\n"
        assert await sb.list_dir(".") == sorted(await sb.list_dir("."))
        assert "worker.txt/" not in await sb.list_dir(".") and "worker.txt" not in await sb.list_dir(".")


async def test_overlay_off_or_unisolated_uses_a_checkout_and_says_why(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    for opts, why in (({"overlay": "off"}, "SANDBOX_OVERLAY=off"), ({"overlay": "auto", "isolation": "none"},
                                                                     "SANDBOX_ISOLATION=none")):
        p = LocalSandboxProvider(tmp_path / "work", LocalOptions(**opts))  # type: ignore[arg-type]
        assert f"a full checkout per sandbox (copy-on-write unavailable: {why}" in p.describe().description
        async with p.open(spec(hub, base)) as sb:
            assert type(sb) is LocalSandbox
            assert (await sb.read_file("README.md")) == b"# demo\n"
    assert not (tmp_path / "work" / "bases").exists()


async def test_a_dead_runs_overlay_sandbox_is_salvaged_even_unmounted(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    p = provider(tmp_path)
    async with p.open(spec(hub, base)) as sb:
        assert (await sb.exec("echo late > late.txt && rm README.md", 30)).exit_code == 0
        root, layers = sb.root, sb.work.parent
        subprocess.run(["umount", str(sb.checkout)], check=True)  # as after a reboot
        for source, dest in ((root, tmp_path / "kept"), (layers, tmp_path / "kept-layers")):
            subprocess.run(["cp", "-a", str(source), str(dest)], check=True)  # whiteouts too
    root = root.parent / "t1-999999999-1"  # a run whose process is gone
    shutil.move(str(tmp_path / "kept"), str(root))
    shutil.move(str(tmp_path / "kept-layers"), str(layers.parent / root.name))
    (root / OWNER_FILE).write_text(f"{socket.gethostname()}/999999999/0")
    later = provider(tmp_path)
    found = await later.recover(hub, lambda branch: f"salvaged {branch}")
    assert [f.branch for f in found] == ["worker/t1"] and found[0].commit is not None
    files = tree(hub, found[0].commit)
    assert "late.txt" in files and "README.md" not in files and "pkg/core.py" in files
    assert not root.exists()
    # Only what this test left: the sweep also removes other dead runs' socket folders in /tmp.
    swept = [s for s in await later.sweep_orphans() if str(tmp_path) in s]
    assert swept == [f"overlay layers {layers.parent / root.name}", f"unused base tree {tmp_path / 'work' / 'bases' / base}"]
    assert not (layers.parent / root.name).exists() and os.listdir(tmp_path / "work" / "bases") == []


DRIVER = """
import asyncio, sys, time
from pathlib import Path
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
async def main():
    p = LocalSandboxProvider(Path(sys.argv[1]), LocalOptions(overlay="on"))
    spec = SandboxSpec(task_id="killed", branch="worker/killed", base_commit=sys.argv[3], hub=Path(sys.argv[2]))
    async with p.open(spec) as sb:
        await sb.exec("echo unsaved > work.txt", 30)
        print(sb.checkout, flush=True)
        time.sleep(600)
asyncio.run(main())
"""


def test_a_killed_orchestrator_leaves_no_overlay_mounted(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "work"), str(hub), base],
                              stdout=subprocess.PIPE, text=True)
    try:
        checkout = driver.stdout.readline().strip() if driver.stdout else ""
        assert checkout and os.path.ismount(checkout)
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        deadline = time.monotonic() + 20
        while os.path.ismount(checkout) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.ismount(checkout), "the dead orchestrator's overlay is still mounted"
        assert (Path(checkout) / "work.txt").read_text() == "unsaved\n"  # kept for the next run to salvage
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


async def test_a_base_tree_goes_when_its_last_sandbox_closes_and_a_newer_one_exists(tmp_path: Path) -> None:
    hub, base = setup_hub(tmp_path)
    tip = git("commit-tree", git("rev-parse", f"{base}^{{tree}}", cwd=hub), "-p", base, "-m", "next", cwd=hub)
    bases = tmp_path / "work" / "bases"
    p = provider(tmp_path)
    async with p.open(spec(hub, base, "old")) as old:
        async with p.open(spec(hub, tip, "new")):
            assert sorted(os.listdir(bases)) == sorted([base, tip])
        assert sorted(os.listdir(bases)) == sorted([base, tip])  # the newest stays for the next task
        assert (await old.read_file("README.md")) == b"# demo\n"
    assert os.listdir(bases) == [tip]


def _next_commit(tmp: Path, hub: Path) -> str:
    """A second base on the hub: one file changed, one made executable, one gone, one new in a new folder."""
    work = tmp / "next"
    git("clone", "--quiet", str(hub), str(work), cwd=tmp)
    (work / "pkg" / "core.py").write_text("def f():\n    return 2\n")
    (work / "run.sh").chmod(0o755)
    (work / "old" / "a.txt").unlink()
    (work / "fresh" / "deep").mkdir(parents=True)
    (work / "fresh" / "deep" / "n.txt").write_text("new\n")
    git("add", "--all", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "next", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


async def test_a_new_base_is_derived_from_one_in_use_without_touching_it(tmp_path: Path) -> None:
    """A moving target's next tip shares every unchanged file with the last base (hard links):
    no checkout of the whole repository per landing, and the older base, under open
    sandboxes, keeps its files byte for byte."""
    hub, first = setup_hub(tmp_path)
    second = _next_commit(tmp_path, hub)
    p = provider(tmp_path)
    async with p.open(spec(hub, first, "t1")) as old:
        async with p.open(spec(hub, second, "t2")) as new:
            bases = tmp_path / "work" / "bases"
            a, b = bases / first / "tree", bases / second / "tree"
            assert (a / "many/f007.txt").stat().st_ino == (b / "many/f007.txt").stat().st_ino  # linked, not copied
            assert (b / "pkg/core.py").stat().st_ino != (a / "pkg/core.py").stat().st_ino
            # the old base as it was; the new one as its commit says
            assert (a / "pkg/core.py").read_text() == "def f():\n    return 1\n" and (a / "old/a.txt").is_file()
            assert not os.access(a / "run.sh", os.X_OK) and os.access(b / "run.sh", os.X_OK)
            seen = await new.exec("cat pkg/core.py fresh/deep/n.txt; test ! -e old/a.txt && echo gone", 30)
            assert seen.stdout == "def f():\n    return 2\nnew\ngone\n", seen
            assert (await old.exec("cat pkg/core.py old/a.txt", 30)).stdout == "def f():\n    return 1\na\n"
            # what the derivation wrote is the sandbox's to change, as a checkout's files are
            wrote = await new.exec("echo more >> pkg/core.py && echo x > fresh/deep/m.txt && echo y >> many/f007.txt", 30)
            assert wrote.exit_code == 0, wrote
            sha = await new.snapshot("changed")
            assert sha is not None and show(hub, sha, "fresh/deep/m.txt") == "x"
            assert (a / "many/f007.txt").read_text() == "7\n" == (b / "many/f007.txt").read_text()
            assert tree(hub, sha)["run.sh"] == "100755"
