"""`legal_branch_name` against git itself, `Git.update_ref` compare-and-swap, `trailers`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longshot.errors import GitError
from longshot.git import Git, is_sha, legal_branch_name, trailers
from longshot.testing.repos import git, make_remote

_ORACLE_CWD = Path("/")  # not a repository: no @{-1} expansion, no repository config


def _git_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CEILING_DIRECTORIES": "/", "HOME": "/nonexistent", "LC_ALL": "C"}


def git_accepts_branch(name: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", "--branch", name], cwd=_ORACLE_CWD,
                          env=_git_env(), capture_output=True)
    return done.returncode == 0


def git_accepts_ref(name: str) -> bool:
    done = subprocess.run(["git", "check-ref-format", f"refs/heads/{name}"], cwd=_ORACLE_CWD,
                          env=_git_env(), capture_output=True)
    return done.returncode == 0


TRICKY = [
    "main", "worker/a", "worker/t1-fix-the-bug", "a..b", "x.lock", "worker/x.lock", "a.lock/b",
    "a/.b", ".a", "@", "a@{b", "@{", "a@{-1}", "a b", " a", "a ", "a\tb", "a\nb", "a\x7fb", "a~b",
    "a~1", "a^b", "a^", "a:b", "a?b", "a*b", "a[b", "a\\b", "a/", "worker/", "a.", "a/.", "-a", "-",
    "a//b", "//", "/a", "..", "a/..", "a..", "é", "日本/ブランチ", "worker/émoji-🎉", "a@b", "x@",
    "a{b", "a}b", "a-", "worker/-x", "refs/heads/x", "a.b", "a/.lock", "a.lock.b", "a/b/c",
]


@pytest.mark.parametrize("name", TRICKY, ids=repr)
def test_never_looser_than_git_check_ref_format_branch(name: str) -> None:
    if legal_branch_name(name):
        assert git_accepts_branch(name), f"legal_branch_name accepts {name!r}, git refuses it"


@pytest.mark.parametrize("name", ["main", "worker/a", "worker/t1-fix-the-bug", "é", "日本/ブランチ",
                                  "worker/émoji-🎉", "a@b", "a{b", "a-", "a.b", "a/b/c", "a.lock.b"],
                         ids=repr)
def test_accepts_ordinary_names_git_accepts(name: str) -> None:
    assert git_accepts_branch(name)
    assert legal_branch_name(name)


@pytest.mark.parametrize("name", ["a..b", "x.lock", "a/.b", "a@{b", "a b", "a~b", "a^b", "a:b", "a?b",
                                  "a*b", "a[b", "a\\b", "a/", "a.", "-a", "a//b", "/a", ".."],
                         ids=repr)
def test_rejects_what_git_rejects(name: str) -> None:
    assert not git_accepts_branch(name)
    assert not legal_branch_name(name)


def test_nul_and_empty_are_illegal() -> None:
    # git cannot even receive a NUL in argv; the function must refuse it on its own.
    assert not legal_branch_name("a\x00b")
    assert not legal_branch_name("worker/\x00")
    assert not legal_branch_name("")


def test_head_is_not_a_branch_name() -> None:
    """`git branch HEAD` / `check-ref-format --branch HEAD` refuse it."""
    assert not git_accepts_branch("HEAD")
    assert not legal_branch_name("HEAD")


_ALPHABET = st.one_of(
    st.sampled_from(list("ab/.-_@{}~^:?*[\\ \t\x7f\x01") + ["..", ".lock", "@{", "//", "é", "🎉"]),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ALPHABET, max_size=12).map("".join))
def test_property_legal_names_are_accepted_by_git(name: str) -> None:
    if legal_branch_name(name):
        assert git_accepts_ref(name), f"legal_branch_name accepts {name!r}, git refuses refs/heads/{name}"


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(st.tuples(st.text(max_size=10), st.text(max_size=10)).map(lambda t: t[0] + "\x00" + t[1]))
def test_property_nul_never_legal(name: str) -> None:
    assert not legal_branch_name(name)


# -- Git.update_ref ------------------------------------------------------------------


@pytest.fixture
def work_repo(tmp_path: Path) -> Path:
    remote = make_remote(tmp_path, {"README.md": "hello\n"})
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(remote), str(clone), cwd=tmp_path)
    return clone


def _commit(repo: Path, path: str, text: str, message: str) -> str:
    (repo / path).write_text(text)
    git("add", path, cwd=repo)
    git("commit", "--quiet", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


async def test_update_ref_compare_and_swap(work_repo: Path) -> None:
    g = Git(work_repo)
    base = await g.rev_parse("HEAD")
    assert base is not None and is_sha(base)
    second = _commit(work_repo, "a.txt", "a\n", "second")
    git("update-ref", "refs/heads/cas", base, cwd=work_repo)

    await g.update_ref("refs/heads/cas", second, base)
    assert await g.rev_parse("refs/heads/cas") == second

    with pytest.raises(GitError):
        await g.update_ref("refs/heads/cas", base, base)  # stale old value
    assert await g.rev_parse("refs/heads/cas") == second


async def test_update_ref_create_only_when_absent(work_repo: Path) -> None:
    g = Git(work_repo)
    head = await g.rev_parse("HEAD")
    assert head is not None
    await g.update_ref("refs/heads/fresh", head, None)
    assert await g.rev_parse("refs/heads/fresh") == head
    other = _commit(work_repo, "b.txt", "b\n", "other")
    with pytest.raises(GitError) as info:
        await g.update_ref("refs/heads/fresh", other, None)  # exists already
    assert info.value.returncode != 0
    assert await g.rev_parse("refs/heads/fresh") == head


async def test_rev_parse_missing_and_is_ancestor(work_repo: Path) -> None:
    g = Git(work_repo)
    base = await g.rev_parse("HEAD")
    assert await g.rev_parse("refs/heads/does-not-exist") is None
    child = _commit(work_repo, "c.txt", "c\n", "child")
    assert base is not None
    assert await g.is_ancestor(base, child)
    assert not await g.is_ancestor(child, base)


# -- trailers ------------------------------------------------------------------------


async def test_trailers_lists_commits_with_the_trailer(work_repo: Path) -> None:
    base = git("rev-parse", "HEAD", cwd=work_repo)
    c1 = _commit(work_repo, "one.txt", "1\n", "Add one\n\nBody text.\n\nLongshot-Task: task-001")
    _commit(work_repo, "plain.txt", "p\n", "No trailer here\n\nLongshot-Task is mentioned in prose only.")
    c3 = _commit(work_repo, "three.txt", "3\n", "Add three\n\nSigned-off-by: X <x@y>\nLongshot-Task: task-003")
    c4 = _commit(work_repo, "four.txt", "4\n", "Two of them\n\nLongshot-Task: a\nLongshot-Task: b")
    _commit(work_repo, "other.txt", "o\n", "Other trailer\n\nReviewed-by: someone")

    found = await trailers(Git(work_repo), f"{base}..HEAD")
    assert sorted(found) == sorted([(c1, "task-001"), (c3, "task-003"), (c4, "a"), (c4, "b")])
    # A range that excludes them finds nothing.
    assert await trailers(Git(work_repo), base) == []
    # Another key.
    assert [v for _, v in await trailers(Git(work_repo), f"{base}..HEAD", key="Reviewed-by")] == ["someone"]
