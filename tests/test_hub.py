"""The hub: the orchestrator's own bare clone of the target repository."""

from __future__ import annotations

from pathlib import Path

from longshot.hub import Hub
from longshot.testing.repos import git, make_remote


async def test_heads_gives_the_branches_that_exist_and_only_those_asked_for(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.txt": "a\n"})
    hub = Hub(tmp_path / "hub", str(remote), "main", ("Longshot", "longshot@localhost"))
    tip = await hub.open()
    for name in ("worker/a", "worker/ab", "worker/x/y"):
        git("update-ref", f"refs/heads/{name}", tip, cwd=hub.path)

    assert await hub.heads("worker/a", "main", "worker/gone") == {"worker/a": tip, "main": tip}
    assert await hub.heads("worker/x") == {}  # a namespace is not a branch
    assert await hub.heads("worker/x/y", "worker/ab") == {"worker/x/y": tip, "worker/ab": tip}
