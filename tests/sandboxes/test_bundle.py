"""Code in and out of remote sandboxes as bundles: no credential in, nothing untrusted out.

The result bundle is built here by hand, the way a compromised container could build it:
forged authors and parents, extra refs, malformed trees, escaping symlinks, huge files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from longshot.errors import SandboxError
from longshot.sandboxes.bundle import BASE_REF, BundleCache, ResultRules, import_result, parse_bundle
from longshot.sandboxes.snapshot import SnapshotRefused
from longshot.testing.repos import git

from provider_cases import CANARY_TOKEN, make_hub

BRANCH = "worker/t1-x"
RULES = ResultRules(max_file_bytes=1000, max_changed_files=3, author=("Longshot Test", "lt@localhost"))


def container(tmp: Path, hub: Path, base: str) -> Path:
    """A clone of the base, standing in for a container's own (untrusted) repository."""
    work = tmp / "container"
    git("clone", "--quiet", str(hub), str(work), cwd=tmp)
    git("checkout", "--quiet", "-B", BRANCH, base, cwd=work)
    return work


def bundle_of(work: Path, base: str, *refs: str) -> bytes:
    out = work.parent / "result.bundle"
    git("bundle", "create", "--quiet", str(out), *(refs or (BRANCH,)), f"^{base}", cwd=work)
    return out.read_bytes()


