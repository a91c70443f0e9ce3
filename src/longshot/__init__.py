"""Longshot: massively parallel autonomous coding.

A planner splits a build request into tasks, workers run a coding agent on each in an
isolated sandbox, a serial merge queue lands their work on the target branch, and every
stage reports through typed events. See ``docs/architecture.md``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("longshot")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "dev"

__all__ = ["__version__"]
