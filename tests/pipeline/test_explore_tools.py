"""The planner's read-only tools on a real repository: what each answers (pages, directories,
globs, matches), paths kept inside the repository, and the git tool refusing what could
write a file or run a program, abbreviated options included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longshot.git import Git
from longshot.pipeline.explore import FORBIDDEN_OPTIONS, GIT_SUBCOMMANDS, Explorer, check_git_argv
from longshot.testing.repos import git, make_remote
from longshot.tools.toolbox import ToolCallError

FILES = {"README.md": "Hello\nworld\n", "src/app.py": "def main():\n    return 'Hello'\n",
         "src/util/deep.py": "X = 1\n", "tests/test_app.py": "def test_main():\n    pass\n",
         "docs/a.txt": "\n".join(f"line {i}" for i in range(1, 11)) + "\n"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A clone with a work tree: the worst case (the hub itself is bare)."""
    work = tmp_path / "work"
    git("clone", "--quiet", str(make_remote(tmp_path, FILES)), str(work), cwd=tmp_path)
    return work


async def call(repo: Path, tool: str, **args: object) -> tuple[bool, str]:
    tip = git("rev-parse", "HEAD", cwd=repo)

    async def at_tip() -> str:
        return tip

    out = await Explorer(Git(repo), at_tip).call(tool, json.dumps(args))
    return out.ok, out.text


async def test_read_gives_numbered_pages_and_says_how_to_read_on(repo: Path) -> None:
    ok, text = await call(repo, "read", path="docs/a.txt", offset=3, limit=2)
    assert ok and text == "     3\tline 3\n     4\tline 4\n[lines 3-4 of 10; read on with offset=5]"
    ok, text = await call(repo, "read", path="docs/a.txt", offset=9)
    assert ok and text.endswith("10\tline 10") and "read on" not in text


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", ".git/config", "src/../../x"])
async def test_paths_outside_the_repository_are_refused(repo: Path, path: str) -> None:
    for tool in ("read", "ls"):
        ok, text = await call(repo, tool, path=path)
        assert not ok and text.startswith("error: path must stay inside the repository")


async def test_a_missing_file_is_an_error_and_an_empty_directory_listing_says_so(repo: Path) -> None:
    ok, text = await call(repo, "read", path="nope.md")
    assert not ok and text.startswith("error: cannot read nope.md")
    ok, text = await call(repo, "ls", path="nowhere")
    assert ok and text == "no such directory: nowhere"


async def test_ls_marks_directories(repo: Path) -> None:
    assert await call(repo, "ls") == (True, "README.md\ndocs/\nsrc/\ntests/")
    assert await call(repo, "ls", path="src") == (True, "app.py\nutil/")


@pytest.mark.parametrize(("pattern", "path", "found"), [
    ("*.py", None, "src/app.py\nsrc/util/deep.py\ntests/test_app.py"),  # a name glob, at any depth
    ("src/**/*.py", None, "src/app.py\nsrc/util/deep.py"),
    ("test_*.py", "tests", "tests/test_app.py"),
    ("*.py", "src/util", "src/util/deep.py"),
    ("*.rs", None, "no files match"),
])
async def test_find_matches_names_or_paths(repo: Path, pattern: str, path: str | None, found: str) -> None:
    args = {"pattern": pattern} | ({"path": path} if path else {})
    assert await call(repo, "find", **args) == (True, found)


async def test_grep_prints_file_line_and_text_within_a_path_or_glob(repo: Path) -> None:
    ok, text = await call(repo, "grep", pattern="hello", ignore_case=True)
    assert ok and text.splitlines() == ["README.md:1:Hello", "src/app.py:2:    return 'Hello'"]
    assert await call(repo, "grep", pattern="Hello", path="src") == (True, "src/app.py:2:    return 'Hello'")
    assert await call(repo, "grep", pattern="def", glob="tests/*.py") == (True, "tests/test_app.py:1:def test_main():")
    assert await call(repo, "grep", pattern="absent") == (True, "no matches")
    ok, text = await call(repo, "grep", pattern="(unclosed")
    assert not ok and text.startswith("error: grep failed")


async def test_the_git_tool_runs_read_only_commands_with_their_exit_code(repo: Path) -> None:
    ok, text = await call(repo, "git", args="git log --format=%s -n 1")
    assert ok and text == "exit code: 0\ninitial commit\n"
    ok, text = await call(repo, "git", args="show HEAD:missing.txt")
    assert ok and text.startswith("exit code: 128") and "stderr:" in text


