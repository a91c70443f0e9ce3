"""The planner's read tool loads no huge blob (issue 15 item 5: every read is bounded)."""

from __future__ import annotations

import json
import resource
from pathlib import Path

from longshot.git import Git
from longshot.pipeline.explore import Explorer
from longshot.sandboxes.base import READ_LIMIT
from longshot.testing.repos import git, make_remote


async def test_read_refuses_a_blob_over_the_limit_without_loading_it(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"small.txt": "one\ntwo\n"})
    work = tmp_path / "work"
    git("clone", "--quiet", str(remote), str(work), cwd=tmp_path)
    with open(work / "huge.txt", "wb") as f:  # compresses to almost nothing, 64 MiB once shown
        f.write(b"x" * (8 * READ_LIMIT))
    git("add", "huge.txt", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@x", "commit", "--quiet", "-m", "huge", cwd=work)
    tip = git("rev-parse", "HEAD", cwd=work)

    async def at_tip() -> str:
        return tip

    explorer = Explorer(Git(work), at_tip)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = await explorer.call("read", json.dumps({"path": "huge.txt"}))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert not out.ok and "more than" in out.text and "grep" in out.text
    assert grown_mib < 32, f"the read grew the peak memory by {grown_mib:.0f} MiB"
    out = await explorer.call("read", json.dumps({"path": "small.txt"}))
    assert out.ok and "two" in out.text
