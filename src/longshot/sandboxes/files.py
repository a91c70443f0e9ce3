"""Bounded file operations for the file tools of a sandbox on this machine.

The worker's ``read``, ``write``, ``edit`` and ``ls`` run in the orchestrator's threads on
the checkout (`longshot.sandboxes.local`), so a hostile checkout must not be able to hang,
exhaust or fool them:

- only regular files are read or written: a FIFO, device or socket is refused (opened with
  ``O_NONBLOCK``, so opening a FIFO never waits for a writer, then checked with ``fstat``);
- a path is opened one component at a time from the checkout with ``O_NOFOLLOW``: the path
  was resolved beforehand, so a symlink found now was swapped in meanwhile, and is refused;
- reads stop at a byte limit before anything more is loaded (a 1 GB sparse file costs at
  most that limit), and a listing at `MAX_ENTRIES` names.

Refusals raise `FileRefused`, whose message is meant for the model.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import suppress
from pathlib import Path

from longshot.errors import FileRefused
from longshot.sandboxes.base import READ_LIMIT
from longshot.sandboxes.bwrap import give_to_sandbox

MAX_ENTRIES = 5000
"""The most names one listing returns; the rest are counted."""

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _open_beneath(root: Path, target: Path, flags: int, *, create_dirs: bool = False) -> int:
    """A descriptor of ``target`` (a resolved path inside ``root``), no symlink followed on the way."""
    parts = target.relative_to(root).parts
    fd = os.open(root, _DIR)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        try:
            if create_dirs and not last:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            flags_now = (flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC) if last else _DIR
            nfd = os.open(part, flags_now, 0o644, dir_fd=fd)
        except OSError as e:
            refusal = _refusal(e, target.relative_to(root))
            if refusal is None:
                raise
            raise refusal from e
        finally:
            os.close(fd)
        fd = nfd
    return fd


def _refusal(e: OSError, name: Path) -> FileRefused | None:
    """A `FileRefused` for the model when a failed open means the file system was changed under
    the tool or the path is not a regular file; None when ``e`` says enough itself."""
    if e.errno == errno.ELOOP:  # a symlink where the resolved path had none
        return FileRefused(f"{name} changed while it was opened (a symlink appeared on its path); nothing was done")
    if e.errno == errno.ENXIO:  # a socket, or a FIFO no one reads
        return FileRefused(f"{name} is a socket or a FIFO, not a regular file; the file tools open regular files only")
    return None


def _regular(fd: int, name: str) -> os.stat_result:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", name)
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(f"{name} is {_kind(info.st_mode)}, not a regular file; the file tools open regular "
                          "files only (use the bash tool if you really mean it)")
    return info


def read_regular(root: Path, target: Path, limit: int = READ_LIMIT) -> bytes:
    """At most ``limit`` bytes from the start of the regular file ``target``."""
    name = str(target.relative_to(root)) or "."
    if target == root:
        raise IsADirectoryError(21, "Is a directory", name)
    fd = _open_beneath(root, target, os.O_RDONLY)
    try:
        _regular(fd, name)
        chunks, left = [], limit
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_regular(root: Path, target: Path, data: bytes) -> None:
    """Create or overwrite the regular file ``target`` (making its directories) with ``data``;
    what it made is given to the sandbox's identity (`give_to_sandbox`)."""
    name = str(target.relative_to(root)) or "."
    if target == root:
        raise IsADirectoryError(21, "Is a directory", name)
    fd = _open_beneath(root, target, os.O_WRONLY | os.O_CREAT, create_dirs=True)
    try:
        _regular(fd, name)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    give_to_sandbox(target, *(d for d in target.parents if d.is_relative_to(root) and d != root))


def list_names(root: Path, target: Path) -> list[str]:
    """Sorted entries of the directory ``target``, directories marked with ``/``; names keep
    any non-UTF-8 bytes as surrogate escapes; past `MAX_ENTRIES` a last line counts the rest."""
    fd = _open_beneath(root, target, os.O_RDONLY | os.O_DIRECTORY) if target != root else os.open(root, _DIR)
    try:
        with os.scandir(fd) as it:
            entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
    finally:
        os.close(fd)
    names = [name + ("/" if is_dir else "") for name, is_dir in entries[:MAX_ENTRIES]]
    if len(entries) > MAX_ENTRIES:
        names.append(f"[... {len(entries) - MAX_ENTRIES} more entries; use find or bash to narrow down]")
    return names
