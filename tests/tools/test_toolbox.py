"""The worker's tools over a real `LocalSandbox`: validation, execution and the schema contract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from longshot.sandboxes.base import SandboxSpec
from longshot.sandboxes.local import LocalOptions, LocalSandbox, LocalSandboxProvider
from longshot.testing.repos import git, make_remote
from longshot.tools.toolbox import WORKER_TOOLS, ToolBox, tool_schemas

FILES = {
    "README.md": "# demo\n",
    "app.py": "import os\n\ndef main():\n    return 'hello'\n",
    "pkg/__init__.py": "",
    "pkg/core.py": "VALUE = 1\n# -- marker --\n",
    "pkg/test_core.py": "def test_value():\n    assert True\n",
    "pkg/latest_notes.py": "NOTES = []\n",
    "pkg/sub/test_deep.py": "def test_deep():\n    pass\n",
    "pkg/sub/data.txt": "Hello World\nhello again\n",
    "docs/guide.md": "Guide\n",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One hub for the module: these tests never write into it (no snapshots)."""
    base_dir = tmp_path_factory.mktemp("tools-repo")
    remote = make_remote(base_dir, FILES)
    hub = base_dir / "hub.git"
    git("clone", "--quiet", "--bare", str(remote), str(hub), cwd=base_dir)
    return hub, git("rev-parse", "refs/heads/main", cwd=hub)


async def _open(tmp_path: Path, hub_and_base: tuple[Path, str], isolation: str) -> AsyncIterator[tuple[ToolBox, LocalSandbox]]:
    hub, base = hub_and_base
    provider = LocalSandboxProvider(tmp_path / "work", LocalOptions(isolation=isolation))
    spec = SandboxSpec(task_id="t1", branch="worker/t1-x", base_commit=base, hub=hub)
    async with provider.open(spec) as sb:
        assert isinstance(sb, LocalSandbox)
        yield ToolBox(sb, default_timeout=20, page_lines=400), sb


@pytest.fixture
async def box(tmp_path: Path, hub: tuple[Path, str]) -> AsyncIterator[tuple[ToolBox, LocalSandbox]]:
    async for pair in _open(tmp_path, hub, "none"):
        yield pair


@pytest.fixture
async def bwrap_box(tmp_path: Path, hub: tuple[Path, str]) -> AsyncIterator[tuple[ToolBox, LocalSandbox]]:
    async for pair in _open(tmp_path, hub, "bubblewrap"):
        yield pair


def args(**kw: object) -> str:
    return json.dumps(kw)


# -- refused calls -------------------------------------------------------------------


