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
import subprocess
from collections.abc import Callable
from pathlib import Path

from longshot.budget import RunBudget
from longshot.config import Config
from longshot.errors import ConfigError
from longshot.events import Bus, Emit, RunWarning
from longshot.git import SAFE_CONFIG
from longshot.harnesses.base import Desk, Harness
from longshot.harnesses.builtin import BuiltinHarness
from longshot.harnesses.external import ExternalHarness, load_agent
from longshot.llm.base import ROLES, ChatModel
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.prices import PriceTable
from longshot.llm.requestlog import RequestLog
from longshot.preflight.check import EndpointSpec, PreflightOptions
from longshot.llm.router import Router
from longshot.ownfiles import configured_paths
from longshot.prompts import Prompts
from longshot.sandboxes.base import SandboxProvider
from longshot.sandboxes.bundle import ResultRules
from longshot.sandboxes.egress import DEFAULT_HOSTS
from longshot.sandboxes.limits import Cgroup, Limits
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


def worker_price(config: Config) -> tuple[float, float] | None:
    """USD per million input and output tokens of the worker model (None: unknown)."""
    return PriceTable(config.llm_prices_file).lookup(config.model_for("worker"))


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
        overlay=config.sandbox_overlay,
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
                      local=local, fit=("sandbox_cpu_cores" not in config.model_fields_set,
                                        "sandbox_memory_mb" not in config.model_fields_set))


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


def build_harness(config: Config, model: ChatModel, prompts: Prompts, emit: Emit, desk: Desk | None = None) -> Harness:
    """WORKER_HARNESS: ``builtin``, or an agent CLI registered in ``harnesses/agents.json``.

    ``desk``: where the builtin harness hears of predicted conflicts and sends ``merge_tip``."""
    if config.worker_harness == "builtin":
        return BuiltinHarness(model, prompts, emit, max_steps=config.task_max_steps,
                              max_tokens=config.task_max_tokens, model_name=config.model_for("worker"),
                              context_limit=config.llm_context_window, desk=desk)
    return ExternalHarness(load_agent(config.worker_harness), model, prompts, emit,
                           model_name=config.model_for("worker"), executable=config.harness_bin,
                           timeout=config.worker_timeout)


# -- what a run is checked with and fitted to, before it starts (issue 18) -----------------

DEFAULT_COST_USD = 10.0
DEFAULT_TOKENS = 20_000_000


def model_settings(config: Config, model: str) -> str:
    """The variables that give ``model`` to a role (``WORKER_MODEL``, or ``LLM_MODEL`` by default)."""
    names = [f"{role.upper()}_MODEL" if f"{role}_model" in config.model_fields_set and
             getattr(config, f"{role}_model") != config.llm_model else "LLM_MODEL"
             for role in ROLES if config.model_for(role) == model]
    return " / ".join(dict.fromkeys(names)) or "LLM_MODEL"


def preflight_options(config: Config) -> PreflightOptions:
    """What the preflight (`longshot.preflight`) checks: endpoints with their settings' names, models, sandbox."""
    many = bool(config.llm_endpoints)
    endpoints = [EndpointSpec(ep.name, ep.base_url, ep.api_key.get_secret_value(),
                              f"LLM_ENDPOINTS (entry {ep.name!r})" if many else "LLM_BASE_URL",
                              f"LLM_ENDPOINTS (apiKey of {ep.name!r})" if many else "LLM_API_KEY",
                              f"endpoint {ep.name}" if many else "endpoint") for ep in config.endpoints]
    models = {m: model_settings(config, m) for m in dict.fromkeys(config.model_for(role) for role in ROLES)}
    group = Cgroup.create(f"longshot-preflight-{os.getpid()}-0", Limits()) if config.sandbox_provider == "local" else None
    if group is not None:
        group.remove()
    return PreflightOptions(endpoints=endpoints, models=models, context_window=config.llm_context_window,
                            sandbox_provider=config.sandbox_provider, sandbox_isolation=config.sandbox_isolation,
                            cgroup_version=group.version if group else None,
                            disk_path=config.sandbox_tasks_dir or config.longshot_work_dir,
                            repo_url=config.git_repo_url, branch=config.git_main_branch, many_endpoints=many)