@pytest.mark.parametrize("args", [
    "commit -m x", "push origin main", "config core.pager sh", "-c core.pager=sh log", "", "git",
    "log --output=/tmp/x", "log --output /tmp/x", "diff --ext-diff", "cat-file --textconv HEAD:a",
    "grep -O cat -e x", "grep -iO -e x", "log --exec=sh", "log 'unclosed",
    "grep --open=touch -e x", "grep --open-files=touch -e x", "cat-file --filt HEAD:README.md",
    "log --outp=/tmp/x", "rev-list --upload-p=x HEAD", "log --conf", "log --exec-p",
])
def test_git_arguments_that_could_write_run_or_reconfigure_are_refused(args: str) -> None:
    with pytest.raises(ToolCallError):
        check_git_argv(args)


@pytest.mark.parametrize("args", [
    "log --oneline -n 5", "show --stat HEAD", "diff --name-only HEAD~0", "grep -n -e x HEAD",
    "log --format=%H --author=someone", "blame -- src/--output", "ls-tree -r --name-only HEAD",
    "log --name-status", "shortlog -sn HEAD", "log --grep=fix",
])
def test_ordinary_read_only_arguments_pass(args: str) -> None:
    argv = check_git_argv(args)
    assert argv[0] in GIT_SUBCOMMANDS and argv == args.split()


async def test_an_abbreviated_pager_option_runs_nothing(repo: Path, tmp_path: Path) -> None:
    """git accepts unique prefixes of long options; ``--open`` is ``--open-files-in-pager``."""
    marker = tmp_path / "ran"
    ok, text = await call(repo, "git", args=f"grep --open='touch {marker}' -e Hello")
    assert not ok and "not allowed" in text
    assert not marker.exists()
    assert "--open-files-in-pager" in FORBIDDEN_OPTIONS


@pytest.mark.parametrize("args", [
    "diff --no-index /dev/null /etc/hostname", "diff --no-index -- a.txt b.txt", "diff --no-ind x y",
    "blame --ignore-revs-file=revs.txt HEAD -- README.md", "blame --contents notes.txt -- README.md",
    "diff --orderfile=order.txt HEAD", "log -- /etc", "show HEAD -- ../x", "log ~/.ssh", "diff HEAD -- src/../../x",
    "log --format=x -- ..", "cat-file -p HEAD:../../secret",
])
def test_git_arguments_that_read_files_of_the_host_are_refused(args: str) -> None:
    with pytest.raises(ToolCallError):
        check_git_argv(args)


@pytest.mark.parametrize("args", ["log HEAD~3..HEAD", "diff HEAD~1 -- src/app.py", "show HEAD:src/app.py",
                                  "log main...HEAD --oneline", "log --format=%s -- src/util"])
def test_revisions_and_paths_inside_the_repository_pass(args: str) -> None:
    assert check_git_argv(args) == args.split()


async def test_a_host_file_is_not_read_through_the_git_tool(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "netrc"
    secret.write_text("machine example.com password hunter2\n")
    for args in [f"diff --no-index /dev/null {secret}", f"blame --ignore-revs-file {secret} HEAD -- README.md",
                 f"diff --no-index README.md {Path('..') / secret.name}"]:
        ok, text = await call(repo, "git", args=args)
        assert not ok and "hunter2" not in text
        assert "outside the repository" in text or "not allowed" in text


@pytest.mark.parametrize(("args", "refused"), [
    ("grep -f patterns.txt HEAD", True), ("grep -nf patterns.txt HEAD", True), ("grep -fpatterns.txt HEAD", True),
    ("grep --file=patterns.txt HEAD", True), ("blame -S revs.txt HEAD -- README.md", True),
    ("grep -e fix -n HEAD", False), ("grep -efoo HEAD", False), ("grep -n -i -e f HEAD", False),
    ("log -S fix", False), ("grep --files-with-matches -e x HEAD", False), ("blame -L 1,5 HEAD -- README.md", False),
])
def test_short_options_that_read_a_file_are_refused_wherever_they_sit_in_a_bundle(args: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ToolCallError, match="not allowed"):
            check_git_argv(args)
    else:
        assert check_git_argv(args) == args.split()


async def test_a_file_of_patterns_in_the_hub_is_not_read(repo: Path) -> None:
    (repo / ".git" / "patterns").write_text("[unclosed secret\n")  # beside the repository's objects
    for args in ["grep -f .git/patterns HEAD", "grep -nf.git/patterns HEAD"]:
        ok, text = await call(repo, "git", args=args)
        assert not ok and "secret" not in text
