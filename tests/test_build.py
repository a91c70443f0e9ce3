"""The build room: every SANDBOX_PROVIDER value has one builder, and builders refuse what cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from longshot.build import PROVIDERS, REMOTE, build_provider
from longshot.config import Config, load_config
from longshot.errors import ConfigError
from longshot.sandboxes.local import LocalSandboxProvider


def settings(tmp_path: Path, **extra: str) -> Config:
    (tmp_path / "r.git").mkdir(exist_ok=True)
    return load_config({"GIT_REPO_URL": str(tmp_path / "r.git"), "LLM_BASE_URL": "http://127.0.0.1:9",
                        "LLM_MODEL": "m", "LONGSHOT_WORK_DIR": str(tmp_path / "w"), **extra}, env_file=None)


def test_every_provider_the_settings_accept_has_one_builder() -> None:
    accepted = set(get_args(Config.model_fields["sandbox_provider"].annotation))
    assert accepted == set(PROVIDERS)
    assert REMOTE < set(PROVIDERS)


def test_the_local_builder_makes_a_local_provider_with_the_settings_limits(tmp_path: Path) -> None:
    provider = build_provider(settings(tmp_path, SANDBOX_ISOLATION="none", SANDBOX_MEMORY_MB="512"), "run-1")
    assert isinstance(provider, LocalSandboxProvider)
    assert provider.options.limits.memory_mb == 512
    assert provider.work_dir == (tmp_path / "w").resolve()


@pytest.mark.parametrize("kind", sorted(REMOTE))
def test_remote_builders_refuse_a_harness_that_needs_a_local_socket(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError, match="WORKER_HARNESS.*builtin"):
        build_provider(settings(tmp_path, SANDBOX_PROVIDER=kind, WORKER_HARNESS="aider"), "run-1")


def test_default_sandbox_sizes_are_fitted_to_a_smaller_machine_and_said(tmp_path: Path) -> None:
    """Issue 18 item 9: a default that cannot work here is lowered, with a warning naming it."""
    from longshot.build import fit_to_machine
    from longshot.events import RunWarning

    said: list[object] = []
    config = load_config({"GIT_REPO_URL": str(tmp_path), "LLM_BASE_URL": "http://127.0.0.1:9", "LLM_MODEL": "m"},
                         env_file=None)
    fitted = fit_to_machine(config, said.append, found=(2, 3000))
    assert (fitted.sandbox_cpu_cores, fitted.sandbox_memory_mb) == (2, 1500)
    messages = [e.message for e in said if isinstance(e, RunWarning)]
    assert any(m.startswith("SANDBOX_CPU_CORES: the default 4") and "using 2" in m for m in messages)
    assert any(m.startswith("SANDBOX_MEMORY_MB: the default 8192") and "using 1500" in m for m in messages)
    assert fit_to_machine(config, said.append, found=(64, 100_000)) is config  # a machine they fit: unchanged


@pytest.mark.parametrize(("name", "value"), [("SANDBOX_CPU_CORES", "8"), ("SANDBOX_MEMORY_MB", "9000")])
def test_a_size_the_user_set_is_still_checked_strictly(tmp_path: Path, name: str, value: str) -> None:
    from longshot.build import fit_to_machine

    config = load_config({"GIT_REPO_URL": str(tmp_path), "LLM_BASE_URL": "http://127.0.0.1:9", "LLM_MODEL": "m",
                          name: value}, env_file=None)
    with pytest.raises(ConfigError, match=rf"^{name}: .* but this machine has .* Fix: set {name}"):
        fit_to_machine(config, lambda e: None, found=(2, 3000))
