"""The private git directory of a local sandbox, and what its snapshots never take."""

from __future__ import annotations

from pathlib import Path

EXCLUDES = "\n".join(
    ["__pycache__/", "*.pyc", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "node_modules/",
     ".venv/", "*.egg-info/", ".coverage", ".DS_Store", "/.longshot/"]
)
"""Never snapshotted: generated artifacts a worker's checks leave behind."""


def shared_git_dir(git_dir: Path, hub: Path) -> None:
    """A bare repository at ``git_dir`` that borrows every object of ``hub`` and has no refs.

    What ``git clone --shared --bare`` makes, less what a task never uses (the hub's refs,
    hook samples, the remote), written directly instead of by a process: the three entries
    git requires (``HEAD``, ``objects/``, ``refs/``), the alternates file naming the hub's
    object store, the config, and the excludes of a snapshot.
    """
    objects = hub / "objects" if (hub / "objects").is_dir() else hub / ".git" / "objects"
    for d in ("objects/info", "objects/pack", "refs/heads", "refs/tags", "info"):
        (git_dir / d).mkdir(parents=True, exist_ok=True)
    (git_dir / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")  # checkout -B points it at the task's branch
    (git_dir / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n")
    (git_dir / "info" / "exclude").write_text(EXCLUDES + "\n")
