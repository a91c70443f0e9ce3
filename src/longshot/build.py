"""The build room: the one place that turns `Config` into components (models, providers, harnesses).

Nothing below this module imports `Config` (`tests/test_architecture.py` checks it): backends
receive option objects (`LocalOptions`, `RayOptions`, `ModalOptions`) and collaborators,
never the settings. The composition roots (`orchestrator.py`, `cli.py`) call in here.

Plugging in a backend is one registration: a builder in `PROVIDERS` (keyed by the
SANDBOX_PROVIDER value, which `Config` validates; a test keeps the two in step) or, for a
worker harness, a line in `harnesses/agents.json` (external agent CLIs) beside ``builtin``.
Optional SDKs (ray, modal) are imported inside their backends when a provider is made, so a
run that does not use them never loads them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from longshot.budget import RunBudget
from longshot.config import Config
from longshot.errors import ConfigError
from longshot.events import Bus, Emit
from longshot.harnesses.base import Harness
from longshot.harnesses.builtin import BuiltinHarness
from longshot.harnesses.external import ExternalHarness, load_agent
from longshot.llm.base import ROLES, ChatModel
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.prices import PriceTable
from longshot.llm.requestlog import RequestLog
from longshot.llm.router import Router
from longshot.prompts import Prompts
from longshot.sandboxes.base import SandboxProvider
from longshot.sandboxes.bundle import ResultRules
from longshot.sandboxes.egress import DEFAULT_HOSTS
from longshot.sandboxes.limits import Limits
from longshot.sandboxes.local import LocalOptions, LocalSandboxProvider
from longshot.sandboxes.modal import ModalOptions, ModalSandboxProvider
from longshot.sandboxes.ray import RayOptions, RaySandboxProvider

LIFETIME_MARGIN = 300
"""Seconds a Modal sandbox lives beyond WORKER_TIMEOUT and the set-up time (transfers, checks)."""

ProviderBuilder = Callable[[Config, Path, str], SandboxProvider]
"""(settings, work directory, run id) -> the provider; remote ones label their sandboxes with the run id."""


def build_model(config: Config, bus: Bus, budget: RunBudget, request_log: Path | None = None) -> Router:
    """The router over every configured endpoint, with the run's budget and request log."""
    endpoints = [
        (OpenAICompatEndpoint(name=ep.name, base_url=ep.base_url, api_key=ep.api_key.get_secret_value(),
                              max_tokens=config.llm_max_tokens, temperature=config.llm_temperature,
                              timeout=config.llm_timeout), ep.weight)
        for ep in config.endpoints
    ]
    return Router(endpoints, {role: config.model_for(role) for role in ROLES}, bus.emit, budget=budget,
                  prices=PriceTable(config.llm_prices_file),
                  request_log=RequestLog(request_log, config.secrets()) if request_log else None,
                  max_concurrency=config.llm_max_concurrency or max(64, config.max_workers + 4),
                  rest_seconds=config.llm_endpoint_rest, retry_seconds=config.llm_retry_seconds)


def harness_paths(config: Config) -> list[str]:
    """Read-only paths an external harness needs inside the sandbox (its install)."""
    if config.worker_harness == "builtin":
        return []
    spec = load_agent(config.worker_harness)
    found = config.harness_bin or shutil.which(spec.bin)
    if not found or not os.path.exists(found):
        raise ConfigError(f"HARNESS_BIN: {spec.name} ({spec.bin}) was not found. Fix: {spec.install}, "
                          "then set HARNESS_BIN to its path.")
    real = os.path.realpath(found)
    return sorted({os.path.dirname(os.path.dirname(p)) for p in (os.path.abspath(found), real)})


def local_options(config: Config) -> LocalOptions:
    """The bubblewrap profile and limits of local sandboxes (and of Ray sandboxes, on their nodes)."""
    limits = Limits(memory_mb=config.sandbox_memory_mb, cpu_cores=config.sandbox_cpu_cores,
                    processes=config.sandbox_max_processes, open_files=config.sandbox_max_open_files,
                    disk_mb=config.sandbox_disk_mb, files=config.sandbox_max_files)
    return LocalOptions(
        isolation=config.sandbox_isolation, network=config.sandbox_network == "on", limits=limits,
        setup_command=config.sandbox_setup_command, setup_timeout=config.sandbox_setup_timeout,
        setup_hosts=DEFAULT_HOSTS if config.sandbox_setup_hosts is None else
        tuple(h.strip() for h in config.sandbox_setup_hosts.split(",") if h.strip()),
        ro_paths=[p for p in config.sandbox_ro_paths.split(":") if p] + harness_paths(config),
        max_file_bytes=config.snapshot_max_file_mb * 1024 * 1024, max_changed_files=config.snapshot_max_files,
        author=(config.git_commit_name, config.git_commit_email), tasks_dir=config.sandbox_tasks_dir,
    )


