"""Building a remote provider (Ray, Modal) from the settings, for the composition root.

Kept apart from `longshot.orchestrator` so the composition root stays one screen per
concern: this module maps settings to `RayOptions` / `ModalOptions` and turns a missing
SDK or an impossible combination into a `ConfigError` that names the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from longshot.config import Config
from longshot.errors import ConfigError
from longshot.sandboxes.base import SandboxProvider
from longshot.sandboxes.bundle import ResultRules
from longshot.sandboxes.local import LocalOptions
from longshot.sandboxes.modal import ModalOptions, ModalSandboxProvider
from longshot.sandboxes.ray import RayOptions, RaySandboxProvider

LIFETIME_MARGIN = 300
"""Seconds a Modal sandbox lives beyond WORKER_TIMEOUT and the set-up time (transfers, checks)."""


def remote_provider(config: Config, work_dir: Path, run_id: str,
                    local_options: Callable[[Config], LocalOptions]) -> SandboxProvider:
    """The provider SANDBOX_PROVIDER (ray or modal) names. ``local_options`` gives the node profile."""
    kind = config.sandbox_provider
    if config.worker_harness != "builtin":
        raise ConfigError(f"WORKER_HARNESS: {config.worker_harness!r} needs a Unix socket on this machine, which a "
                          f"{kind} sandbox cannot reach. Fix: set WORKER_HARNESS=builtin, or SANDBOX_PROVIDER=local.")
    local = local_options(config)
    try:
        if kind == "ray":
            return RaySandboxProvider(work_dir, ray_options(config, local), run_id)
        return ModalSandboxProvider(work_dir, modal_options(config, local), run_id)
    except ModuleNotFoundError as e:
        raise ConfigError(f"SANDBOX_PROVIDER: {kind} needs the {e.name} package, which is not installed. Fix: "
                          f"pip install 'longshot[{kind}]'.") from e


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