def default_budget(config: Config, emit: Emit) -> RunBudget:
    """The run's budget: the configured one, or the default guard (see the module docstring)."""
    prices = PriceTable(config.llm_prices_file)
    models = list(dict.fromkeys(config.model_for(role) for role in ROLES))
    unpriced = [m for m in models if prices.lookup(m) is None]
    off = config.run_max_cost_usd == "none"
    cost = config.run_max_cost_usd if isinstance(config.run_max_cost_usd, float) else None
    tokens = config.run_max_tokens if isinstance(config.run_max_tokens, int) else None
    guard = ""
    if not off and cost is None and not unpriced:
        cost, guard = DEFAULT_COST_USD, f"RUN_MAX_COST_USD={DEFAULT_COST_USD:g} (the default)"
    if not off and cost is None and tokens is None and config.run_max_tokens != "none" and unpriced:
        tokens, guard = DEFAULT_TOKENS, f"RUN_MAX_TOKENS={DEFAULT_TOKENS:,} (the default, as a price is unknown)"
    if unpriced:
        names = ", ".join(f"{m} ({model_settings(config, m)})" for m in unpriced)
        emit(RunWarning(code="price.unknown", message=f"no price is known for {names}: its cost is not counted and is shown as unknown"
                                + (f"; {guard} guards the run" if guard else "")
                                + ". Fix: give its prices in LLM_PRICES_FILE (USD per million input, output tokens)"))
    return RunBudget(max_tokens=tokens, max_cost_usd=cost, unpriced=unpriced)


def machine() -> tuple[int, int]:
    """(CPU cores this process may use, memory in MiB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []:
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) // 1024
    return cores, memory


def fit_to_machine(config: Config, emit: Emit, found: tuple[int, int] | None = None) -> Config:
    """``config`` with its local sandbox size fitted to this machine (``found``: cores, MiB): a
    default that cannot work is lowered and said; a value the user set is refused (exit 2).
    Ray sandboxes are fitted to the largest node by the Ray provider (`RayOptions.fit`)."""
    if config.sandbox_provider != "local":
        return config
    cores, memory = found or machine()
    wanted = {"sandbox_cpu_cores": (config.sandbox_cpu_cores, cores, "cores", cores),
              "sandbox_memory_mb": (config.sandbox_memory_mb, memory, "MiB of memory", max(256, memory // 2))}
    updates: dict[str, int] = {}
    for field, (value, have, unit, fitted) in wanted.items():
        if not have or value <= have:
            continue
        name = field.upper()
        if field in config.model_fields_set:
            raise ConfigError(f"{name}: {value} {unit} per sandbox, but this machine has {have}. Fix: set {name} "
                              f"to {have} or less, or unset it to use a default that fits")
        updates[field] = fitted
        emit(RunWarning(code="resources.fitted", message=f"{name}: the default {value} {unit} per sandbox is more than this machine has "
                                f"({have}); using {fitted}. Set {name} to choose"))
    return config.model_copy(update=updates) if updates else config


def own_paths(config: Config) -> list[str]:
    """Paths in the target repository (a local path, or the git work tree of the current
    directory) of the files and directories the settings make Longshot read: besides ``.env``
    and ``.longshot/`` anywhere (`longshot.ownfiles.OWN_FILE`), these are never landed."""
    repos = [Path(config.git_repo_url)] if Path(config.git_repo_url).is_dir() else []
    top = subprocess.run(["git", *SAFE_CONFIG, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                         check=False)
    if top.returncode == 0 and top.stdout.strip():
        repos.append(Path(top.stdout.strip()))
    image = config.modal_image if config.modal_image and Path(config.modal_image).is_file() else None
    return configured_paths(repos, [config.longshot_work_dir, config.longshot_log_dir, config.sandbox_tasks_dir,
                                    config.llm_prices_file, image, config.harness_bin])
