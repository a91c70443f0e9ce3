"""Code in and out of a remote sandbox as git bundles, with no credential on the way.

**In.** `BundleCache.base` packs the base commit of a task into a bundle: git objects and
one ref (``refs/longshot/base``), nothing else. No remote URL, no config, no token can be
in it, so a hub cloned from ``https://<token>@host/...`` gives the sandbox nothing to
steal. Bundles are cached by commit: every task started on the same tip shares one.

**Out.** The sandbox answers with a bundle of one commit on top of the base. It is
untrusted data, as much as the files a worker writes: `import_result` indexes it in a
quarantine repository (sharing the hub's objects read-only) with ``index-pack --strict``,
which refuses malformed objects and trees holding ``.git`` or ``..``; checks the change
against the snapshot rules (`longshot.sandboxes.snapshot.check_commit`); and then makes
the task's commit itself, from the tree alone, with Longshot's author and message and the
base as the only parent. Only that commit reaches the hub, on the task's branch.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from longshot.errors import SandboxError
from longshot.errors import SnapshotRefused
from longshot.git import Git, is_sha
from longshot.sandboxes.snapshot import check_commit

BASE_REF = "refs/longshot/base"
"""The one ref of an inbound bundle (a ref in the bundle only, never created in the hub)."""
MAX_BUNDLE_BYTES = 2 * 1024 * 1024 * 1024
"""Largest result bundle accepted (the snapshot rules cap files far below this)."""


@dataclass(frozen=True)
class ResultRules:
    """The snapshot rules and identity applied to a result (from SNAPSHOT_* and GIT_COMMIT_*)."""

    max_file_bytes: int = 10 * 1024 * 1024
    max_changed_files: int = 5000
    author: tuple[str, str] = field(default=("Longshot", "longshot@localhost"))


class BundleCache:
    """Bundles of base commits under ``directory``, at most ``keep`` of them."""

    def __init__(self, directory: Path, keep: int = 8) -> None:
        self.directory = directory
        self.keep = keep
        self._locks: dict[str, asyncio.Lock] = {}

    async def base(self, hub: Path, commit: str) -> Path:
        """The bundle of ``commit`` and its history (made once, then reused)."""
        if not is_sha(commit):
            raise SandboxError(f"base commit must be a full sha, got {commit!r}")
        path = self.directory / f"{commit}.bundle"
        async with self._locks.setdefault(commit, asyncio.Lock()):
            if path.exists():
                os.utime(path)
                return path
            self.directory.mkdir(parents=True, exist_ok=True)
            scratch = self.directory / f"pack-{uuid.uuid4().hex}"
            try:
                git = await _borrowing_repo(scratch, hub)
                await git.run("update-ref", BASE_REF, commit)
                await git.run("bundle", "create", "--quiet", str(scratch / "out.bundle"), BASE_REF)
                os.replace(scratch / "out.bundle", path)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        self._evict()
        return path

    def _evict(self) -> None:
        bundles = sorted(self.directory.glob("*.bundle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in bundles[self.keep :]:
            old.unlink(missing_ok=True)


async def import_result(hub: Path, data: bytes, *, base: str, branch: str, message: str, rules: ResultRules,
                        scratch: Path, parent: str | None = None) -> str | None:
    """Check a result bundle and commit its tree onto ``branch`` in the hub; None if it changes nothing.

    The change is checked against ``base``; the new commit's parent is ``parent`` (the
    sandbox's previous result, if it gave one) or ``base``.
    """
    if len(data) > MAX_BUNDLE_BYTES:
        raise SnapshotRefused("the result is larger than 2 GiB", [branch])
    prerequisites, refs, pack = parse_bundle(data)
    if len(refs) != 1 or not set(prerequisites) <= {base}:
        raise SandboxError(f"the sandbox returned a malformed result: refs {sorted(refs)}, "
                           f"prerequisites {prerequisites} (expected one ref on top of {base})")
    (tip,) = refs.values()
    quarantine = scratch / f"import-{uuid.uuid4().hex}"
    try:
        git = await _borrowing_repo(quarantine, hub, author=rules.author)
        if pack:
            code, _, err = await git.run_full("index-pack", "--stdin", "--fix-thin", "--strict", stdin=pack)
            if code != 0:
                raise SnapshotRefused(f"the result holds malformed git objects ({err.strip()[-300:]})", [branch])
        if await git.rev_parse(tip) is None:
            raise SandboxError(f"the sandbox's result names a commit it does not contain: {tip}")
        parent = parent or base
        tree = await git.run("rev-parse", f"{tip}^{{tree}}")
        if tree == await git.run("rev-parse", f"{parent}^{{tree}}"):
            return None
        await check_commit(git, base, tip, max_file_bytes=rules.max_file_bytes, max_files=rules.max_changed_files)
        commit = await git.run("commit-tree", tree, "-p", parent, "-m", message)
        await git.run("update-ref", f"refs/heads/{branch}", commit)
        await Git(hub).run("fetch", "--quiet", "--no-tags", str(quarantine), f"+refs/heads/{branch}:refs/heads/{branch}")
        return commit
    finally:
        shutil.rmtree(quarantine, ignore_errors=True)


def parse_bundle(data: bytes) -> tuple[list[str], dict[str, str], bytes]:
    """(prerequisite commits, ref → commit, pack data) of a v2 or v3 git bundle."""
    end = data.find(b"\n\n")
    if end < 0:
        raise SandboxError("the sandbox returned something that is not a git bundle")
    lines = data[:end].decode("utf-8", "replace").split("\n")
    if lines[0] not in ("# v2 git bundle", "# v3 git bundle"):
        raise SandboxError(f"the sandbox returned an unknown bundle format: {lines[0][:60]!r}")
    prerequisites: list[str] = []
    refs: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("@"):  # v3 capabilities
            if line not in ("@object-format=sha1",):
                raise SandboxError(f"unsupported bundle capability {line!r}")
            continue
        sha, _, rest = line.lstrip("-").partition(" ")
        if not is_sha(sha):
            raise SandboxError(f"malformed bundle header line {line[:100]!r}")
        if line.startswith("-"):
            prerequisites.append(sha)
        else:
            refs[rest] = sha
    return prerequisites, refs, data[end + 2 :]


async def _borrowing_repo(path: Path, hub: Path, author: tuple[str, str] = ("Longshot", "longshot@localhost")) -> Git:
    """A new bare repository at ``path`` that reads the hub's objects (and writes its own)."""
    path.mkdir(parents=True)
    git = Git(path, author=author)
    await git.run("init", "--quiet", "--bare")
    objects = Path(await Git(hub).run("rev-parse", "--absolute-git-dir")) / "objects"
    (path / "objects" / "info" / "alternates").write_text(f"{objects}\n")
    return git
