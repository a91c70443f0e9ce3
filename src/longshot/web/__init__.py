"""The web view: every run of a log folder in the browser, live ones included (`longshot serve`).

Like the terminal dashboard it reads the NDJSON run logs and nothing else (plus, for a
task's conversation, the request log beside the run log, and for its diff, git of the
run's repository read-only). Starlette and uvicorn come with the ``web`` extra; `missing`
says what is not installed so the command can refuse with a clear message.
"""

from __future__ import annotations

import importlib

EXTRA = "web"
MODULES = ("starlette", "uvicorn")


def missing() -> list[str]:
    """The modules of the ``web`` extra that cannot be imported."""
    absent = []
    for module in MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            absent.append(module)
    return absent
