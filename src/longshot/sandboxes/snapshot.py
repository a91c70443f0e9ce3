"""Checks on a task's result before it becomes a commit in the hub, and its way into the hub.

Run on the staged index of the task's own git dir (`check_staged`, local sandboxes), or on
a commit that came back from a remote sandbox (`check_commit`), so a refused result never
reaches the hub. Each refusal names the rule and the paths: symlinks that point outside
the checkout (or are absolute), submodules and gitlinks, files over the size limit, and
more changed files than the limit.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import threading
from pathlib import Path

from longshot.errors import SnapshotRefused as SnapshotRefused  # re-exported: raised here
from longshot.git import Git
from longshot.sandboxes.base import FileChange, changes_of


SKIP_DIRS = {"node_modules", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache"}


def check_nested_repos(checkout: Path) -> None:
    """Refuse a checkout holding a repository below its root (a directory with a ``.git``).

    Checked on the files, before ``git add``, which would otherwise record it as a gitlink
    or stop on a nested repository that has no commit yet.
    """
    root = os.fspath(checkout)
    found: list[str] = []
    stack = [root]
    while stack:  # os.walk without its per-directory lists and paths: a checkout may hold thousands
        here = stack.pop()
        try:
            with os.scandir(here) as entries:
                for entry in entries:
                    if entry.name == ".git":
                        if here != root:  # git never adds the root's own .git
                            found.append(here[len(root) + 1:])
                    elif entry.name not in SKIP_DIRS and entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue  # unreadable: git add cannot take anything from it either
    if found:
        raise SnapshotRefused("submodules and nested repositories are not allowed", sorted(found))


def sizes_small(largest_file: int | None, max_file_bytes: int) -> bool:
    """Whether every blob of a change is known to be within the size limit without looking: the
    largest file written is known and four times it is within the limit (see `check_staged`)."""
    return largest_file is not None and 4 * largest_file <= max_file_bytes


async def check_staged(git: Git, base: str, *, max_file_bytes: int, max_files: int,
                       largest_file: int | None = None, count_lines: bool = False) -> list[FileChange]:
    """Raise SnapshotRefused if the index (against ``base``) breaks a rule; what it changes
    against ``base`` (empty when nothing).

    ``largest_file``: the size of the largest file the change wrote, when the caller knows it
    (an overlay's upper layer). A blob is at most three times its file (``working-tree-encoding``
    is the one conversion on ``git add`` that grows text: a one-byte character of a legacy
    encoding becomes at most three bytes of UTF-8; filters need configuration a task cannot
    write), so when four times that is within the limit (`sizes_small`) the blobs' sizes are
    not looked up, and with ``count_lines`` the same diff process also counts each file's
    lines (``--numstat``, no text conversion, no external diff). Counting reads and compares
    whole blobs, so it is never done before the sizes are known to be small: a refused change
    costs no line count of a huge file.
    """
    small = sizes_small(largest_file, max_file_bytes)
    counts = ("--numstat", "--no-textconv", "--no-ext-diff") if count_lines and small else ()
    raw = await git.run("diff", "--cached", "--raw", *counts, "--no-abbrev", "--no-renames", "-z", base)
    if not raw:
        return []
    await _check_diff(git, raw, max_file_bytes=max_file_bytes if not small else None, max_files=max_files)
    return changes_of(raw)


async def check_commit(git: Git, base: str, commit: str, *, max_file_bytes: int, max_files: int) -> None:
    """Raise SnapshotRefused if ``commit`` (against ``base``) breaks a rule."""
    raw = await git.run("diff", "--raw", "--no-abbrev", "--no-renames", "-z", base, commit)
    await _check_diff(git, raw, max_file_bytes=max_file_bytes, max_files=max_files)


async def _check_diff(git: Git, raw: str, *, max_file_bytes: int | None, max_files: int) -> None:
    entries: list[tuple[str, str, str]] = []  # (new mode, new blob, path)
    fields = raw.split("\0")
    i = 0
    while i + 1 < len(fields):
        meta, path = fields[i], fields[i + 1]
        if not meta.startswith(":"):
            break  # the --numstat part, after every raw entry
        i += 2
        parts = meta.lstrip(":").split()
        if len(parts) >= 5 and parts[4] != "D":
            entries.append((parts[1], parts[3], path))
    if len(entries) > max_files:
        raise SnapshotRefused(f"more than {max_files} changed files (SNAPSHOT_MAX_FILES)",
                              [p for _, _, p in entries])
    gitlinks = [p for mode, _, p in entries if mode == "160000" or p == ".gitmodules" or p.endswith("/.gitmodules")]
    if gitlinks:
        raise SnapshotRefused("submodules and nested repositories are not allowed", gitlinks)
    links = [(blob, p) for mode, blob, p in entries if mode == "120000"]
    escaping = []
    for blob, path in links:
        target = await git.run("cat-file", "blob", blob)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            escaping.append(f"{path} -> {target}")
    if escaping:
        raise SnapshotRefused("symlinks must point inside the repository", escaping)
    blobs = [(blob, p) for mode, blob, p in entries if mode.startswith("100")]
    if blobs and max_file_bytes is not None:
        sizes = await git.run("cat-file", "--batch-check=%(objectsize)", stdin="\n".join(b for b, _ in blobs).encode())
        big = [f"{p} ({int(s) // (1024 * 1024)} MB)" for (_, p), s in zip(blobs, sizes.split("\n"))
               if s.isdigit() and int(s) > max_file_bytes]
        if big:
            raise SnapshotRefused(f"files larger than {max_file_bytes // (1024 * 1024)} MB (SNAPSHOT_MAX_FILE_MB)", big)


def copy_objects(source: Path, hub: Path) -> int:
    """Copy the objects of ``source`` (an objects directory) that ``hub`` lacks; return how many.

    A task's repository borrows the hub's objects (git alternates, as ``clone --shared``): it
    reads every object the hub has and stores only what its own commits made, as loose objects (and, for files over
    ``core.bigFileThreshold``, a pack). Copying those files is what a local fetch amounts to,
    without the five processes a fetch starts. Objects are immutable and named by their hash,
    so each file goes in under a temporary name and is renamed into place; a copy that an
    interruption cut short is never seen under an object's name. Packs go in before their
    index, which is what makes git see a pack.
    """
    copied = 0
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        if entry.is_dir() and len(entry.name) == 2 and all(c in "0123456789abcdef" for c in entry.name):
            names = sorted(os.listdir(entry.path))
        elif entry.name == "pack" and entry.is_dir():
            names = sorted(os.listdir(entry.path), key=lambda n: (n.endswith(".idx"), n))
        else:
            continue
        target = hub / entry.name
        for name in names:
            if name.startswith("tmp_") or os.path.exists(target / name):
                continue
            target.mkdir(exist_ok=True)
            # A name of its own: two tasks of this process may bring the same object at once
            # (the same file content), and each must rename only its own copy.
            temp = target / f"tmp_obj_longshot_{os.getpid()}_{threading.get_ident()}_{name}"
            shutil.copyfile(os.path.join(entry.path, name), temp)
            os.chmod(temp, 0o444)
            os.replace(temp, target / name)
            copied += 1
    return copied
