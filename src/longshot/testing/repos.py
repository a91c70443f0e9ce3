"""Target repositories for tests and the demo: a bare "remote" made from a dict of files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from longshot.git import SAFE_CONFIG


def git(*args: str, cwd: Path) -> str:
    """Run git as a fixed identity with hooks off; return stdout; raise on failure."""
    env = {"GIT_AUTHOR_NAME": "Longshot test", "GIT_AUTHOR_EMAIL": "test@localhost",
           "GIT_COMMITTER_NAME": "Longshot test", "GIT_COMMITTER_EMAIL": "test@localhost",
           "PATH": "/usr/local/bin:/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)}
    done = subprocess.run(["git", *SAFE_CONFIG, *args], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_remote(base: Path, files: dict[str, str] | None = None, *, source: Path | None = None,
                name: str = "target.git", branch: str = "main") -> Path:
    """A bare repository at ``base/name`` whose ``branch`` holds one commit of the files.

    The files come from ``files`` (path → text) and/or a directory ``source``.
    """
    seed = base / (name + ".seed")
    if source is not None:
        shutil.copytree(source, seed, ignore=shutil.ignore_patterns("__pycache__"))
    seed.mkdir(parents=True, exist_ok=True)
    for path, text in (files or {}).items():
        target = seed / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("init", "--quiet", f"--initial-branch={branch}", cwd=seed)
    git("add", "--all", cwd=seed)
    # no automatic gc: with many files it starts in the background and deletes objects while
    # the seed is being removed (a 50,000-file benchmark repository met it)
    git("-c", "gc.auto=0", "-c", "maintenance.auto=false", "commit", "--quiet", "--allow-empty", "-m", "initial commit",
        cwd=seed)
    remote = base / name
    git("clone", "--quiet", "--bare", str(seed), str(remote), cwd=base)
    shutil.rmtree(seed)
    return remote
