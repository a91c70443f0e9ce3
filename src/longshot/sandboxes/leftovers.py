"""Sandboxes a dead run left behind: salvage their work, then remove them.

A local sandbox directory is named ``<task>-<pid>-<n>``. When process ``pid`` is gone (the
orchestrator was killed: its sandboxes died with it, but their checkouts stayed on disk),
whatever the worker had written is committed to the task's branch in the hub with the
usual snapshot rules (escaping symlinks, nested repositories, size and count limits) and
the directory is removed. Work that breaks a rule cannot be committed; it is moved to
``set-aside/`` beside the tasks directory and reported, never deleted. Stale git locks and
unfinished operations in the sandbox's own git directory are cleared first.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from longshot.errors import LongshotError
from longshot.git import Git
from longshot.sandboxes.base import Leftover, SandboxSpec
from longshot.sandboxes.orphans import owner_dead

STALE_GIT = ("index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "MERGE_HEAD", "MERGE_MSG",
             "CHERRY_PICK_HEAD", "REBASE_HEAD", "rebase-merge", "rebase-apply")


class Salvager(Protocol):
    """A sandbox reopened on a dead run's directory (`LocalSandbox`): commits what is there."""

    async def snapshot(self, message: str) -> str | None: ...

    def close(self) -> None: ...


async def recover_leftovers(tasks: Path, hub: Path, message: Callable[[str], str],
                            reopen: Callable[[Path, SandboxSpec], Salvager]) -> list[Leftover]:
    """Salvage and remove every sandbox directory in ``tasks`` whose run is dead (see the module
    docstring); ``reopen`` makes the sandbox that commits a directory's work."""
    found: list[Leftover] = []
    for root in sorted(tasks.iterdir()) if tasks.is_dir() else []:
        if not root.is_dir() or not owner_dead(root):
            continue
        gitdir = root / "git"
        for name in STALE_GIT:
            stale = gitdir / name
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
        git = Git(root, git_dir=gitdir, work_tree=root / "checkout")
        code, branch, _ = await git.run_full("symbolic-ref", "--short", "-q", "HEAD") if gitdir.is_dir() else (1, "", "")
        branch = branch.strip()
        head = await git.rev_parse("HEAD") if code == 0 else None
        text = message(branch) if branch and head else ""
        if not text:  # a check sandbox, or one that never got its checkout: nothing to keep
            shutil.rmtree(root, ignore_errors=True)
            found.append(Leftover(name=root.name, branch=branch or None))
            continue
        spec = SandboxSpec(task_id=root.name, branch=branch, base_commit=head or "", hub=hub)
        sandbox = reopen(root, spec)
        try:
            commit = await sandbox.snapshot(text)
            if commit is None and head and not await _holds(Git(hub), branch, head):
                await Git(hub).run("fetch", "--quiet", "--no-tags", str(gitdir), f"+refs/heads/{branch}:refs/heads/{branch}")
                commit = head  # committed before the crash, never brought into the hub
        except (LongshotError, OSError) as e:
            aside = tasks.parent / "set-aside" / root.name
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(root), str(aside))
            found.append(Leftover(name=root.name, branch=branch, error=f"{e}; kept in {aside}"))
            continue
        finally:
            sandbox.close()
        shutil.rmtree(root, ignore_errors=True)
        found.append(Leftover(name=root.name, branch=branch, commit=commit))
    return found


async def _holds(hub: Git, branch: str, head: str) -> bool:
    """Whether the hub's ``branch`` has ``head`` (a crash may come after the objects were copied
    into the hub and before the branch moved)."""
    tip = await hub.rev_parse(f"refs/heads/{branch}")
    return tip is not None and await hub.is_ancestor(head, tip)
