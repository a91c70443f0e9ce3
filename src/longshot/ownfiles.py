"""Longshot's own configuration files: nothing a run lands may configure a later run.

Longshot reads its settings from the environment and from ``.env`` in the directory it runs
in (`longshot.config`), keeps its hub, task checkouts and run lock in ``LONGSHOT_WORK_DIR``
(``.longshot/``), and reads the files some settings name (``LLM_PRICES_FILE``, a
``MODAL_IMAGE`` Dockerfile, ``HARNESS_BIN``). A worker that writes one of these into the
target repository would configure the next run started from a clone of it: turn the
sandbox off, point ``LLM_BASE_URL`` at its own host, or plant a set-up command. So:

- a change to any of them is refused at landing, whatever the task says (`own_changes`);
- a run warns when the target already tracks one (`own_paths_in`);
- fast-forwarding a user's working copy never brings one in unless DELIVER_CONFIG_FILES=allow
  (`longshot.hub.Hub.deliver`);
- a ``.env`` whose tracked content a Longshot task wrote is not read at all (`refuse_planted`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from longshot.errors import ConfigError
from longshot.git import SAFE_CONFIG, Git

OWN_FILE = re.compile(r"(^|/)\.env$|(^|/)\.longshot(/|$)")
"""``.env`` and ``.longshot/`` at any depth: Longshot may be started from any directory of a clone."""
TASK_TRAILER = "Longshot-Task"
WHY = ("Longshot's own configuration: a run may never change what configures a later run, "
       "and no task may be allowed to")


def is_own(path: str, extra: Sequence[str] = ()) -> bool:
    """Whether ``path`` (relative to the repository root) is one of Longshot's own files."""
    return bool(OWN_FILE.search(path)) or any(path == p or path.startswith(p.rstrip("/") + "/") for p in extra)


def own_paths_in(paths: Iterable[str], extra: Sequence[str] = ()) -> list[str]:
    """Those of ``paths`` that are Longshot's own files."""
    return [p for p in paths if is_own(p, extra)]


def configured_paths(repos: Iterable[Path], files: Iterable[Path | str | None]) -> list[str]:
    """The repository-relative paths of the configured ``files`` that lie inside one of ``repos``
    (a relative setting is taken from the current directory, as the settings take it)."""
    found: list[str] = []
    for repo in {Path(os.path.realpath(r)) for r in repos}:
        for f in files:
            if not f:
                continue
            where = Path(os.path.realpath(Path.cwd() / Path(f).expanduser()))
            if where != repo and where.is_relative_to(repo):
                found.append(where.relative_to(repo).as_posix())
    return sorted(set(found))


async def own_changes(git: Git, base: str, candidate: str, extra: Sequence[str] = ()) -> list[str]:
    """The own files ``base..candidate`` adds, changes or deletes, each with why it is refused."""
    out = await git.run("diff", "--name-only", "-z", "--no-renames", base, candidate)
    return own_refusals((p for p in out.split("\0") if p), extra)


def own_refusals(paths: Iterable[str], extra: Sequence[str] = ()) -> list[str]:
    """Those of the changed ``paths`` that are own files, each with why it is refused (for a
    caller that has the change's paths already, e.g. from the diff the landing checks use)."""
    return [f"{p} ({WHY})" for p in own_paths_in(paths, extra)]


def written_by_a_task(env_file: Path) -> str | None:
    """How a Longshot task wrote ``env_file``, when it is tracked in a git work tree, unchanged
    since, and the last commit that changed it carries a ``Longshot-Task`` trailer; else None."""
    if not env_file.is_file():
        return None
    here = env_file.resolve().parent
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
           "GIT_OPTIONAL_LOCKS": "0", "HOME": os.environ.get("HOME", "/"), "LC_ALL": "C"}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *SAFE_CONFIG, "-C", str(here), *args], capture_output=True, text=True,
                              env=env, timeout=30, check=False)

    try:
        last = git("log", "-1", f"--format=%h%x00%(trailers:key={TASK_TRAILER},valueonly,separator=%x2c)",
                   "--", env_file.name)
        if last.returncode != 0 or "\0" not in last.stdout:
            return None
        commit, task = (part.strip() for part in last.stdout.split("\0", 1))
        if not task or git("diff", "--quiet", "HEAD", "--", env_file.name).returncode != 0:
            return None
    except (OSError, subprocess.TimeoutExpired):
        return None
    return f"commit {commit} of Longshot task {task}"


def refuse_planted(env_file: Path | None) -> None:
    """Raise ConfigError, naming the file, the commit and the fix, when ``env_file`` is as a
    Longshot task wrote it (`written_by_a_task`)."""
    if env_file is not None and (planted := written_by_a_task(env_file)):
        raise ConfigError(f".env: {env_file.resolve()} is as {planted} wrote it; Longshot never reads settings "
                          "that one of its runs wrote. Fix: read it; to keep it, change it yourself (any edit makes "
                          "it yours), or delete it and set the values in the environment")
