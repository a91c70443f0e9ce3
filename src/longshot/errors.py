"""One rooted error hierarchy and the retry policy table.

    LongshotError
    ├── ConfigError (ValueError)            bad settings or usage; the CLI exits 2
    ├── IllegalTransition (RuntimeError)    a task status move TRANSITIONS forbids
    ├── GitError (RuntimeError)             a git command failed (argv and stderr kept)
    │   └── PushRejected                    the remote refused a fast-forward-only push
    ├── SandboxError (RuntimeError)         a sandbox could not be made or used
    │   ├── SetupFailed                     a trusted set-up command failed
    │   ├── SandboxLost                     a remote sandbox died under us (node, actor, container gone)
    │   ├── SnapshotRefused                 a worker's result broke a snapshot rule; nothing committed
    │   ├── SandboxUnavailable              the provider could not be reached or had no room for now
    │   └── PathOutsideSandbox (ValueError) a path escaping the checkout was refused
    ├── LLMError                            a model request failed (endpoint named)
    │   ├── LLMRateLimited                  HTTP 429 (carries Retry-After)
    │   ├── LLMServerError                  HTTP 5xx, an empty or unreadable answer
    │   ├── LLMTimeout (TimeoutError)       no answer within LLM_TIMEOUT
    │   ├── LLMConnectionError (ConnectionError)  no connection, or an answer cut mid-way
    │   ├── LLMContextOverflow              the prompt exceeds the model's window
    │   └── LLMBadRequest                   4xx other than 429: a permanent refusal
    ├── PlanParseError (ValueError)         a planner answer that is not usable JSON
    └── BudgetExceeded                      a run budget (tokens, cost) is spent

Backend errors (openai SDK, Modal and Ray SDKs, subprocess, git) are translated into these
at the seam where they occur. Errors with extra fields pickle with them (`__reduce__`), so
they cross a process boundary (a Ray actor) intact. ``RETRY_POLICY`` says which errors are worth retrying and how; every caller
that retries reads it instead of deciding on its own.
"""

from __future__ import annotations

from dataclasses import dataclass


class LongshotError(Exception):
    """Root of every error Longshot raises on purpose."""


class ConfigError(LongshotError, ValueError):
    """Invalid or missing configuration. The message names the setting and the fix."""


class IllegalTransition(LongshotError, RuntimeError):
    """A task status change that the TRANSITIONS table does not allow."""


