"""The bubblewrap profile of a local sandbox.

What a sandboxed command sees (`mounts`, one `Mount` per line of the table it builds):

- the system directories read-only (``/usr``, ``/etc``, ``/opt``, the ``/bin``-style links);
- read-only, the exact directories the host's interpreters and toolchains need
  (`toolchain_paths`): of an interpreter or a PATH entry's prefix only ``bin``, ``lib``,
  ``lib64``, ``libexec`` and ``pyvenv.cfg``; a PATH entry that is no prefix's ``bin`` by
  itself; of a version manager (pyenv, rustup, nvm) only its program and toolchain folders.
  Never HOME, never a whole top-level HOME folder (``~/longshot``, ``~/.cargo``), so never a
  clone's ``.env``, ``~/.cargo/credentials.toml`` or another task's files;
- writable: its checkout at ``/workspace``, a private HOME at ``/home/sandbox``, ``/tmp`` and
  ``/dev/shm`` (host directories of the sandbox, all under the disk watch); read-only:
  ``/run`` and ``/run/longshot`` (the sockets the orchestrator serves), ``/dev``; a fresh
  ``/proc`` (its own PID namespace);
- no network unless asked (all namespaces unshared), a new session, death with the
  orchestrator, and an unprivileged identity (`identity_argv`): when the orchestrator is
  root, commands run as host uid `SANDBOX_UID` (``nobody``) with no capabilities, so files
  only host root may read stay unreadable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/etc", "/opt")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SENSITIVE_HOME = {".ssh", ".aws", ".gnupg", ".config", ".docker", ".kube", ".netrc", ".git-credentials",
                  ".gitconfig", ".azure", ".gcloud", ".npmrc", ".pypirc", ".local"}
PREFIX_PARTS = ("bin", "lib", "lib64", "libexec", "pyvenv.cfg")
"""What an interpreter or toolchain prefix (a venv, ``~/.pyenv/versions/3.11.7``, ``/opt/node``)
needs: programs, libraries (the stdlib, site-packages) and a venv's marker. Never the prefix
itself: a venv inside a clone would otherwise bring the clone with it."""
MANAGERS = {".pyenv": ("bin", "libexec", "shims", "versions", "version", "plugins", "pyenv.d"),
            ".rustup": ("toolchains", "settings.toml"), ".nvm": ("versions", "alias", "nvm.sh")}
"""Version managers under HOME and the parts their shims and proxies read."""
MANAGER_ENV = {"PYENV_ROOT": ".pyenv", "RUSTUP_HOME": ".rustup", "NVM_DIR": ".nvm"}
WORKSPACE = "/workspace"
SANDBOX_HOME = "/home/sandbox"
RUN_DIR = "/run/longshot"
"""Where sockets the orchestrator serves (the model proxy) appear inside (read-only)."""
SHM = "/dev/shm"
SANDBOX_UID = 65534
"""The host uid sandboxed commands run as when the orchestrator is root (``nobody``)."""
INSIDE_UID = 1000
"""The uid commands see inside the sandbox."""


@dataclass(frozen=True)
class Mount:
    """One step of the sandbox's file system, in order: bwrap's ``op`` on ``dest``."""

    op: str
    """A bwrap option: ``--ro-bind``, ``--bind``, ``--tmpfs``, ``--symlink``, ``--proc``, ``--dev``,
    ``--remount-ro``."""
    dest: str
    source: str | None = None
    perms: str | None = None
    """Mode of what ``--dir`` or ``--tmpfs`` creates."""

    def argv(self) -> list[str]:
        head = ["--perms", self.perms] if self.perms else []
        return [*head, self.op, *([self.source] if self.source is not None else []), self.dest]


@dataclass(frozen=True)
class Writable:
    """The host directories a sandbox may write (each bound read-write at its place inside)."""

    checkout: Path
    home: Path
    tmp: Path
    shm: Path | None = None

    def binds(self) -> list[Mount]:
        found = [Mount("--bind", WORKSPACE, str(self.checkout)), Mount("--bind", SANDBOX_HOME, str(self.home)),
                 Mount("--bind", "/tmp", str(self.tmp))]
        return found + ([Mount("--bind", SHM, str(self.shm))] if self.shm is not None else [])


def toolchain_paths(path_env: str, extra: list[str], prefixes: Iterable[str] = ()) -> list[str]:
    """The read-only paths that make the host's interpreters and tools work inside.

    ``prefixes`` are interpreter prefixes (default: this Python's venv and base install);
    ``extra`` are paths the configuration names (``SANDBOX_RO_PATHS``, a harness's install).
    """
    home = os.path.realpath(os.path.expanduser("~"))
    found: set[str] = set()
    for prefix in [*(prefixes or (sys.prefix, sys.base_prefix)), *extra]:
        for path in _variants(prefix):
            found |= _prefix_parts(path, home) if _is_prefix(path) else _exact(path, home)
    for entry in path_env.split(":"):
        for path in _variants(entry):
            parent = os.path.dirname(path)
            if os.path.basename(path) in ("bin", "sbin") and parent not in ("/", home) and _allowed(parent, home):
                found |= _prefix_parts(parent, home)
            else:
                found |= _exact(path, home)
    for var, top in MANAGER_ENV.items():
        roots = {os.path.join(home, top), *_variants(os.environ.get(var, ""))}
        for root in roots:
            if os.path.isdir(root) and any(p == root or p.startswith(root + "/") for p in found):
                found |= {os.path.join(root, part) for part in MANAGERS[top]
                          if os.path.lexists(os.path.join(root, part)) and _allowed(os.path.join(root, part), home)}
    return sorted(p for p in found if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in found))


def _variants(raw: str) -> set[str]:
    if not raw or not os.path.isabs(raw) or not os.path.exists(raw):
        return set()
    return {os.path.abspath(raw), os.path.realpath(raw)}


def _is_prefix(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "bin")) or os.path.isfile(os.path.join(path, "pyvenv.cfg"))


def _prefix_parts(prefix: str, home: str) -> set[str]:
    return {p for part in PREFIX_PARTS if os.path.exists(p := os.path.join(prefix, part)) and _allowed(p, home)}


def _exact(path: str, home: str) -> set[str]:
    return {path} if _allowed(path, home) else set()


def _allowed(path: str, home: str) -> bool:
    """Not a system path (bound anyway), not HOME or a top-level HOME folder, not a secret."""
    if any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS) or path in SYSTEM_LINKS or path == "/":
        return False
    if path == home:
        return False
    if path.startswith(home + "/"):
        rel = path[len(home) + 1 :].split("/")
        return len(rel) > 1 and rel[0] not in SENSITIVE_HOME
    return True


def mounts(*, writable: Writable, ro_paths: list[str], run_dir: Path | None,
           extra_binds: tuple[tuple[Path, str], ...] = ()) -> list[Mount]:
    """The sandbox's file system, in the order bwrap builds it."""
    table: list[Mount] = [Mount("--ro-bind", d, d) for d in SYSTEM_DIRS if os.path.isdir(d)]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            table.append(Mount("--symlink", link, os.readlink(link)))
        elif os.path.isdir(link):
            table.append(Mount("--ro-bind", link, link))
    table += [Mount("--proc", "/proc"), Mount("--dev", "/dev"), Mount("--tmpfs", "/run")]
    if run_dir is not None:
        table.append(Mount("--ro-bind", RUN_DIR, str(run_dir)))
    # The private /tmp before the toolchains: a toolchain under the host's /tmp is mounted over it.
    binds = writable.binds()
    table += [m for m in binds if m.dest == "/tmp"]
    table += [Mount("--ro-bind", p, p) for p in ro_paths]
    table += [m for m in binds if m.dest != "/tmp"]
    table += [Mount("--bind", target, str(source)) for source, target in extra_binds]
    table += [Mount("--remount-ro", "/run"), Mount("--remount-ro", "/dev"), Mount("--remount-ro", "/")]
    return _open_parents(table)


def _open_parents(table: list[Mount]) -> list[Mount]:
    """Each folder bwrap would create on the way to a mount, created first with mode 0755.

    Left to bwrap, it takes the mode of the host's folder (0700 for ``/root`` or pytest's
    temporary folders), and the sandbox's user could not reach what is mounted below.
    """
    made: set[str] = {"/"}
    out: list[Mount] = []
    for m in table:
        if m.op in ("--ro-bind", "--bind", "--tmpfs", "--symlink", "--proc", "--dev"):
            parts = m.dest.strip("/").split("/")
            for i in range(1, len(parts)):  # string work: pathlib here was a tenth of a command's cost
                parent = "/" + "/".join(parts[:i])
                if parent not in made:
                    out.append(Mount("--dir", parent, perms="0755"))
                    made.add(parent)
            made.add(m.dest)
        out.append(m)
    return out


def identity_argv(root: bool | None = None, chdir: str = WORKSPACE) -> tuple[list[str], list[str]]:
    """(bwrap options, wrapper run inside before the command) for the sandbox's identity.

    Not root: a user namespace maps `INSIDE_UID` to the caller; host root's files show as
    the overflow uid, so what only root may read stays unreadable. Root: a user namespace
    would map the sandbox to host root (owner of every root-only file), so bwrap keeps the
    host's user namespace and ``setpriv`` drops to `SANDBOX_UID` with no capabilities; an
    inner bwrap then gives it a user namespace that cannot create more.
    """
    root = os.geteuid() == 0 if root is None else root
    if not root:
        return ["--unshare-user", "--disable-userns", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)], []
    wrapper = ["setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups", "--inh-caps=-all",
               "--bounding-set=-all", "bwrap", "--unshare-user", "--disable-userns", "--uid", str(INSIDE_UID),
               "--gid", str(INSIDE_UID), "--dev-bind", "/", "/", "--chdir", chdir, "--"]
    return [], wrapper


def bwrap_argv(
    *, checkout: Path, home: Path, tmp: Path, network: bool, ro_paths: list[str],
    extra_binds: tuple[tuple[Path, str], ...] = (), run_dir: Path | None = None, shm: Path | None = None,
    root: bool | None = None, chdir: str = WORKSPACE,
) -> list[str]:
    """The bwrap command line (without the command itself), starting in ``chdir``."""
    options, wrapper = identity_argv(root, chdir)
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid", "--unshare-uts",
            "--unshare-cgroup-try", *options, "--hostname", "sandbox"]
    if not network:
        argv.append("--unshare-net")
    for m in mounts(writable=Writable(checkout, home, tmp, shm), ro_paths=ro_paths, run_dir=run_dir,
                    extra_binds=extra_binds):
        argv += m.argv()
    return [*argv, "--chdir", chdir, *wrapper]


def give_to_sandbox(*paths: Path, recursive: bool = False) -> None:
    """Make ``paths`` (and, with ``recursive``, all below them) writable by the sandbox's
    identity: owned by `SANDBOX_UID` when the orchestrator is root; nothing to do otherwise."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.lchown(path, SANDBOX_UID, SANDBOX_UID)
        if recursive and path.is_dir() and not path.is_symlink():
            for dirpath, dirnames, filenames in os.walk(path):
                for name in (*dirnames, *filenames):
                    os.lchown(os.path.join(dirpath, name), SANDBOX_UID, SANDBOX_UID)
