"""The shell scripts the Modal provider runs inside its containers (bash, git and coreutils).

Each runs as ``bash -c SCRIPT longshot ARG...``: arguments are passed as positional
parameters, never pasted into the script, so no path or branch name is ever parsed as
shell. The container's git metadata lives in ``/longshot/git``, outside the checkout
``/workspace``. Everything these scripts produce is checked again by the orchestrator:
a container's own git is not trusted (`longshot.sandboxes.bundle.import_result`).
"""

from __future__ import annotations

from longshot.sandboxes.local import EXCLUDES

WORKSPACE = "/workspace"
GIT = ('G() { git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c user.name=longshot '
       '-c user.email=longshot@localhost --git-dir=/longshot/git --work-tree=/workspace "$@"; }; ')

UNPACK = "set -e; " + GIT + (
    'mkdir -p /longshot /workspace; cat > /longshot/in.bundle; git init -q --bare /longshot/git; '
    'G fetch -q --no-tags /longshot/in.bundle refs/longshot/base:refs/longshot/base; rm -f /longshot/in.bundle; '
    f"printf '%s\\n' {' '.join(repr(line) for line in EXCLUDES.splitlines())} > /longshot/git/info/exclude; "
    'G checkout -q -f -B "$1" "$2"'
)
"""Args: branch, base commit. Stdin: the base bundle."""

PACK = "set -e; " + GIT + (
    "cd /workspace; "
    "nested=$(find . \\( -path ./.git -o -name node_modules -o -name .venv -o -name __pycache__ \\) -prune "
    "-o -name .git -print | head -n 50); "
    'if [ -n "$nested" ]; then printf "%s\\n" "$nested" >&2; exit 3; fi; '
    "G add --all -- .; "
    "if G diff --cached --quiet HEAD; then exit 10; fi; "
    'tree=$(G write-tree); commit=$(G commit-tree "$tree" -p HEAD -m result); '
    'G update-ref "refs/heads/$1" "$commit"; '
    'G bundle create -q /longshot/out.bundle "refs/heads/$1" "^$2"; cat /longshot/out.bundle; rm -f /longshot/out.bundle'
)
"""Args: branch, base commit. Stdout: a bundle of the result; exit 10: nothing changed; exit 3:
nested repositories (listed on stderr)."""

RUN = 'exec timeout -k 5 "$1" bash -c "$2" </dev/null'
"""Args: seconds, command. GNU timeout signals the command's whole process group; stdin is closed."""

_RESOLVE = (
    'p=$(realpath -m -- "/workspace/$1"); '
    'case "$p" in /workspace|/workspace/*) ;; *) exit 3;; esac; '
)
READ = _RESOLVE + '[ -e "$p" ] || exit 2; [ -d "$p" ] && exit 4; [ -f "$p" ] || exit 6; exec head -c "$2" -- "$p"'
"""Args: path, most bytes. Exit 2: missing; 3: outside the checkout; 4: a directory; 6: not a regular
file (a FIFO, device or socket is never opened)."""
WRITE = _RESOLVE + ('[ -d "$p" ] && exit 4; [ -e "$p" ] && [ ! -f "$p" ] && exit 6; '
                    'mkdir -p -- "$(dirname -- "$p")" && exec cat > "$p"')
"""Arg: path. Stdin: the content. Exit 6: the path exists and is not a regular file."""
LIST = _RESOLVE + (
    '[ -e "$p" ] || exit 2; [ -d "$p" ] || exit 5; cd -- "$p"; '
    'for f in * .[!.]* ..?*; do [ -e "$f" ] || [ -L "$f" ] || continue; '
    'if [ -d "$f" ] && [ ! -L "$f" ]; then printf "%s/\\0" "$f"; else printf "%s\\0" "$f"; fi; done'
)
"""Arg: path. Stdout: NUL-separated entries, directories ending in ``/``. Exit 5: not a directory."""