class GitError(LongshotError, RuntimeError):
    """A git command exited non-zero."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        shown = " ".join(argv[:6]) + (" ..." if len(argv) > 6 else "")
        super().__init__(f"git failed ({returncode}): {shown}: {stderr.strip()[-2000:]}")

    def __reduce__(self) -> tuple[object, ...]:
        return type(self), (self.argv, self.returncode, self.stderr)


class PushRejected(GitError):
    """The remote refused the push because the branch moved (not a fast-forward)."""


class SandboxError(LongshotError, RuntimeError):
    """A sandbox could not be created, used or cleaned up."""


class SetupFailed(SandboxError):
    """A trusted set-up command (SANDBOX_SETUP_COMMAND, or a check's dependency set-up) failed."""

    def __init__(self, message: str, *, command: str, output: str) -> None:
        super().__init__(message)
        self.command = command
        self.output = output

    def __reduce__(self) -> tuple[object, ...]:
        return _rebuild_setup_failed, (type(self), str(self), self.command, self.output)


def _rebuild_setup_failed(cls: type[SetupFailed], message: str, command: str, output: str) -> SetupFailed:
    return cls(message, command=command, output=output)


class SandboxLost(SandboxError):
    """A remote sandbox is gone: its node or actor died, or its container was terminated.

    Its work since the last snapshot is lost; the task is retried in a new sandbox.
    """


class SnapshotRefused(SandboxError):
    """The worker's result broke a snapshot rule; nothing was committed."""

    def __init__(self, rule: str, paths: list[str]) -> None:
        self.rule = rule
        self.paths = paths
        shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
        super().__init__(f"result refused ({rule}): {shown}")

    def __reduce__(self) -> tuple[object, ...]:
        return type(self), (self.rule, self.paths)


class SandboxUnavailable(SandboxError):
    """The provider could not be reached, or had no capacity, for now; worth another try."""


class PathOutsideSandbox(SandboxError, ValueError):
    """A tool asked for an absolute path or one that escapes the checkout."""


class FileRefused(SandboxError, ValueError):
    """A file tool refused a file: not a regular file, too large, or changed while opened.

    The message is for the model; the task carries on.
    """


class LLMError(LongshotError):
    """A model request failed. ``endpoint`` names where it was sent."""

    def __init__(self, message: str, endpoint: str = "", retry_after: float | None = None) -> None:
        self.endpoint = endpoint
        self.retry_after = retry_after
        prefix = f"[{endpoint}] " if endpoint else ""
        super().__init__(prefix + message)


class LLMRateLimited(LLMError):
    """HTTP 429."""


class LLMServerError(LLMError):
    """HTTP 5xx, or an answer that is empty or cannot be read."""


class LLMTimeout(LLMError, TimeoutError):
    """No complete answer within the request timeout."""


class LLMConnectionError(LLMError, ConnectionError):
    """The endpoint could not be reached or dropped the connection."""


class LLMContextOverflow(LLMError):
    """The request exceeds the model's context window."""


class LLMBadRequest(LLMError):
    """A 4xx answer other than 429: retrying the same request will not help."""


class PlanParseError(LongshotError, ValueError):
    """A planner answer that could not be turned into tasks; sent back to the model."""


class BudgetExceeded(LongshotError):
    """A budget ran out; ``budget`` names the setting (e.g. ``RUN_MAX_COST_USD``)."""

    def __init__(self, budget: str, message: str) -> None:
        self.budget = budget
        super().__init__(message)


@dataclass(frozen=True)
class RetryPolicy:
    """How to treat one kind of error."""

    retry: bool
    max_attempts: int = 1
    """Attempts in all; where ``max_seconds`` is set, the router bounds by time instead."""
    base_delay: float = 0.0
    max_delay: float = 0.0
    hint: str = ""
    max_seconds: float | None = None
    """Transient errors: retried, however many times, until this long after the first attempt
    (the router may be given another bound: ``LLM_RETRY_SECONDS``); the budget bounds them too."""


RETRY_POLICY: dict[type[LongshotError], RetryPolicy] = {
    LLMRateLimited: RetryPolicy(True, 30, 1.0, 60.0, "the endpoint is throttling; honour Retry-After", 600.0),
    LLMServerError: RetryPolicy(True, 5, 0.25, 15.0, "the endpoint failed; it may recover", 600.0),
    LLMTimeout: RetryPolicy(True, 3, 1.0, 30.0, "raise LLM_TIMEOUT if the model is slow", 600.0),
    LLMConnectionError: RetryPolicy(True, 5, 0.5, 15.0, "check LLM_BASE_URL and that the server runs", 600.0),
    LLMContextOverflow: RetryPolicy(False, hint="the conversation must be compacted"),
    LLMBadRequest: RetryPolicy(False, hint="check the model name and the endpoint's API"),
    LLMError: RetryPolicy(False, hint="unexpected model error"),
    BudgetExceeded: RetryPolicy(False, hint="raise the budget or accept the partial result"),
    PushRejected: RetryPolicy(True, 5, 0.0, 0.0, "the target branch moved; rebuild on the new tip"),
    GitError: RetryPolicy(False, hint="see the git message"),
    SetupFailed: RetryPolicy(False, hint="the set-up command or a dependency is wrong; see its output"),
    SandboxLost: RetryPolicy(True, 3, 1.0, 10.0, "the node or container was lost; the task starts again elsewhere"),
    SandboxUnavailable: RetryPolicy(True, 4, 2.0, 30.0, "the provider is unreachable or full; check its status"),
    SandboxError: RetryPolicy(False, hint="see the sandbox message"),
    ConfigError: RetryPolicy(False, hint="fix the setting the message names"),
}


def policy_for(error: BaseException) -> RetryPolicy:
    """The policy of the most specific class in ``RETRY_POLICY`` the error belongs to."""
    for cls in type(error).__mro__:
        if cls in RETRY_POLICY:
            return RETRY_POLICY[cls]
    return RetryPolicy(False)


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None = None) -> float:
    """Exponential delay for ``attempt`` (1-based), never shorter than ``retry_after``."""
    delay = min(policy.max_delay, policy.base_delay * (2.0 ** max(0, attempt - 1)))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
