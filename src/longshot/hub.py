"""The hub: the orchestrator's own bare clone of ``GIT_REPO_URL``.

Worker branches are fetched into the hub, the merge queue builds landing commits there
without a checkout, and the target branch is pushed back with a fast-forward-only push
(the remote side of the compare-and-swap). The hub's target branch only ever moves to
what the remote accepted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from longshot.errors import ConfigError, GitError
from longshot.git import Git


class Hub:
    """A bare clone with remote ``origin`` = the target repository."""

    def __init__(self, path: Path, url: str, branch: str, author: tuple[str, str]) -> None:
        self.path = path
        self.url = url
        self.branch = branch
        self.git = Git(path, author=author)

    @classmethod
    def location(cls, work_dir: Path, url: str) -> Path:
        return work_dir / f"hub-{hashlib.sha256(url.encode()).hexdigest()[:12]}"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    async def open(self) -> str:
        """Create or refresh the hub; return the target branch tip."""
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            await self.git.run("init", "--quiet", "--bare")
            await self.git.run("remote", "add", "origin", self.url)
        else:
            await self.git.run("remote", "set-url", "origin", self.url)
        try:
            await self.git.run("fetch", "--quiet", "--no-tags", "origin",
                               f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        except GitError as e:
            raise ConfigError(
                f"GIT_REPO_URL: cannot fetch branch {self.branch!r} from {self.url}: {e.stderr.strip()[-300:]}. "
                "Fix: point GIT_REPO_URL at a git repository that has this branch, or set GIT_MAIN_BRANCH."
            ) from e
        remote_tip = await self.git.rev_parse(f"refs/remotes/origin/{self.branch}")
        assert remote_tip is not None
        await self.git.run("update-ref", self.ref, remote_tip)
        return remote_tip

    async def tip(self) -> str:
        tip = await self.git.rev_parse(self.ref)
        assert tip is not None, "the hub lost its target branch"
        return tip

    async def push_tip(self, new: str, old: str) -> None:
        """Publish ``new`` (a descendant of ``old``): remote first, then the hub ref, both CAS.

        Raises PushRejected when the remote branch moved; call `refresh` and rebuild.
        """
        await self.git.run("push", "--quiet", "--porcelain", "origin", f"{new}:{self.ref}")
        await self.git.update_ref(self.ref, new, old)
        await self.git.run("update-ref", f"refs/remotes/origin/{self.branch}", new)

    async def refresh(self) -> str:
        """Fetch the remote's branch after a rejected push; move the hub to it; return it."""
        old = await self.tip()
        await self.git.run("fetch", "--quiet", "--no-tags", "origin",
                           f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        remote = await self.git.rev_parse(f"refs/remotes/origin/{self.branch}")
        assert remote is not None
        if not await self.git.is_ancestor(old, remote):
            raise GitError(["fetch"], 1, f"the remote {self.branch} was rewritten: {old[:10]} is not an ancestor of {remote[:10]}")
        await self.git.update_ref(self.ref, remote, old)
        return remote

    async def files(self, rev: str) -> list[str]:
        out = await self.git.run("ls-tree", "-r", "--name-only", rev)
        return out.splitlines() if out else []

    async def show(self, rev: str, path: str) -> str | None:
        code, out, _ = await self.git.run_full("show", f"{rev}:{path}")
        return out if code == 0 else None