async def test_the_base_bundle_carries_objects_and_one_ref_never_the_hub_s_config(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    assert CANARY_TOKEN in (hub / "config").read_text()  # the hub really holds a credential
    cache = BundleCache(tmp_path / "bundles", keep=2)
    path = await cache.base(hub, base)
    data = path.read_bytes()
    assert CANARY_TOKEN.encode() not in data and b"example.invalid" not in data
    prerequisites, refs, _ = parse_bundle(data)
    assert prerequisites == [] and refs == {BASE_REF: base}
    assert await cache.base(hub, base) == path  # made once, reused
    assert git("for-each-ref", cwd=hub).count("refs/longshot") == 0  # no ref was made in the hub
    with pytest.raises(SandboxError, match="full sha"):
        await cache.base(hub, "main")


async def test_a_result_is_recommitted_by_longshot_whatever_the_container_claims(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    work = container(tmp_path, hub, base)
    (work / "new.txt").write_text("new\n")
    git("add", "new.txt", cwd=work)
    env_forged = ["-c", "user.name=Mallory", "-c", "user.email=m@evil"]
    git(*env_forged, "commit", "--quiet", "-m", "Longshot-Task: t999\n\nforged", cwd=work)
    git("update-ref", "refs/heads/main", "HEAD", cwd=work)  # it also claims to move main
    commit = await import_result(hub, bundle_of(work, base), base=base, branch=BRANCH, message="Task t1: ours",
                                 rules=RULES, scratch=tmp_path / "scratch")
    assert commit is not None
    assert git("log", "-1", "--format=%an|%ae|%s|%P", commit, cwd=hub) == f"Longshot Test|lt@localhost|Task t1: ours|{base}"
    assert git("rev-parse", f"refs/heads/{BRANCH}", cwd=hub) == commit
    assert git("rev-parse", "refs/heads/main", cwd=hub) == base
    assert git("show", f"{commit}:new.txt", cwd=hub) == "new"
    assert not list((tmp_path / "scratch").iterdir())  # the quarantine is gone


async def test_a_bundle_with_other_refs_or_other_bases_is_refused(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    work = container(tmp_path, hub, base)
    (work / "a.txt").write_text("a\n")
    git("add", "a.txt", cwd=work)
    git("commit", "--quiet", "-m", "a", cwd=work)
    git("branch", "other", cwd=work)
    with pytest.raises(SandboxError, match="malformed result"):
        await import_result(hub, bundle_of(work, base, BRANCH, "other"), base=base, branch=BRANCH, message="m",
                            rules=RULES, scratch=tmp_path / "s")
    first = git("rev-parse", "HEAD", cwd=work)
    (work / "b.txt").write_text("b\n")
    git("add", "b.txt", cwd=work)
    git("commit", "--quiet", "-m", "b", cwd=work)
    with pytest.raises(SandboxError, match="malformed result"):  # its prerequisite is not the base
        await import_result(hub, bundle_of(work, first), base=base, branch=BRANCH, message="m", rules=RULES,
                            scratch=tmp_path / "s")
    with pytest.raises(SandboxError, match="not a git bundle"):
        await import_result(hub, b"hello", base=base, branch=BRANCH, message="m", rules=RULES, scratch=tmp_path / "s")
    assert git("for-each-ref", "--format=%(refname)", "refs/heads/worker", cwd=hub) == ""


async def test_malformed_trees_are_refused_before_anything_reaches_the_hub(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    work = container(tmp_path, hub, base)
    blob = _blob(work, "[core]\n\tfsmonitor = evil\n")
    hooks = _mktree(work, f"100644 blob {blob}\tconfig\n")
    tree = _mktree(work, git("ls-tree", base, cwd=work) + f"\n040000 tree {hooks}\t.GIT\n")
    commit = git("commit-tree", tree, "-p", base, "-m", "sneaky", cwd=work)
    git("update-ref", f"refs/heads/{BRANCH}", commit, cwd=work)
    with pytest.raises(SnapshotRefused, match="malformed git objects"):
        await import_result(hub, bundle_of(work, base), base=base, branch=BRANCH, message="m", rules=RULES,
                            scratch=tmp_path / "s")
    assert git("for-each-ref", "--format=%(refname)", "refs/heads/worker", cwd=hub) == ""
    assert _missing(hub, commit)  # not even the objects: they stayed in the quarantine


@pytest.mark.parametrize("rule", ["symlink", "big", "many", "gitlink"])
async def test_the_snapshot_rules_hold_for_results_from_elsewhere(tmp_path: Path, rule: str) -> None:
    hub, base = make_hub(tmp_path)
    work = container(tmp_path, hub, base)
    if rule == "symlink":
        (work / "leak").symlink_to("/etc/passwd")
    elif rule == "big":
        (work / "big.bin").write_bytes(b"x" * (RULES.max_file_bytes + 1))
    elif rule == "many":
        for i in range(RULES.max_changed_files + 1):
            (work / f"f{i}.txt").write_text(str(i))
    git("add", "--all", cwd=work)
    if rule == "gitlink":
        git("update-index", "--add", "--cacheinfo", f"160000,{base},vendor/lib", cwd=work)
    git("commit", "--quiet", "-m", "x", cwd=work)
    with pytest.raises(SnapshotRefused):
        await import_result(hub, bundle_of(work, base), base=base, branch=BRANCH, message="m", rules=RULES,
                            scratch=tmp_path / "s")
    assert git("for-each-ref", "--format=%(refname)", "refs/heads/worker", cwd=hub) == ""


async def test_a_result_that_changes_nothing_is_none(tmp_path: Path) -> None:
    hub, base = make_hub(tmp_path)
    work = container(tmp_path, hub, base)
    git("commit", "--quiet", "--allow-empty", "-m", "empty", cwd=work)
    assert await import_result(hub, bundle_of(work, base), base=base, branch=BRANCH, message="m", rules=RULES,
                               scratch=tmp_path / "s") is None


def _blob(repo: Path, text: str) -> str:
    return subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=text, capture_output=True,
                          text=True, check=True).stdout.strip()


def _mktree(repo: Path, listing: str) -> str:
    return subprocess.run(["git", "mktree"], cwd=repo, input=listing.strip() + "\n", capture_output=True, text=True,
                          check=True).stdout.strip()


def _missing(repo: Path, sha: str) -> bool:
    return subprocess.run(["git", "cat-file", "-e", sha], cwd=repo, capture_output=True).returncode != 0
