"""The file tools are bounded (issue 15 item 5), over a real `LocalSandbox` under bubblewrap.

Only regular files are opened (FIFOs, sockets, devices are refused at once, never waited on);
reads load a bounded number of bytes; names and contents that are not UTF-8 never end the
run: they round-trip, or the model is told why not.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longshot.tools.toolbox import ToolBox
from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.testing.repos import git, make_remote

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[tuple[ToolBox, LocalSandbox]]:
    remote = make_remote(tmp_path, {"README.md": "# demo\n"})
    hub = tmp_path / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=tmp_path)
    spec = SandboxSpec(task_id="t1", branch="worker/t1-x", base_commit=git("rev-parse", "main", cwd=hub), hub=hub)
    async with LocalSandboxProvider(tmp_path / "work", LocalOptions(isolation="bubblewrap")).open(spec) as sb:
        assert isinstance(sb, LocalSandbox)
        yield ToolBox(sb, default_timeout=20, read_limit=64 * 1024), sb


def args(**kw: object) -> str:
    return json.dumps(kw)


def sendable(text: str) -> None:
    """What a tool answers must go into a model request and an event as UTF-8."""
    text.encode("utf-8")
    json.dumps({"content": text}, ensure_ascii=False).encode("utf-8")


async def call(tools: ToolBox, name: str, **kw: object) -> tuple[bool, str]:
    out = await asyncio.wait_for(tools.call(name, args(**kw)), 15)  # the old tools waited forever here
    sendable(out.text)
    return out.ok, out.text


async def test_fifo_and_socket_are_refused_at_once(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    made = await tools.call("bash", args(command="mkfifo pipe && mkdir d && mkfifo d/p2 && python3 -c \"import socket; "
                                              "socket.socket(socket.AF_UNIX).bind('sock')\" && ls -l"))
    assert made.ok and "exit code: 0" in made.text, made.text
    for name, kw in [("read", {"path": "pipe"}), ("read", {"path": "d/p2", "offset": 2}),
                     ("edit", {"path": "pipe", "old_text": "a", "new_text": "b"}),
                     ("write", {"path": "pipe", "content": "x"}), ("read", {"path": "sock"}),
                     ("write", {"path": "sock", "content": "x"})]:
        ok, text = await call(tools, name, **kw)
        assert not ok and "not a regular file" in text, (name, kw, text)
    # Six at once (the thread pool of a 2-core host holds six): nothing is left waiting.
    outs = await asyncio.wait_for(asyncio.gather(*(tools.call("read", args(path="pipe")) for _ in range(6))), 15)
    assert all(not o.ok for o in outs)
    ok, text = await call(tools, "read", path="README.md")
    assert ok and "# demo" in text
    assert (sb.checkout / "pipe").is_fifo()  # refused, not replaced


async def test_reads_are_capped_before_loading(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    with open(sb.checkout / "sparse.txt", "wb") as f:  # 1 GiB of holes: costs no disk, would cost 1 GiB of RAM
        f.truncate(2**30)
    (sb.checkout / "long.txt").write_text("".join(f"line {i}\n" for i in range(100_000)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ok, text = await call(tools, "read", path="sparse.txt")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert ok and "binary file of more than 65536 bytes" in text
    assert grown_mib < 100, f"reading grew the peak memory by {grown_mib:.0f} MiB"
    ok, text = await call(tools, "read", path="long.txt", offset=99_990)
    assert ok and "past the end" in text and "only the first 65536 bytes" in text and "sed -n" in text
    ok, text = await call(tools, "read", path="long.txt", offset=6000, limit=5)
    assert ok and "line 6003" in text and "read on with offset=6005" in text
    ok, text = await call(tools, "edit", path="long.txt", old_text="line 5\n", new_text="x\n")
    assert not ok and "too large for edit" in text


async def test_names_and_contents_that_are_not_utf8(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    raw = os.fsencode(str(sb.checkout)) + b"/caf\xe9.txt"
    with open(raw, "wb") as f:
        f.write(b"price: 5 EUR\nok\n")
    (sb.checkout / "data.bin.txt").write_bytes(b"head \xff\xfe tail\nkeep\n")

    ok, text = await call(tools, "ls")
    assert ok and "caf\\xe9.txt" in text and "not UTF-8" in text
    ok, text = await call(tools, "grep", pattern="price")
    assert ok and "price" in text and "caf" in text
    ok, text = await call(tools, "find", pattern="caf*")
    assert ok and "caf" in text
    ok, text = await call(tools, "read", path="data.bin.txt")
    assert ok and "head \\xff\\xfe tail" in text
    # edit keeps the bytes it did not touch
    ok, text = await call(tools, "edit", path="data.bin.txt", old_text="keep", new_text="kept")
    assert ok, text
    assert (sb.checkout / "data.bin.txt").read_bytes() == b"head \xff\xfe tail\nkept\n"
    # a name given back with surrogate escapes (JSON "\udce9") names the same file
    out = await tools.call("read", '{"path": "caf\\udce9.txt"}')
    assert out.ok and "price: 5 EUR" in out.text
    # a lone surrogate that stands for no byte is refused with a message, nothing written
    for name, raw_args in [("write", '{"path": "s.txt", "content": "a\\ud800b"}'),
                           ("write", '{"path": "s\\udfff.txt", "content": "x"}'),
                           ("edit", '{"path": "data.bin.txt", "old_text": "kept", "new_text": "\\ud83d"}'),
                           ("bash", '{"command": "echo \\ud800"}'),
                           ("grep", '{"pattern": "\\udbff"}')]:
        out = await asyncio.wait_for(tools.call(name, raw_args), 15)
        sendable(out.text)
        assert not out.ok and "lone surrogate" in out.text, (name, out.text)
    assert not (sb.checkout / "s.txt").exists()
    # surrogate escapes in content are the bytes they stand for
    out = await tools.call("write", '{"path": "w.txt", "content": "a\\udce9b"}')
    assert out.ok
    assert (sb.checkout / "w.txt").read_bytes() == b"a\xe9b"


async def test_symlink_swapped_in_is_not_followed(box: tuple[ToolBox, LocalSandbox], tmp_path: Path) -> None:
    """A path resolved inside the checkout, then replaced by a link to the host: never opened."""
    tools, sb = box
    secret = tmp_path / "host-secret.txt"
    secret.write_text("canary-host-file\n")
    (sb.checkout / "sub").mkdir()
    (sb.checkout / "sub" / "f.txt").write_text("inside\n")
    from longshot.sandboxes.files import read_regular, write_regular

    root = Path(os.path.realpath(sb.checkout))
    target = sb.resolve("sub/f.txt")
    (sb.checkout / "sub" / "f.txt").unlink()
    (sb.checkout / "sub" / "f.txt").symlink_to(secret)  # the swap, after the path was resolved
    with pytest.raises(Exception, match="changed while it was opened"):
        read_regular(root, target, 100)
    with pytest.raises(Exception, match="changed while it was opened"):
        write_regular(root, target, b"overwritten")
    assert secret.read_text() == "canary-host-file\n"


class HungFiles:
    """A sandbox whose file system never answers (a hung network mount): only its file calls are used."""

    async def read_file(self, path: str, limit: int = 0) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def write_file(self, path: str, data: bytes) -> None:
        await asyncio.Event().wait()

    async def list_dir(self, path: str) -> list[str]:
        await asyncio.Event().wait()
        return []


async def test_every_file_call_has_a_time_limit() -> None:
    tools = ToolBox(HungFiles(), file_timeout=0.2)  # type: ignore[arg-type]
    for name, kw in [("read", {"path": "a"}), ("write", {"path": "a", "content": "x"}), ("ls", {}),
                     ("edit", {"path": "a", "old_text": "x", "new_text": "y"})]:
        ok, text = await call(tools, name, **kw)
        assert not ok and "did not finish within 0.2s" in text, (name, text)
