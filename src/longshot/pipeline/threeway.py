"""Three-way merges of two commits without a checkout, shared by landing and prediction.

`merge_commits` runs ``git merge-tree --write-tree`` (the merge base is found by git) and
returns the merged tree, or the tree with conflict markers and the conflicted files. When
every conflicted file is a line-set file (`UnionFiles`), each is merged again from its three
blobs with ``git merge-file --union`` (both sides' lines kept) and the tree is rebuilt in a
scratch index: that conflict is resolved, and the result is checked like any other merge.
`conflict_regions` reads a marked tree to say where a conflict is and what each side holds.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from longshot.errors import GitError
from longshot.git import Git

MARKERS = ("<<<<<<< ", "=======", ">>>>>>> ")


@dataclass(frozen=True)
class Merged:
    tree: str
    """The merged tree; with conflict markers in ``conflicts`` when there are any."""
    conflicts: list[str] = field(default_factory=list)
    unioned: list[str] = field(default_factory=list)
    """Line-set files whose conflict was resolved as a union."""


async def merge_commits(git: Git, ours: str, theirs: str, union: Callable[[str], bool] | None = None) -> Merged:
    """Merge ``theirs`` into ``ours`` (commits in ``git``'s repository); never touches a work tree."""
    code, out, err = await git.run_full("merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs)
    lines = out.splitlines()
    if code not in (0, 1) or not lines:
        raise GitError(["merge-tree", ours, theirs], code, err)
    tree = lines[0].strip()
    if code == 0:
        return Merged(tree)
    conflicts = sorted({line for line in lines[1:] if line.strip()})
    if union is None or not conflicts or not all(union(p) for p in conflicts):
        return Merged(tree, conflicts)
    resolved = await _union(git, ours, theirs, tree, conflicts)
    return Merged(resolved, [], conflicts) if resolved else Merged(tree, conflicts)


async def _union(git: Git, ours: str, theirs: str, tree: str, paths: list[str]) -> str | None:
    """``tree`` with each of ``paths`` replaced by the union of its two sides; None when a file
    cannot be merged that way (deleted on one side, binary, not a regular file)."""
    code, base, _ = await git.run_full("merge-base", ours, theirs)
    base = base.split()[0] if code == 0 and base.strip() else ""
    with tempfile.TemporaryDirectory(prefix="longshot-union-") as tmp:
        entries: list[str] = []
        for n, path in enumerate(paths):
            sides: list[tuple[str, str]] = []
            for rev in (ours, base, theirs):
                entry = await git.run("ls-tree", rev, "--", path) if rev else ""
                mode, kind, blob = (entry.split("\t", 1)[0].split() + ["", "", ""])[:3]
                if rev != base and (kind != "blob" or not mode.startswith("100")):
                    return None  # deleted or not a regular file on one side: a real conflict
                data = (await git.run_full("cat-file", "blob", blob))[1] if blob else ""
                name = os.path.join(tmp, f"{n}-{len(sides)}")
                Path(name).write_text(data, encoding="utf-8")
                sides.append((name, mode))
            code, merged, _ = await git.run_full("merge-file", "-p", "--union", *(name for name, _ in sides))
            if code < 0 or code > 127 or "\0" in merged:
                return None
            blob = await git.run("hash-object", "-w", "--stdin", stdin=merged.encode("utf-8"))
            entries.append(f"{sides[0][1]},{blob},{path}")
        scratch = git.with_index(Path(tmp) / "index")
        await scratch.run("read-tree", tree)
        for entry in entries:
            await scratch.run("update-index", "--cacheinfo", entry)
        return await scratch.run("write-tree")


async def conflict_regions(git: Git, tree: str, path: str, limit: int = 3, context: int = 12) -> list[str]:
    """Where ``path`` in a marked ``tree`` conflicts: "lines A-B" and both sides' text (capped)."""
    code, text, _ = await git.run_full("cat-file", "blob", f"{tree}:{path}")
    if code != 0:
        return []
    regions: list[str] = []
    start = 0
    ours: list[str] = []
    theirs: list[str] = []
    side = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(MARKERS[0]):
            start, ours, theirs, side = number, [], [], "ours"
        elif line.startswith(MARKERS[1]) and side == "ours":
            side = "theirs"
        elif line.startswith(MARKERS[2]) and side == "theirs":
            side = ""
            regions.append(f"lines {start}-{number}:\n  the target branch now holds:\n"
                           + _show(ours, context) + "\n  your version holds:\n" + _show(theirs, context))
            if len(regions) >= limit:
                break
        elif side == "ours":
            ours.append(line)
        elif side == "theirs":
            theirs.append(line)
    return regions


def _show(lines: list[str], limit: int) -> str:
    shown = "\n".join(f"    {line}" for line in lines[:limit]) or "    (nothing)"
    return shown + (f"\n    ... ({len(lines) - limit} more lines)" if len(lines) > limit else "")
