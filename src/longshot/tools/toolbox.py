"""The worker's tools (DESIGN §3.3): schemas, argument validation and execution.

Names and parameters are a public contract. Every call goes through the `Sandbox`
protocol; nothing here touches the host file system. A bad call (unknown tool, invalid
JSON, a missing or ill-typed argument, a path outside the checkout) is never executed:
the model receives the exact error text instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from longshot.capture import cap_text
from longshot.errors import FileRefused, PathOutsideSandbox, SandboxError, SandboxLost
from longshot.sandboxes.base import OnOutput, Sandbox
from longshot.tools.text import NotText, check_strings, has_escapes, printable, to_bytes


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadArgs(ToolArgs):
    """Read a text file. Long files come in pages: pass offset (1-based line) and limit."""

    path: str
    offset: int | None = Field(default=None, ge=1)
    limit: int | None = Field(default=None, ge=1)


class WriteArgs(ToolArgs):
    """Create or overwrite a file with the given content."""

    path: str
    content: str


class EditArgs(ToolArgs):
    """Replace one exact, unique occurrence of old_text with new_text."""

    path: str
    old_text: str
    new_text: str


class BashArgs(ToolArgs):
    """Run a shell command in the repository root. Returns exit code, stdout, stderr."""

    command: str
    timeout: float | None = Field(default=None, gt=0)


class GrepArgs(ToolArgs):
    """Search file contents with an extended regular expression; prints file:line:text."""

    pattern: str
    path: str | None = None
    glob: str | None = None
    ignore_case: bool = False


class FindArgs(ToolArgs):
    """Find files whose path matches a glob (e.g. "*.py" or "src/**/test_*.py")."""

    pattern: str
    path: str | None = None


class LsArgs(ToolArgs):
    """List a directory (the repository root by default)."""

    path: str | None = None


class HandoffArgs(ToolArgs):
    """End the task and report: status, what was done, concerns and suggestions."""

    status: Literal["complete", "partial", "blocked", "failed"]
    summary: str
    concerns: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


class MergeTipArgs(ToolArgs):
    """Bring the target branch's newest work into your checkout (merged with yours). Files that
    conflict get markers (<<<<<<< target branch, =======, >>>>>>> yours) for you to resolve."""


FILE_TOOLS = frozenset({"read", "write", "edit", "ls"})
"""Tools that run file operations in the orchestrator (bounded by ``ToolBox.file_timeout``)."""


WORKER_TOOLS: dict[str, type[ToolArgs]] = {
    "read": ReadArgs, "write": WriteArgs, "edit": EditArgs, "bash": BashArgs,
    "grep": GrepArgs, "find": FindArgs, "ls": LsArgs, "handoff": HandoffArgs, "merge_tip": MergeTipArgs,
}


def tool_schemas(tools: dict[str, type[ToolArgs]]) -> list[dict[str, Any]]:
    """OpenAI ``tools`` entries for the given argument models."""
    out = []
    for name, model in tools.items():
        schema = model.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        out.append({"type": "function", "function": {
            "name": name, "description": (model.__doc__ or "").strip(), "parameters": schema}})
    return out


def glob_regex(pattern: str) -> str:
    """A POSIX extended regex for a path glob: ``**/`` any directories, ``*`` and ``?`` within one."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class ToolCallError(Exception):
    """A call that was refused before running; the message goes back to the model."""


def parse_call(tools: dict[str, type[ToolArgs]], name: str, raw: str) -> ToolArgs:
    """Validate a tool call's name and JSON arguments, or raise ToolCallError with why."""
    if name not in tools:
        raise ToolCallError(f"unknown tool {name!r}; the tools are: {', '.join(tools)}")
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError as e:
        raise ToolCallError(f"the arguments of {name} are not valid JSON ({e}); nothing was run") from e
    if not isinstance(data, dict):
        raise ToolCallError(f"the arguments of {name} must be a JSON object; nothing was run")
    try:
        check_strings(data, f"the arguments of {name}")
    except NotText as e:
        raise ToolCallError(str(e)) from e
    try:
        return tools[name].model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or name}: {err['msg']}" for err in e.errors())
        raise ToolCallError(f"bad arguments for {name}: {problems}; nothing was run") from e


