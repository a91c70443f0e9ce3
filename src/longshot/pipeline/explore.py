"""Read-only exploration tools for the planner and subplanners.

They read the target branch as the hub holds it, through git, so nothing can be written:
``read`` (git show), ``ls`` (git ls-tree), ``find`` (a glob over the tree), ``grep``
(git grep) and ``git``, whose arguments are split into an argv list (never given to a
shell), must start with an allowed read-only subcommand, and may not carry options that
write files, run programs or change configuration.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Awaitable, Callable


from longshot.capture import cap_text
from longshot.git import Git
from longshot.sandboxes.base import READ_LIMIT
from longshot.pipeline.parse import safe_scope_path
from longshot.tools.toolbox import (
    FindArgs, GrepArgs, LsArgs, ReadArgs, ToolArgs, ToolCallError, ToolOutcome, glob_regex, parse_call, tool_schemas,
)

GIT_SUBCOMMANDS = frozenset({
    "log", "show", "diff", "ls-tree", "cat-file", "blame", "shortlog", "rev-parse", "describe", "grep",
    "name-rev", "rev-list", "merge-base", "for-each-ref", "whatchanged",
})
FORBIDDEN_OPTIONS = ("--output", "--exec", "--upload-pack", "--receive-pack", "--ext-diff", "--textconv",
                     "--config", "--git-dir", "--work-tree", "--namespace", "--open-files-in-pager", "--paginate",
                     "--super-prefix", "--exec-path", "--filters", "--run",
                     "--no-index", "--contents", "--ignore-revs-file", "--orderfile", "--file")
"""Options (and their ``--opt=value`` forms) that write files, run programs or change config, or
read a file of the host rather than of the repository (``diff --no-index /dev/null ~/.netrc``;
``blame --ignore-revs-file`` prints the first line it cannot parse)."""
FILE_SHORTS = {"grep": "f", "blame": "S"}
"""Short options that read the file their value names (``grep -f``, ``blame -S``: a line they
cannot parse is printed)."""
VALUE_SHORTS = "eABCmL"
"""Short options whose value follows in the same word: the rest of a bundle is that value."""


class GitArgs(ToolArgs):
    """Run a read-only git command on the repository, e.g. "log --oneline -n 20" or "show HEAD~1 --stat"."""

    args: str


PLANNER_TOOLS: dict[str, type[ToolArgs]] = {"read": ReadArgs, "grep": GrepArgs, "find": FindArgs, "ls": LsArgs,
                                             "git": GitArgs}


def check_git_argv(args: str) -> list[str]:
    """The argv for ``git <args>``, or ToolCallError saying why it is refused."""
    try:
        argv = shlex.split(args)
    except ValueError as e:
        raise ToolCallError(f"cannot parse the git arguments: {e}") from e
    if argv and argv[0] == "git":
        argv = argv[1:]
    if not argv:
        raise ToolCallError("give a git subcommand, e.g. log --oneline -n 10")
    if argv[0] not in GIT_SUBCOMMANDS:
        raise ToolCallError(f"git {argv[0]!r} is not allowed; read-only subcommands: {', '.join(sorted(GIT_SUBCOMMANDS))}")
    for arg in argv[1:]:
        if _outside(arg.split("=", 1)[-1]):
            raise ToolCallError(f"{arg!r} names a path outside the repository; the git tool reads only the repository")
    for arg in argv[1:]:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        # git takes a unique prefix of a long option for the option (``--open`` is
        # ``--open-files-in-pager``), so a prefix of a forbidden one is refused too.
        if any(name.startswith(o + "-") or (name.startswith("--") and len(name) > 2 and o.startswith(name))
               for o in FORBIDDEN_OPTIONS):
            raise ToolCallError(f"the git option {name!r} is not allowed here")
        if re.match(r"^-[A-Za-z0-9]*O", arg):  # grep -O: open the matches in a pager (runs a program)
            raise ToolCallError(f"the git option {arg!r} is not allowed here")
        if arg.startswith("-") and not arg.startswith("--") and _reads_file(argv[0], arg[1:]):
            raise ToolCallError(f"the git option {arg!r} is not allowed here: it reads a file")
    return argv


def _reads_file(subcommand: str, bundle: str) -> bool:
    """Whether a bundle of short options (``-nf`` is ``-n -f``) holds one that reads a file."""
    for letter in bundle:
        if letter in FILE_SHORTS.get(subcommand, ""):
            return True
        if letter in VALUE_SHORTS:
            return False
    return False


def _outside(value: str) -> bool:
    """Whether an argument is a path that leaves the repository (absolute, home, or upward)."""
    return value.startswith(("/", "~")) or value == ".." or value.startswith("../") or "/../" in value \
        or value.endswith("/..")


class Explorer:
    """Answers planner tool calls by reading the hub at the current target tip."""

    def __init__(self, git: Git, tip: Callable[[], Awaitable[str]], *, output_limit: int = 20_000) -> None:
        self.git = git
        self.tip = tip
        self.output_limit = output_limit
        self.schemas = tool_schemas(PLANNER_TOOLS)

    async def call(self, name: str, raw_arguments: str) -> ToolOutcome:
        try:
            args = parse_call(PLANNER_TOOLS, name, raw_arguments)
            text = await getattr(self, f"_{name}")(args, await self.tip())
            return ToolOutcome(cap_text(text, self.output_limit), True)
        except ToolCallError as e:
            return ToolOutcome(f"error: {e}", False)

    def _path(self, path: str | None) -> str:
        if not path or path in (".", "./"):
            return ""
        safe = safe_scope_path(path)
        if safe is None:
            raise ToolCallError(f"path must stay inside the repository: {path}")
        return safe

    async def _read(self, a: ReadArgs, tip: str) -> str:
        code, size, _ = await self.git.run_full("cat-file", "-s", f"{tip}:{self._path(a.path)}")
        if code == 0 and size.strip().isdigit() and int(size) > READ_LIMIT:  # never load a huge blob
            raise ToolCallError(f"{a.path} is {int(size)} bytes, more than {READ_LIMIT} the read tool loads; "
                                "use grep, or git with e.g. 'log -p -n 1 -- <path>'")
        code, out, err = await self.git.run_full("show", f"{tip}:{self._path(a.path)}")
        if code != 0:
            raise ToolCallError(f"cannot read {a.path}: {err.strip()[-300:]}")
        lines = out.splitlines()
        start = (a.offset or 1) - 1
        page = lines[start : start + (a.limit or 400)]
        body = "\n".join(f"{start + i + 1:>6}\t{line}" for i, line in enumerate(page))
        if start + len(page) < len(lines):
            body += f"\n[lines {start + 1}-{start + len(page)} of {len(lines)}; read on with offset={start + len(page) + 1}]"
        return body or f"{a.path} is empty"

    async def _ls(self, a: LsArgs, tip: str) -> str:
        path = self._path(a.path)
        out = await self.git.run("ls-tree", tip, *([path + "/"] if path else []))
        entries = []
        for line in out.splitlines():
            meta, name = line.split("\t", 1)
            entries.append(name.rsplit("/", 1)[-1] + ("/" if meta.split()[1] == "tree" else ""))
        return "\n".join(entries) or f"no such directory: {a.path}"

    async def _find(self, a: FindArgs, tip: str) -> str:
        root = self._path(a.path)
        files = (await self.git.run("ls-tree", "-r", "--name-only", tip)).splitlines()
        files = [f for f in files if not root or f.startswith(root + "/")]
        if "/" in a.pattern:
            rx = re.compile(re.escape(root + "/" if root else "") + glob_regex(a.pattern.removeprefix("./")) + "$")
            found = [f for f in files if rx.match(f)]
        else:
            found = [f for f in files if fnmatch.fnmatch(f.rsplit("/", 1)[-1], a.pattern)]
        return "\n".join(found[:500]) or "no files match"

    async def _grep(self, a: GrepArgs, tip: str) -> str:
        argv = ["grep", "-n", "-I", "-E", *(["-i"] if a.ignore_case else []), "-e", a.pattern, tip, "--"]
        path = self._path(a.path)
        argv.append(f":(glob){path + '/' if path else ''}{a.glob or '**'}")
        code, out, err = await self.git.run_full(*argv)
        if code not in (0, 1):
            raise ToolCallError(f"grep failed: {err.strip()[-300:]}")
        lines = [line.removeprefix(f"{tip}:") for line in out.splitlines()[:500]]
        return "\n".join(lines) or "no matches"

    async def _git(self, a: GitArgs, tip: str) -> str:
        argv = check_git_argv(a.args)
        code, out, err = await self.git.run_full("--no-pager", *argv)
        return f"exit code: {code}\n{out}" + (f"\nstderr:\n{err}" if err.strip() else "")
