"""What runs whose orchestrator died left in the sandbox provider: salvaged, then cleaned up.

First the provider commits the work left in dead runs' sandboxes to their branches (so a
resumed run carries it on); then it destroys whatever of them is still there (remote
containers and actors, empty cgroups, unreadable task directories). Both are reported.
"""

from __future__ import annotations

from longshot.errors import SandboxError
from longshot.events import Emit, RunWarning
from longshot.harnesses.base import HarnessResult
from longshot.hub import Hub
from longshot.pipeline.handoff import commit_message
from longshot.pipeline.state import RunState, StateStore
from longshot.sandboxes.base import SandboxProvider


async def clean_leftovers(provider: SandboxProvider, hub: Hub, record: RunState, state: StateStore, emit: Emit) -> None:
    """Salvage, then sweep (see the module docstring); branches that got work are published."""
    by_branch = {t.branch: t for t in record.tasks}

    def message(branch: str) -> str:
        task = by_branch.get(branch)
        if task is None:  # a task the record never knew of: kept, and set aside by `recover`
            ours = branch.startswith(hub.prefix) and not branch.endswith(("/gate", "/reconciler"))
            return f"Salvaged work of {branch} from an interrupted run\n" if ours else ""
        note = HarnessResult(status="partial", summary="Salvaged from a run that was killed.")
        return commit_message(task, note, status="interrupted")

    for left in await provider.recover(hub.path, message):
        if left.error:
            emit(RunWarning(code="leftover.unsalvaged", message=f"could not salvage sandbox {left.name} of a dead run: {left.error}"))
        elif left.commit:
            emit(RunWarning(code="leftover.salvaged", message=f"salvaged the work left in sandbox {left.name} onto {left.branch} "
                                    f"({left.commit[:10]})"))
            state.mark("salvaged", left.branch)
    try:
        swept = await provider.sweep_orphans()
    except SandboxError as e:  # the run may still work; the next one sweeps again
        emit(RunWarning(code="leftover.scan_failed", message=f"could not look for leftovers of crashed runs: {e}"))
        return
    if swept:
        emit(RunWarning(code="leftover.cleaned", message=f"cleaned up {len(swept)} leftovers of runs whose orchestrator died: "
                                + "; ".join(swept[:20]) + (" ..." if len(swept) > 20 else "")))
