"""The hub: the orchestrator's own bare clone of ``GIT_REPO_URL``.

Worker branches are fetched into the hub, the merge queue builds landing commits there
without a checkout, and the target branch is pushed back with a fast-forward-only push
(the remote side of the compare-and-swap). The hub's target branch only ever moves to
what the remote accepted.

When ``GIT_REPO_URL`` is a non-bare local repository with the target branch checked out,
git refuses pushes to that branch, and the user's working tree must never be touched
behind their back. Then work lands on ``refs/longshot/result/<branch>`` in that repository
instead, and `deliver` fast-forwards the user's branch at the end only if their working
tree is clean and the branch did not move; otherwise it says how to get the result. In any local
working copy (a non-bare repository), worker branches are published under
``refs/longshot/branches/`` rather than as branches, so they never clutter the user's
``git branch``; elsewhere they are ``GIT_BRANCH_PREFIX`` branches of the remote.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path

from longshot.errors import ConfigError, GitError
from longshot.events import ResultReady
from longshot.git import Git
from longshot.ownfiles import own_changes

STALE_STATE = ("MERGE_HEAD", "MERGE_MSG", "MERGE_MODE", "CHERRY_PICK_HEAD", "REVERT_HEAD", "REBASE_HEAD",
               "rebase-merge", "rebase-apply", "BISECT_LOG")
"""Leftovers of an operation that never finished; a bare hub never starts one, so they are stale."""


class Hub:
    """A bare clone with remote ``origin`` = the target repository."""

    def __init__(self, path: Path, url: str, branch: str, author: tuple[str, str], *, prefix: str = "worker/",
                 own_paths: Sequence[str] = (), deliver_config: bool = False) -> None:
        self.path = path
        self.url = url
        self.branch = branch
        self.prefix = prefix
        self.own_paths = tuple(own_paths)
        """Paths the settings make Longshot read, besides `longshot.ownfiles.OWN_FILE` (see `deliver`)."""
        self.deliver_config = deliver_config
        """DELIVER_CONFIG_FILES=allow: `deliver` may bring a change to Longshot's own files into the work tree."""
        self.git = Git(path, author=author)
        self.checkout: Path | None = None
        """The user's work tree when the target is a local repository with the branch checked out."""
        self.working_copy = False
        """Whether the target is a local non-bare repository (worker branches go under refs/longshot/)."""
        self.repaired: list[str] = []
        """Stale locks and unfinished operations removed by `open` (said in a warning)."""
        self._tip: str | None = None
        """The target branch's commit as this hub last moved or read it. The hub is the one writer
        of its target branch during a run (`push_tip`, `refresh`, `set_tip`; the run lock keeps
        other processes out), so `tip` asks git only after a move failed."""
        self._trees: dict[str, str] = {}
        """Trees of recent commits (commits never change): see `tree`."""

    @classmethod
    def location(cls, work_dir: Path, url: str) -> Path:
        return work_dir / f"hub-{hashlib.sha256(url.encode()).hexdigest()[:12]}"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def published_ref(self) -> str:
        """Where landings are pushed in the target repository (see the module docstring)."""
        return f"refs/longshot/result/{self.branch}" if self.checkout else self.ref

    async def open(self) -> str:
        """Create or refresh the hub; return the target branch tip.

        Also fetches the run state (`longshot.pipeline.state`) and the worker branches, so a
        run can resume from the target repository alone. Call it only while holding the work
        directory's lock: stale git locks in the hub are removed here.
        """
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            await self.git.run("init", "--quiet", "--bare")
            await self.git.run("remote", "add", "origin", self.url)
        else:
            self.repaired = self._repair()
            await self.git.run("remote", "set-url", "origin", self.url)
        self.checkout = await self._checked_out()
        self.working_copy = self.checkout is not None or await self._non_bare()
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
        if self.checkout is not None:  # a run that landed work before: continue from its result
            await self.git.run_full("fetch", "--quiet", "--no-tags", "origin",
                                    f"+{self.published_ref}:refs/longshot/origin/result/{self.branch}")
            result = await self.git.rev_parse(f"refs/longshot/origin/result/{self.branch}")
            if result and await self.git.is_ancestor(remote_tip, result):
                remote_tip = result
        await self.git.run("update-ref", self.ref, remote_tip)
        self._tip = remote_tip
        # Non-forced: a branch the hub holds newer work on (not yet published) is kept as it is.
        await self.git.run_full("fetch", "--quiet", "--no-tags", "origin",
                                f"+refs/longshot/state/{self.branch}:refs/longshot/origin/state/{self.branch}",
                                f"{self.remote_branch(self.prefix)}*:refs/heads/{self.prefix}*")
        return remote_tip

    def remote_branch(self, branch: str) -> str:
        """Where worker branch ``branch`` lives in the target repository (see the module docstring)."""
        return f"refs/longshot/branches/{branch}" if self.working_copy else f"refs/heads/{branch}"

    async def _non_bare(self) -> bool:
        local = Path(self.url)
        if not local.is_dir():
            return False
        code, out, _ = await Git(local).run_full("rev-parse", "--is-bare-repository")
        return code == 0 and out.strip() == "false"

    def _repair(self) -> list[str]:
        """Remove stale lock files and unfinished operations left by a killed run."""
        found = sorted(p for p in [*self.path.glob("*.lock"), *(self.path / "refs").rglob("*.lock"),
                                   *(self.path / "objects" / "info").rglob("*.lock")] if p.is_file())
        found += [self.path / name for name in STALE_STATE if (self.path / name).exists()]
        for p in found:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        return [str(p.relative_to(self.path)) for p in found]

    async def _checked_out(self) -> Path | None:
        """The work tree where the target branch is checked out, for a local non-bare target."""
        local = Path(self.url)
        if not local.is_dir():
            return None
        user = Git(local)
        code, out, _ = await user.run_full("worktree", "list", "--porcelain")
        if code != 0:
            return None
        tree: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                tree = Path(line.removeprefix("worktree "))
            elif line == "bare":
                tree = None
            elif line == f"branch {self.ref}" and tree is not None:
                return tree
        return None

    async def deliver(self, *, landed: bool) -> ResultReady:
        """Where the result is and how to take it; for a checked-out local target, first
        fast-forward the user's branch to it when that is safe (``landed``: work landed).

        Never safe: a result that changes Longshot's own configuration (`longshot.ownfiles`),
        unless DELIVER_CONFIG_FILES=allow."""
        tip = await self.tip()
        if self.checkout is None:
            command = f"git pull {self.url} {self.branch}" if landed else ""
            return ResultReady(repo=self.url, branch=self.branch, ref=self.ref, commit=tip, moved=landed,
                               command=command, note=f"in {self.url}; pull it into your clone" if landed
                               else "nothing landed")
        result = ResultReady(repo=self.url, branch=self.branch, ref=self.published_ref, commit=tip, moved=False,
                             command=f"git -C {self.checkout} merge --ff-only {self.published_ref}")
        user = Git(self.checkout)
        theirs = await user.rev_parse(self.ref)
        if theirs == tip:
            return result.model_copy(update={"moved": landed, "command": "",
                                             "note": f"in {self.checkout}" if landed else "nothing landed"})
        if theirs is None or not await self.git.is_ancestor(theirs, tip):
            return result.model_copy(update={"note": f"{self.branch} moved in {self.checkout} during the run, so it "
                                                     "was left as it is (take the result with git merge)",
                                             "command": f"git -C {self.checkout} merge {self.published_ref}"})
        dirty = await user.run("status", "--porcelain", "--untracked-files=no")
        busy = [name for name in STALE_STATE if (self.checkout / ".git" / name).exists()]
        if dirty or busy:
            why = "uncommitted changes" if dirty else f"an unfinished {busy[0]}"
            return result.model_copy(update={"note": f"{self.checkout} has {why}, so {self.branch} was not updated"})
        own = [c.split(" (", 1)[0] for c in await own_changes(self.git, theirs, tip, self.own_paths)]
        if own and not self.deliver_config:
            return result.model_copy(update={"note": (
                f"{self.branch} in {self.checkout} was not fast-forwarded: the result changes {', '.join(own)}, "
                "Longshot's own configuration, which is never brought into your working copy unless "
                f"DELIVER_CONFIG_FILES=allow; review it: git -C {self.checkout} diff {theirs[:10]} "
                f"{self.published_ref} -- {' '.join(own)}")})
        code, _, err = await user.run_full("merge", "--ff-only", "--quiet", tip)
        if code != 0:
            return result.model_copy(update={
                "note": f"{self.branch} could not be fast-forwarded in {self.checkout} ({err.strip()[-200:]})"})
        return result.model_copy(update={"moved": True, "command": "",
                                         "note": f"{self.branch} in {self.checkout} was fast-forwarded to the result"})

    async def heads(self, *branches: str) -> dict[str, str]:
        """The commits of those of ``branches`` that exist in the hub, in one process."""
        out = await self.git.run("for-each-ref", "--format=%(refname)%00%(objectname)",
                                 *(f"refs/heads/{b}" for b in branches))
        wanted = set(branches)
        found = (line.split("\0") for line in out.splitlines())
        return {ref.removeprefix("refs/heads/"): sha for ref, sha in found if ref.removeprefix("refs/heads/") in wanted}

    async def tip(self) -> str:
        """The target branch's commit in the hub (no git process while the hub's own moves are known)."""
        if self._tip is None:
            tip = await self.git.rev_parse(self.ref)
            assert tip is not None, "the hub lost its target branch"
            self._tip = tip
        return self._tip

    async def tree(self, commit: str) -> str:
        """The tree of ``commit``; no git process for one the merge queue built (`remember_tree`)."""
        if (tree := self._trees.get(commit)) is None:
            tree = await self.git.run("rev-parse", f"{commit}^{{tree}}")
            self.remember_tree(commit, tree)
        return tree

    def remember_tree(self, commit: str, tree: str) -> None:
        """Note the tree of a commit just written (the last few hundred are kept)."""
        self._trees[commit] = tree
        if len(self._trees) > 256:
            del self._trees[next(iter(self._trees))]

    async def set_tip(self, new: str, old: str, *also: str) -> None:
        """Move the hub's target branch from ``old`` to ``new`` (compare-and-swap), and the refs
        ``also`` to ``new``, in one transaction (one process). A failed swap forgets the known tip."""
        lines = [f"update {self.ref} {new} {old}", *(f"update {ref} {new}" for ref in also)]
        try:
            await self.git.run("update-ref", "--stdin", stdin=("\n".join(lines) + "\n").encode())
        except GitError:
            self._tip = None
            raise
        self._tip = new

    async def push_tip(self, new: str, old: str) -> None:
        """Publish ``new`` (a descendant of ``old``): remote first, then the hub ref, both CAS.

        Raises PushRejected when the remote branch moved; call `refresh` and rebuild.
        """
        try:
            await self.git.run("push", "--quiet", "--porcelain", "origin", f"{new}:{self.published_ref}")
        except GitError:
            self._tip = None
            raise
        await self.set_tip(new, old, self._tracking)

    @property
    def _tracking(self) -> str:
        if self.checkout is not None:
            return f"refs/longshot/origin/result/{self.branch}"
        return f"refs/remotes/origin/{self.branch}"

    async def refresh(self) -> str:
        """Fetch the remote's branch after a rejected push; move the hub to it; return it."""
        old = await self.tip()
        await self.git.run("fetch", "--quiet", "--no-tags", "origin", f"+{self.published_ref}:{self._tracking}")
        remote = await self.git.rev_parse(self._tracking)
        assert remote is not None
        if not await self.git.is_ancestor(old, remote):
            raise GitError(["fetch"], 1, f"the remote {self.branch} was rewritten: {old[:10]} is not an ancestor of {remote[:10]}")
        await self.set_tip(remote, old)
        return remote

    async def files(self, rev: str) -> list[str]:
        out = await self.git.run("ls-tree", "-r", "--name-only", rev)
        return out.splitlines() if out else []

    async def show(self, rev: str, path: str) -> str | None:
        code, out, _ = await self.git.run_full("show", f"{rev}:{path}")
        return out if code == 0 else None
