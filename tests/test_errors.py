"""The error tree and its retry table: every error a backend translates to has a policy."""

from __future__ import annotations

import pickle

from longshot.errors import (
    RETRY_POLICY, ConfigError, GitError, SandboxError, SandboxLost, SandboxUnavailable, SetupFailed, policy_for,
)
from longshot.sandboxes import modal, ray
from longshot.sandboxes.snapshot import SnapshotRefused


def test_every_error_the_providers_translate_to_is_in_the_retry_table() -> None:
    targets = {cls for _, cls in modal.TRANSLATE} | {cls for _, cls in ray.TRANSLATE}
    assert {SandboxLost, SandboxUnavailable, SandboxError, ConfigError} <= targets
    assert [cls.__name__ for cls in targets if cls not in RETRY_POLICY] == []


def test_a_lost_or_unreachable_sandbox_is_retried_and_a_broken_one_is_not() -> None:
    assert policy_for(SandboxLost("node died")).retry and policy_for(SandboxLost("x")).max_attempts >= 2
    assert policy_for(SandboxUnavailable("quota")).retry
    assert not policy_for(SandboxError("bad image")).retry
    assert not policy_for(SetupFailed("f", command="c", output="o")).retry
    assert not policy_for(SnapshotRefused("rule", ["p"])).retry
    assert not policy_for(ConfigError("bad token")).retry


def test_errors_with_fields_survive_a_process_boundary() -> None:
    """A Ray actor's errors come back pickled; each must keep its class and fields."""
    errors = [SetupFailed("failed (exit 7)", command="make", output="boom"), GitError(["git", "fetch"], 128, "no"),
              SnapshotRefused("symlinks must point inside the repository", ["a -> /etc"]), SandboxLost("gone")]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error) and vars(back) == vars(error)
