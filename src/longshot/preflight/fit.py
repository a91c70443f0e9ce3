"""Defaults that fit the machine: a default that cannot work here is adapted and said; a value
the user set explicitly is checked strictly (exit 2 naming it).

Local sandboxes: ``SANDBOX_CPU_CORES`` above this machine's cores and ``SANDBOX_MEMORY_MB``
above its memory. (Ray sandboxes are fitted to the cluster's largest node by the Ray
provider, the same way; Modal sizes its own machines.)
"""

from __future__ import annotations

import os
from pathlib import Path

from longshot.config import Config
from longshot.errors import ConfigError
from longshot.events import Emit, RunWarning


def machine() -> tuple[int, int]:
    """(CPU cores this process may use, memory in MiB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []:
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) // 1024
    return cores, memory


def fit_to_machine(config: Config, emit: Emit, found: tuple[int, int] | None = None) -> Config:
    """``config`` with its local sandbox size fitted to this machine (``found``: cores, MiB)."""
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
        emit(RunWarning(message=f"{name}: the default {value} {unit} per sandbox is more than this machine has "
                                f"({have}); using {fitted}. Set {name} to choose"))
    return config.model_copy(update=updates) if updates else config