@dataclass
class ToolOutcome:
    text: str
    ok: bool


class ToolBox:
    """Executes validated worker tool calls in one sandbox.

    File tools are bounded: ``read`` and ``edit`` load at most ``read_limit`` bytes, only
    regular files are opened (the sandbox refuses the rest), each file call ends after
    ``file_timeout`` seconds, and everything shown to the model is valid text (`printable`).
    """

    def __init__(
        self, sandbox: Sandbox, *, default_timeout: float = 120.0, max_timeout: float = 900.0,
        output_limit: int = 20_000, page_lines: int = 400, on_output: OnOutput | None = None,
        merge_tip: Callable[[], Awaitable[str]] | None = None, read_limit: int = 2 * 2**20,
        file_timeout: float = 60.0,
    ) -> None:
        self.sandbox = sandbox
        self.on_output = on_output
        self.merge_tip = merge_tip
        """Brings the target branch's tip into the checkout (the orchestrator's side of ``merge_tip``)."""
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self.output_limit = output_limit
        self.page_lines = page_lines
        self.read_limit = read_limit
        self.file_timeout = file_timeout

    async def call(self, name: str, raw_arguments: str) -> ToolOutcome:
        try:
            args = parse_call(WORKER_TOOLS, name, raw_arguments)
            run = getattr(self, f"_{name}")(args)
            if name not in FILE_TOOLS:
                text = await run
            else:
                try:
                    async with asyncio.timeout(self.file_timeout):
                        text = await run
                except TimeoutError:
                    return ToolOutcome(f"error: {name} did not finish within {self.file_timeout:g}s and was "
                                       "abandoned", False)
            return ToolOutcome(cap_text(printable(text), self.output_limit), True)
        except (ToolCallError, NotText, PathOutsideSandbox, FileRefused) as e:
            return ToolOutcome(printable(f"error: {e}"), False)
        except SandboxLost:
            raise  # nothing more can run there: the task is retried in a new sandbox
        except SandboxError as e:
            return ToolOutcome(printable(f"error: the sandbox failed: {e}"), False)
        except OSError as e:  # missing, a directory, no permission, name too long ...: the model can act on it
            where = e.filename if isinstance(e.filename, str) else ""
            return ToolOutcome(printable(f"error: {type(e).__name__}: {e.strerror or e}" + (f": {where}" if where else "")),
                               False)

    async def _load(self, path: str) -> tuple[bytes, bool]:
        """A file's first ``read_limit`` bytes, and whether it is longer (one byte more is asked for)."""
        data = await self.sandbox.read_file(path, self.read_limit + 1)
        return data[: self.read_limit], len(data) > self.read_limit

    async def _read(self, a: ReadArgs) -> str:
        data, cut = await self._load(a.path)
        if b"\x00" in data[:8192]:
            return f"{a.path} is a binary file" + (f" of {len(data)} bytes" if not cut else f" of more than {len(data)} bytes")
        text = data.decode("utf-8", "surrogateescape")
        if cut:  # a line cut in the middle is not shown as if whole
            text = text[: text.rfind("\n") + 1] if "\n" in text else text
        lines = text.splitlines()
        start = (a.offset or 1) - 1
        count = a.limit or self.page_lines
        page = lines[start : start + count]
        beyond = (f"; only the first {self.read_limit} bytes of this file can be read with this tool "
                  "(use bash: sed -n, tail, grep for the rest)") if cut else ""
        if not lines:
            return f"{a.path} is empty"
        if not page:
            return f"{a.path} has {len(lines)} lines{' readable' if cut else ''}; offset {start + 1} is past the end{beyond}"
        body = "\n".join(f"{start + i + 1:>6}\t{line}" for i, line in enumerate(page))
        if start + count < len(lines):
            body += f"\n[lines {start + 1}-{start + len(page)} of {len(lines)}; read on with offset={start + count + 1}]"
        elif cut:
            body += f"\n[{beyond.removeprefix('; ')}]"
        return body

    async def _write(self, a: WriteArgs) -> str:
        await self.sandbox.write_file(a.path, to_bytes(a.content, "content"))
        return f"wrote {len(a.content)} characters to {a.path}"

    async def _edit(self, a: EditArgs) -> str:
        data, cut = await self._load(a.path)
        if cut:
            raise ToolCallError(f"{a.path} is larger than {self.read_limit} bytes, too large for edit; "
                                "change it with bash (e.g. sed -i or a python one-liner)")
        old, new = to_bytes(a.old_text, "old_text"), to_bytes(a.new_text, "new_text")
        found = data.count(old) if old else 0
        if found != 1:
            raise ToolCallError(
                f"old_text occurs {found} times in {a.path}; it must occur exactly once (add surrounding lines to make it unique)"
            )
        await self.sandbox.write_file(a.path, data.replace(old, new, 1))
        return f"edited {a.path}"

    async def _bash(self, a: BashArgs) -> str:
        timeout = min(a.timeout or self.default_timeout, self.max_timeout)
        r = await self.sandbox.exec(a.command, timeout, self.on_output)
        head = f"exit code: {r.exit_code}"
        if r.timed_out:
            head += f" (timed out after {timeout:g}s; the command and everything it started were killed)"
        elif r.limit:
            head += f" (stopped by the sandbox's {r.limit})"
        return f"{head}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"

    async def _grep(self, a: GrepArgs) -> str:
        argv = ["grep", "-rnIE", "-D", "skip", "--exclude-dir=.git", "--exclude-dir=node_modules"]
        if a.ignore_case:
            argv.append("-i")
        if a.glob:
            argv.append(f"--include={a.glob}")
        argv += ["--", a.pattern, self._rel(a.path)]
        r = await self.sandbox.exec(shlex.join(argv) + " | head -n 500", 60)
        return r.stdout.strip() or (r.stderr.strip() or "no matches")

    async def _find(self, a: FindArgs) -> str:
        root = self._rel(a.path)
        if "/" in a.pattern:
            test = ["-regextype", "posix-extended", "-regex", re.escape(root) + "/" + glob_regex(a.pattern.removeprefix("./"))]
        else:
            test = ["-name", a.pattern]
        argv = ["find", root, "-name", ".git", "-prune", "-o", "-type", "f", *test, "-print"]
        r = await self.sandbox.exec(shlex.join(argv) + " | sort | head -n 500", 60)
        return r.stdout.strip() or (r.stderr.strip() or "no files match")

    async def _ls(self, a: LsArgs) -> str:
        entries = await self.sandbox.list_dir(self._rel(a.path))
        odd = sum(has_escapes(e) for e in entries)
        note = (f"\n[{odd} names hold bytes that are not UTF-8, shown as \\xNN; the file tools cannot name "
                "them: use bash (e.g. ls -b, mv) to handle them]") if odd else ""
        return ("\n".join(entries) or "(empty directory)") + note

    async def _merge_tip(self, a: MergeTipArgs) -> str:
        if self.merge_tip is None:
            raise ToolCallError("merge_tip is not available with this sandbox provider; carry on, and the "
                                "merge queue will merge your work with the target branch when you hand off")
        return await self.merge_tip()

    async def _handoff(self, a: HandoffArgs) -> str:
        return "handoff recorded"

    def _rel(self, path: str | None) -> str:
        """A validated relative path for use in a command line (refuses escapes)."""
        if not path or path in (".", "./"):
            return "."
        if path.startswith(("/", "~")) or ".." in path.split("/"):
            raise PathOutsideSandbox(f"path must stay inside the repository: {path}")
        return path
