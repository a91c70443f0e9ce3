"""The bubblewrap profile of a local sandbox.

What a sandboxed command sees:

- the system directories read-only (``/usr``, ``/etc``, ``/opt``, the ``/bin``-style
  links), plus read-only toolchains the host's PATH and Python live in (a PATH entry under
  HOME exposes only its top directory, such as ``~/.pyenv``; never ``~/.ssh`` and the like);
- its checkout at ``/workspace`` and a private HOME at ``/home/sandbox``, writable; a
  private ``/tmp``; a fresh ``/proc`` (its own PID namespace) and a minimal ``/dev``;
- nothing else: not the host HOME, not the hub, not other tasks' checkouts;
- no network unless asked (all namespaces unshared), an unprivileged uid, a new session,
  and death with the orchestrator.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/etc", "/opt")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SENSITIVE_HOME = {".ssh", ".aws", ".gnupg", ".config", ".docker", ".kube", ".netrc", ".git-credentials",
                  ".gitconfig", ".azure", ".gcloud", ".npmrc", ".pypirc", ".local"}
WORKSPACE = "/workspace"
SANDBOX_HOME = "/home/sandbox"
RUN_DIR = "/run/longshot"
"""Where sockets the orchestrator serves (the model proxy) appear inside."""


def toolchain_paths(path_env: str, extra: list[str]) -> list[str]:
    """Read-only directories that make the host's interpreters and tools work inside."""
    home = os.path.realpath(os.path.expanduser("~"))
    found: list[str] = []
    candidates = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
                  *path_env.split(":"), *extra]
    for raw in candidates:
        if not raw or not os.path.isabs(raw) or not os.path.exists(raw):
            continue
        for path in {os.path.abspath(raw), os.path.realpath(raw)}:
            root = _exposable_root(path, home)
            if root and root not in found:
                found.append(root)
    covered = [p for p in found if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in found)]
    return sorted(covered)


def _exposable_root(path: str, home: str) -> str | None:
    if any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS) or path in SYSTEM_LINKS:
        return None
    if path == home or path == "/":
        return None
    if path.startswith(home + "/"):
        top = path[len(home) + 1 :].split("/")[0]
        return None if top in SENSITIVE_HOME else os.path.join(home, top)
    parts = Path(path).parts
    # A venv or prefix: expose the directory that holds bin/ and lib/, not its parents.
    if len(parts) > 2 and parts[-1] in ("bin", "sbin"):
        return str(Path(*parts[:-1]))
    return path


def bwrap_argv(
    *, checkout: Path, home: Path, tmp: Path, network: bool, ro_paths: list[str],
    extra_binds: tuple[tuple[Path, str], ...] = (),
) -> list[str]:
    """The bwrap command line (without the command itself)."""
    argv = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", "1000", "--gid", "1000", "--hostname", "sandbox"]
    if network:
        argv.append("--share-net")
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    # The private /tmp first: toolchains that live under the host's /tmp are mounted over it.
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run", "--bind", str(tmp), "/tmp"]
    for p in ro_paths:
        argv += ["--ro-bind", p, p]
    argv += ["--bind", str(checkout), WORKSPACE, "--bind", str(home), SANDBOX_HOME]
    for source, target in extra_binds:
        argv += ["--bind", str(source), target]
    argv += ["--chdir", WORKSPACE]
    return argv
