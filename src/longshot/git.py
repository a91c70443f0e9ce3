"""An async wrapper over the git command line.

Every git process the orchestrator starts goes through `Git.run`, which disables hooks
and fsmonitor and forbids prompts, so nothing a worker wrote in a checkout is ever run on
the host by git. Errors become `GitError` (or `PushRejected`) with argv and stderr.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

from longshot.errors import GitError, PushRejected
from longshot.procs import run_process

SAFE_CONFIG: tuple[str, ...] = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.untrackedCache=false",
    "-c", "protocol.ext.allow=never",
    "-c", "advice.detachedHead=false",
    "-c", "init.defaultBranch=main",
)
"""Passed before every subcommand: these win over any repository or global config."""

_SHA = re.compile(r"^[0-9a-f]{40}$")
_BAD_REF_CHAR = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def is_sha(value: str) -> bool:
    return bool(_SHA.match(value))


def legal_branch_name(name: str) -> bool:
    """Whether ``name`` is a legal branch name (the rules of git check-ref-format)."""
    if not name or name in ("@", "HEAD") or len(name) > 200:
        return False
    if name.startswith(("/", "-")) or name.endswith(("/", ".")):
        return False
    if ".." in name or "//" in name or "@{" in name or _BAD_REF_CHAR.search(name):
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))


class Git:
    """Runs git for one repository (``cwd``), or for a separate git dir and work tree."""

    def __init__(
        self,
        cwd: Path,
        *,
        git_dir: Path | None = None,
        work_tree: Path | None = None,
        author: tuple[str, str] = ("Longshot", "longshot@localhost"),
    ) -> None:
        self.cwd = cwd
        self.git_dir = git_dir
        self.work_tree = work_tree
        name, email = author
        self._env = {
            **_base_env(),
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    def with_index(self, index: Path) -> Git:
        """The same repository, with ``index`` as its index file (a scratch index to build a
        tree in, leaving the real index and the work tree alone)."""
        other = copy.copy(self)
        other._env = {**self._env, "GIT_INDEX_FILE": str(index)}
        return other

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        argv = ["git", *SAFE_CONFIG]
        if self.git_dir is not None:
            argv.append(f"--git-dir={self.git_dir}")
        if self.work_tree is not None:
            argv.append(f"--work-tree={self.work_tree}")
        return [*argv, *args]

    async def run(self, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
        """Run a git subcommand and return its stdout (stripped of the final newline)."""
        code, out, err = await self.run_full(*args, stdin=stdin)
        if check and code != 0:
            argv = self._argv(args)
            if args and args[0] == "push" and ("rejected" in err or "fetch first" in err):
                raise PushRejected(argv, code, err)
            raise GitError(argv, code, err)
        return out.rstrip("\n")

    async def run_full(self, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
        """Run a git subcommand; return (exit code, stdout, stderr) without raising."""
        argv = self._argv(args)
        self.cwd.mkdir(parents=True, exist_ok=True)
        code, out, err = await run_process(argv, cwd=self.cwd, env=self._env, stdin=stdin)
        return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    async def rev_parse(self, rev: str) -> str | None:
        """The commit ``rev`` names, or None if it does not exist."""
        code, out, _ = await self.run_full("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        return out.strip() if code == 0 else None

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        code, _, _ = await self.run_full("merge-base", "--is-ancestor", ancestor, descendant)
        return code == 0

    async def update_ref(self, ref: str, new: str, old: str | None) -> None:
        """Compare-and-swap a ref: fails unless it still points at ``old`` (None: must not exist)."""
        await self.run("update-ref", ref, new, old if old is not None else "0" * 40)


def _base_env() -> dict[str, str]:
    """The host environment minus anything that would make git prompt or run user code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        GIT_CONFIG_NOSYSTEM="1",
        LC_ALL="C",
    )
    return env


async def trailers(git: Git, rev_range: str, key: str = "Longshot-Task") -> list[tuple[str, str]]:
    """(commit, value) for every commit in ``rev_range`` carrying the trailer ``key``."""
    fmt = f"%H%x00%(trailers:key={key},valueonly,separator=%x01)%x00"
    out = await git.run("log", f"--format={fmt}", rev_range)
    found: list[tuple[str, str]] = []
    for record in out.split("\x00\n"):
        parts = record.strip("\n").split("\x00")
        if len(parts) >= 2 and parts[1]:
            for value in parts[1].split("\x01"):
                found.append((parts[0], value.strip()))
    return found


async def with_markers(git: Git, tip: str, source: str, message: str) -> str:
    """A commit on ``tip`` holding ``source``'s change merged in, conflict markers left in place."""
    code, out, err = await git.run_full("merge-tree", "--write-tree", "--name-only", "--no-messages", tip, source)
    if code not in (0, 1) or not out:
        raise GitError(["merge-tree", tip, source], code, err)
    return await git.run("commit-tree", out.splitlines()[0].strip(), "-p", tip, "-m", message)