def _local(config: Config, work_dir: Path, run_id: str) -> SandboxProvider:
    if config.sandbox_isolation == "bubblewrap" and shutil.which("bwrap") is None:
        raise ConfigError("SANDBOX_ISOLATION: bubblewrap (bwrap) is not installed, and workers must not run "
                          "model-written commands unisolated. Fix: install it (apt-get install bubblewrap), "
                          "or set SANDBOX_ISOLATION=none to run without isolation at your own risk.")
    return LocalSandboxProvider(work_dir, local_options(config))


def _ray(config: Config, work_dir: Path, run_id: str) -> SandboxProvider:
    return RaySandboxProvider(work_dir, ray_options(config, local_options(config)), run_id)


def _modal(config: Config, work_dir: Path, run_id: str) -> SandboxProvider:
    return ModalSandboxProvider(work_dir, modal_options(config, local_options(config)), run_id)


def ray_options(config: Config, local: LocalOptions) -> RayOptions:
    """RAY_ADDRESS and the per-sandbox resources; ``local`` is the profile applied on the node."""
    return RayOptions(address=config.ray_address, cpus=config.sandbox_cpu_cores, memory_mb=config.sandbox_memory_mb,
                      local=local)


def modal_options(config: Config, local: LocalOptions) -> ModalOptions:
    """MODAL_*, the resources, timeouts and network policy, and the snapshot rules."""
    return ModalOptions(
        app_name=config.modal_app_name, image=config.modal_image, cpus=config.sandbox_cpu_cores,
        memory_mb=config.sandbox_memory_mb, idle_timeout=int(config.sandbox_idle_timeout),
        lifetime=int(config.worker_timeout + config.sandbox_setup_timeout + LIFETIME_MARGIN),
        network=local.network, setup_command=local.setup_command, setup_timeout=local.setup_timeout,
        output_limit=local.output_limit, rules=ResultRules(local.max_file_bytes, local.max_changed_files, local.author))


PROVIDERS: dict[str, ProviderBuilder] = {"local": _local, "ray": _ray, "modal": _modal}
"""SANDBOX_PROVIDER value -> its builder: a new provider is one entry here (and its name in `Config`)."""
REMOTE = frozenset({"ray", "modal"})
"""Providers whose sandboxes run on other machines: they cannot reach a Unix socket on this one."""


def build_provider(config: Config, run_id: str) -> SandboxProvider:
    """The sandbox provider SANDBOX_PROVIDER names; remote ones label their sandboxes with ``run_id``."""
    kind = config.sandbox_provider
    if kind not in PROVIDERS:  # Config validates the name; this guards a registry that fell behind
        raise ConfigError(f"SANDBOX_PROVIDER: unknown provider {kind!r}. Fix: use one of {', '.join(PROVIDERS)}.")
    if kind in REMOTE and config.worker_harness != "builtin":
        raise ConfigError(f"WORKER_HARNESS: {config.worker_harness!r} needs a Unix socket on this machine, which a "
                          f"{kind} sandbox cannot reach. Fix: set WORKER_HARNESS=builtin, or SANDBOX_PROVIDER=local.")
    try:
        return PROVIDERS[kind](config, config.longshot_work_dir.resolve(), run_id)
    except ModuleNotFoundError as e:
        raise ConfigError(f"SANDBOX_PROVIDER: {kind} needs the {e.name} package, which is not installed. Fix: "
                          f"pip install 'longshot[{kind}]'.") from e


def build_harness(config: Config, model: ChatModel, prompts: Prompts, emit: Emit) -> Harness:
    """WORKER_HARNESS: ``builtin``, or an agent CLI registered in ``harnesses/agents.json``."""
    if config.worker_harness == "builtin":
        return BuiltinHarness(model, prompts, emit, max_steps=config.task_max_steps,
                              max_tokens=config.task_max_tokens, model_name=config.model_for("worker"),
                              context_limit=config.llm_context_window)
    return ExternalHarness(load_agent(config.worker_harness), model, prompts, emit,
                           model_name=config.model_for("worker"), executable=config.harness_bin,
                           timeout=config.worker_timeout)