async def test_unknown_tool_runs_nothing(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("shell", args(command="touch ran"))
    assert not out.ok
    assert out.text.startswith("error: unknown tool 'shell'")
    for name in WORKER_TOOLS:
        assert name in out.text
    assert not (sb.checkout / "ran").exists()


async def test_invalid_json_runs_nothing(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("write", '{"path": "new.txt", "content": "x"')
    assert not out.ok
    assert out.text.startswith("error:")
    assert "not valid JSON" in out.text and "line 1 column" in out.text
    assert "nothing was run" in out.text
    assert not (sb.checkout / "new.txt").exists()
    out = await tools.call("bash", "{'command': 'touch ran'}")
    assert not out.ok and "Expecting property name" in out.text
    assert not (sb.checkout / "ran").exists()


async def test_arguments_that_are_not_an_object(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("bash", '["touch ran"]')
    assert not out.ok and "JSON object" in out.text
    assert not (sb.checkout / "ran").exists()


async def test_missing_required_argument_is_named(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("write", args(path="new.txt"))
    assert not out.ok
    assert "content" in out.text and "required" in out.text.lower()
    assert not (sb.checkout / "new.txt").exists()
    out = await tools.call("edit", args(path="app.py", old_text="os"))
    assert not out.ok and "new_text" in out.text and "old_text" not in out.text.split("bad arguments")[1]
    assert (sb.checkout / "app.py").read_text() == FILES["app.py"]


async def test_extra_argument_is_refused(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("write", args(path="new.txt", content="x", mode="append"))
    assert not out.ok and "mode" in out.text
    assert not (sb.checkout / "new.txt").exists()


async def test_ill_typed_argument_is_refused(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("read", args(path="app.py", offset=0))
    assert not out.ok and "offset" in out.text
    out = await tools.call("bash", args(command="touch ran", timeout=-1))
    assert not out.ok and "timeout" in out.text
    assert not (sb.checkout / "ran").exists()
    out = await tools.call("handoff", args(status="done", summary="x"))
    assert not out.ok and "status" in out.text


# -- read / write / edit ---------------------------------------------------------------


async def test_read_whole_file(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, _ = box
    out = await tools.call("read", args(path="app.py"))
    assert out.ok
    lines = out.text.split("\n")
    assert len(lines) == 4
    assert lines[0].split("\t") == ["     1", "import os"]
    assert lines[3].split("\t") == ["     4", "    return 'hello'"]
    assert "read on" not in out.text


async def test_read_paging(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    (sb.checkout / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    out = await tools.call("read", args(path="long.txt", offset=2, limit=3))
    assert out.ok
    body, footer = out.text.rsplit("\n", 1)
    assert [line.split("\t")[1] for line in body.split("\n")] == ["line 2", "line 3", "line 4"]
    assert [int(line.split("\t")[0]) for line in body.split("\n")] == [2, 3, 4]
    assert "of 10" in footer and "offset=5" in footer
    out = await tools.call("read", args(path="long.txt", offset=9, limit=3))
    assert [line.split("\t")[1] for line in out.text.split("\n")] == ["line 9", "line 10"]
    assert "offset=" not in out.text
    out = await tools.call("read", args(path="long.txt", offset=50))
    assert "past the end" in out.text and "10 lines" in out.text
    # the default page size applies when no limit is given
    small = ToolBox(sb, page_lines=4)
    out = await small.call("read", args(path="long.txt"))
    assert out.text.count("\n") == 4 and "offset=5" in out.text


async def test_read_binary_and_empty_and_missing(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    (sb.checkout / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02" * 10)
    out = await tools.call("read", args(path="blob.bin"))
    assert out.ok and "binary" in out.text and "70 bytes" in out.text
    (sb.checkout / "empty.txt").write_text("")
    out = await tools.call("read", args(path="empty.txt"))
    assert out.ok and "empty" in out.text
    out = await tools.call("read", args(path="nope.txt"))
    assert not out.ok and "FileNotFoundError" in out.text
    out = await tools.call("read", args(path="pkg"))
    assert not out.ok and "IsADirectoryError" in out.text


async def test_write_creates_parents(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("write", args(path="new/dir/f.py", content="x = 'é'\n"))
    assert out.ok
    assert (sb.checkout / "new" / "dir" / "f.py").read_text() == "x = 'é'\n"


async def test_edit(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    (sb.checkout / "e.txt").write_text("alpha beta\nbeta gamma\n")
    out = await tools.call("edit", args(path="e.txt", old_text="delta", new_text="x"))
    assert not out.ok and "0 times" in out.text
    out = await tools.call("edit", args(path="e.txt", old_text="beta", new_text="x"))
    assert not out.ok and "2 times" in out.text
    out = await tools.call("edit", args(path="e.txt", old_text="", new_text="x"))
    assert not out.ok
    assert (sb.checkout / "e.txt").read_text() == "alpha beta\nbeta gamma\n"
    out = await tools.call("edit", args(path="e.txt", old_text="beta gamma", new_text="BETA\nGAMMA"))
    assert out.ok
    assert (sb.checkout / "e.txt").read_text() == "alpha beta\nBETA\nGAMMA\n"
    out = await tools.call("edit", args(path="missing.txt", old_text="a", new_text="b"))
    assert not out.ok and "FileNotFoundError" in out.text


# -- bash --------------------------------------------------------------------------------


async def test_bash_exit_code_and_output(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, _ = box
    out = await tools.call("bash", args(command="echo to-out; echo to-err >&2; exit 7"))
    assert out.ok
    assert out.text.startswith("exit code: 7\n")
    assert "stdout:\nto-out\n" in out.text and "stderr:\nto-err\n" in out.text


async def test_bash_timeout_marker(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, _ = box
    out = await tools.call("bash", args(command="sleep 20", timeout=1))
    assert out.text.startswith("exit code: 124")
    assert "timed out after 1s" in out.text and "killed" in out.text


async def test_bash_timeout_capped_by_max(box: tuple[ToolBox, LocalSandbox]) -> None:
    _, sb = box
    tools = ToolBox(sb, default_timeout=20, max_timeout=1)
    out = await tools.call("bash", args(command="sleep 20", timeout=600))
    assert "timed out after 1s" in out.text


async def test_output_is_capped(box: tuple[ToolBox, LocalSandbox]) -> None:
    _, sb = box
    tools = ToolBox(sb, output_limit=2000)
    out = await tools.call("bash", args(command="seq 1 100000"))
    assert out.ok and len(out.text) < 2200
    assert out.text.startswith("exit code: 0") and "100000" in out.text


# -- grep / find / ls ----------------------------------------------------------------------


async def test_grep(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, _ = box
    out = await tools.call("grep", args(pattern="def (main|test_value)"))
    assert out.ok
    found = sorted(line.removeprefix("./") for line in out.text.splitlines())
    assert found == ["app.py:3:def main():", "pkg/test_core.py:1:def test_value():"]
    out = await tools.call("grep", args(pattern="hello", path="pkg", ignore_case=True))
    assert sorted(line.removeprefix("./") for line in out.text.splitlines()) == [
        "pkg/sub/data.txt:1:Hello World", "pkg/sub/data.txt:2:hello again"]
    out = await tools.call("grep", args(pattern="VALUE", glob="*.py"))
    assert [line.removeprefix("./") for line in out.text.splitlines()] == ["pkg/core.py:1:VALUE = 1"]
    out = await tools.call("grep", args(pattern="no-such-text-anywhere"))
    assert out.ok and out.text == "no matches"


async def test_grep_pattern_starting_with_dash(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("grep", args(pattern="-- marker --"))
    assert [line.removeprefix("./") for line in out.text.splitlines()] == ["pkg/core.py:2:# -- marker --"]
    out = await tools.call("grep", args(pattern="-rl"))
    assert out.text == "no matches"
    # shell metacharacters in the pattern are data, not commands
    out = await tools.call("grep", args(pattern="x'; touch pwned; echo '"))
    assert not (sb.checkout / "pwned").exists()
    out = await tools.call("grep", args(pattern="$(touch pwned2)"))
    assert not (sb.checkout / "pwned2").exists()


async def test_find(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, _ = box
    out = await tools.call("find", args(pattern="*.py"))
    found = sorted(p.removeprefix("./") for p in out.text.splitlines())
    assert found == sorted(["app.py", "pkg/__init__.py", "pkg/core.py", "pkg/test_core.py",
                            "pkg/latest_notes.py", "pkg/sub/test_deep.py"])
    out = await tools.call("find", args(pattern="*.md", path="docs"))
    assert [p.removeprefix("./") for p in out.text.splitlines()] == ["docs/guide.md"]
    out = await tools.call("find", args(pattern="*.rs"))
    assert out.text == "no files match"


async def test_find_recursive_glob(box: tuple[ToolBox, LocalSandbox]) -> None:
    """pkg/**/test_*.py: test files in pkg and below, and nothing whose name merely contains test_."""
    tools, _ = box
    out = await tools.call("find", args(pattern="pkg/**/test_*.py"))
    found = sorted(p.removeprefix("./") for p in out.text.splitlines())
    assert found == ["pkg/sub/test_deep.py", "pkg/test_core.py"]


async def test_ls(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = box
    out = await tools.call("ls", "{}")
    assert out.ok and out.text.splitlines() == ["README.md", "app.py", "docs/", "pkg/"]
    out = await tools.call("ls", args(path="pkg"))
    assert out.text.splitlines() == ["__init__.py", "core.py", "latest_notes.py", "sub/", "test_core.py"]
    (sb.checkout / "empty").mkdir()
    out = await tools.call("ls", args(path="empty"))
    assert out.ok and "empty" in out.text
    out = await tools.call("ls", args(path="README.md"))
    assert not out.ok


@pytest.mark.parametrize("call", [
    ("read", {"path": "../outside.txt"}),
    ("read", {"path": "/etc/passwd"}),
    ("read", {"path": "pkg/../../outside.txt"}),
    ("write", {"path": "../outside.txt", "content": "x"}),
    ("write", {"path": "/tmp/longshot-outside.txt", "content": "x"}),
    ("edit", {"path": "../outside.txt", "old_text": "secret", "new_text": "x"}),
    ("ls", {"path": ".."}),
    ("ls", {"path": "/"}),
    ("grep", {"pattern": "secret", "path": ".."}),
    ("grep", {"pattern": "secret", "path": "/etc"}),
    ("grep", {"pattern": "secret", "path": "pkg/../.."}),
    ("find", {"pattern": "*.txt", "path": ".."}),
    ("find", {"pattern": "*", "path": "/"}),
], ids=lambda c: f"{c[0]}-{next(iter(c[1].values()))}")
async def test_paths_escaping_the_root_are_refused(box: tuple[ToolBox, LocalSandbox], call: tuple[str, dict[str, str]]) -> None:
    tools, sb = box
    outside = sb.root / "outside.txt"
    outside.write_text("secret\n")
    name, arguments = call
    out = await tools.call(name, json.dumps(arguments))
    assert not out.ok, out.text
    assert out.text.startswith("error:")
    assert "secret" not in out.text
    assert outside.read_text() == "secret\n"
    assert not Path("/tmp/longshot-outside.txt").exists()


async def test_handoff(box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, _ = box
    out = await tools.call("handoff", args(status="complete", summary="did it", concerns=["c"], suggestions=[]))
    assert out.ok


# -- under bubblewrap ----------------------------------------------------------------------


async def test_tools_under_bubblewrap(bwrap_box: tuple[ToolBox, LocalSandbox]) -> None:
    tools, sb = bwrap_box
    out = await tools.call("bash", args(command="echo hi > made.txt && cat made.txt"))
    assert out.text.startswith("exit code: 0") and "stdout:\nhi\n" in out.text
    assert (sb.checkout / "made.txt").read_text() == "hi\n"
    out = await tools.call("grep", args(pattern="-- marker --"))
    assert [line.removeprefix("./") for line in out.text.splitlines()] == ["pkg/core.py:2:# -- marker --"]
    out = await tools.call("find", args(pattern="*.md"))
    assert sorted(p.removeprefix("./") for p in out.text.splitlines()) == ["README.md", "docs/guide.md"]
    out = await tools.call("bash", args(command=f"cat {sb.root}/git/HEAD"))
    assert not out.text.startswith("exit code: 0")


# -- the schema contract ---------------------------------------------------------------------

CONTRACT = {
    "read": ({"path", "offset", "limit"}, {"path"}),
    "write": ({"path", "content"}, {"path", "content"}),
    "edit": ({"path", "old_text", "new_text"}, {"path", "old_text", "new_text"}),
    "bash": ({"command", "timeout"}, {"command"}),
    "grep": ({"pattern", "path", "glob", "ignore_case"}, {"pattern"}),
    "find": ({"pattern", "path"}, {"pattern"}),
    "ls": ({"path"}, set()),
    "handoff": ({"status", "summary", "concerns", "suggestions"}, {"status", "summary"}),
    "merge_tip": (set(), set()),  # round 2 addition: the tip merged into the checkout (pipeline/foresee.py)
}


def test_tool_schemas_match_the_contract() -> None:
    schemas = tool_schemas(WORKER_TOOLS)
    names = [s["function"]["name"] for s in schemas]
    assert sorted(names) == sorted(CONTRACT) and len(names) == 9
    for entry in schemas:
        assert entry["type"] == "function"
        fn = entry["function"]
        params = fn["parameters"]
        expected_props, expected_required = CONTRACT[fn["name"]]
        assert params["type"] == "object"
        assert set(params["properties"]) == expected_props, fn["name"]
        assert set(params.get("required", [])) == expected_required, fn["name"]
        assert params.get("additionalProperties") is False, fn["name"]
        assert fn["description"], fn["name"]
        json.dumps(entry)  # serialisable as sent to the API
    handoff = next(s for s in schemas if s["function"]["name"] == "handoff")["function"]["parameters"]
    assert set(handoff["properties"]["status"]["enum"]) == {"complete", "partial", "blocked", "failed"}
