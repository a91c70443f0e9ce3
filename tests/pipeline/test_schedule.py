"""The task ledger: ready order, dependencies, failure propagation, and the events it emits."""

from __future__ import annotations

import pytest

from longshot.errors import IllegalTransition
from longshot.events import Event, FileHot, TaskCreated, TaskStatusChanged
from longshot.pipeline.hotfiles import HotFiles, UnionFiles
from longshot.pipeline.schedule import Scheduler
from longshot.types import Task, TaskStatus


def make(task_id: str, priority: int = 5, depends_on: list[str] | None = None) -> Task:
    return Task(id=task_id, description=f"do {task_id}", branch=f"worker/{task_id}", scope=[f"src/{task_id}.py"],
                priority=priority, depends_on=depends_on or [])


def scheduler(*tasks: Task) -> tuple[Scheduler, list[Event]]:
    events: list[Event] = []
    s = Scheduler(events.append)
    for t in tasks:
        s.add(t)
    return s, events


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def land(s: Scheduler, task_id: str) -> None:
    t = s.tasks[task_id]
    s.move(t, TaskStatus.RUNNING)
    s.move(t, TaskStatus.MERGING)
    s.move(t, TaskStatus.LANDED)


def test_ready_orders_by_priority_then_insertion() -> None:
    s, _ = scheduler(make("a", 5), make("b", 1), make("c", 5), make("d", 3), make("e", 1), make("f", 9))
    assert ids(s.ready()) == ["b", "e", "d", "a", "c", "f"]
    # asking again changes nothing
    assert ids(s.ready()) == ["b", "e", "d", "a", "c", "f"]


def test_ready_only_lists_pending_tasks() -> None:
    s, _ = scheduler(make("a"), make("b"), make("c"))
    s.move(s.tasks["a"], TaskStatus.RUNNING)
    s.move(s.tasks["c"], TaskStatus.CANCELLED)
    assert ids(s.ready()) == ["b"]
    assert ids(s.active) == ["a"]
    assert s.open_work()


def test_dependency_waits_until_landed() -> None:
    s, _ = scheduler(make("base"), make("dep", priority=1, depends_on=["base"]))
    assert ids(s.ready()) == ["base"]
    base = s.tasks["base"]
    s.move(base, TaskStatus.RUNNING)
    assert ids(s.ready()) == []
    s.move(base, TaskStatus.MERGING)
    assert ids(s.ready()) == []
    assert s.tasks["dep"].status == TaskStatus.PENDING
    s.move(base, TaskStatus.LANDED)
    assert ids(s.ready()) == ["dep"]


def test_waits_for_all_dependencies() -> None:
    s, _ = scheduler(make("a"), make("b"), make("c", depends_on=["a", "b"]))
    land(s, "a")
    assert ids(s.ready()) == ["b"]
    land(s, "b")
    assert ids(s.ready()) == ["c"]


def test_dependency_on_an_earlier_task_id_added_later() -> None:
    s, _ = scheduler(make("c", depends_on=["a"]), make("a"))
    assert ids(s.ready()) == ["a"]
    land(s, "a")
    assert ids(s.ready()) == ["c"]


@pytest.mark.parametrize("ending", [TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.PARTIAL,
                                    TaskStatus.UNCHANGED, TaskStatus.CANCELLED])
def test_dependency_that_ends_without_landing_fails_the_dependent(ending: TaskStatus) -> None:
    """A dependency that may still be retried or re-planned (failed, blocked, partial) holds its
    dependents until the planner gives the work up; one that never can (unchanged, cancelled)
    fails them at once."""
    s, events = scheduler(make("a"), make("b", depends_on=["a"]), make("c", depends_on=["b"]), make("free"))
    a = s.tasks["a"]
    if ending != TaskStatus.CANCELLED:
        s.move(a, TaskStatus.RUNNING)
    s.move(a, ending, "reason of a")
    assert ids(s.ready()) == ["free"]
    b, c = s.tasks["b"], s.tasks["c"]
    if ending in (TaskStatus.FAILED, TaskStatus.BLOCKED, TaskStatus.PARTIAL):
        assert b.status == c.status == TaskStatus.PENDING and ids(s.waiting()) == ["b"]
        assert ids(s.give_up()) == ["b", "c"]
    else:  # b fails at once; c waits on b as on any failed task, until the planner gives up
        assert b.status == TaskStatus.FAILED and c.status == TaskStatus.PENDING
        assert ids(s.give_up()) == ["c"]
    assert b.status == TaskStatus.FAILED
    assert "a" in b.reason.split() and str(ending) in b.reason
    assert c.status == TaskStatus.FAILED and "b" in c.reason.split()
    changes = [(e.task_id, e.before, e.after) for e in events if isinstance(e, TaskStatusChanged)]
    assert ("b", "pending", "failed") in changes and ("c", "pending", "failed") in changes
    reasons = {e.task_id: e.reason for e in events if isinstance(e, TaskStatusChanged) and e.task_id in ("b", "c")}
    assert reasons["b"] == b.reason and reasons["c"] == c.reason


def test_failed_dependency_message_names_it() -> None:
    s, _ = scheduler(make("parser-fix"), make("docs", depends_on=["parser-fix"]))
    p = s.tasks["parser-fix"]
    s.move(p, TaskStatus.RUNNING)
    s.move(p, TaskStatus.FAILED, "tests fail")
    s.ready()
    assert s.tasks["docs"].status == TaskStatus.PENDING
    s.give_up()
    assert s.tasks["docs"].status == TaskStatus.FAILED
    assert "parser-fix" in s.tasks["docs"].reason
    assert "failed" in s.tasks["docs"].reason


@pytest.mark.parametrize("link", ["replaces", "continue_from"])
def test_dependents_of_a_failed_task_wait_for_its_successor_and_start_when_it_lands(link: str) -> None:
    """The planner re-plans failed work as a new task that names it: the dependents wait through
    the planner's give-up call and start once the successor lands (the failed task superseded)."""
    s, _ = scheduler(make("a"), make("b", depends_on=["a"]))
    a = s.tasks["a"]
    s.move(a, TaskStatus.RUNNING)
    s.move(a, TaskStatus.FAILED, "refused")
    s.add(Task(id="a2", description="redo a", branch="worker/a2", **{link: "a"}))
    assert s.waiting() == [] and ids(s.ready()) == ["a2"]
    assert s.give_up() == [] and s.tasks["b"].status == TaskStatus.PENDING  # a2 carries a on
    land(s, "a2")
    s.move(a, TaskStatus.SUPERSEDED, "carried on by a2")
    assert ids(s.ready()) == ["b"]


def test_a_chain_of_successors_keeps_the_dependents_waiting() -> None:
    s, _ = scheduler(make("a"), make("b", depends_on=["a"]))
    for task_id, replaces in (("a", None), ("a2", "a")):
        if replaces:
            s.add(Task(id=task_id, description="redo", branch=f"worker/{task_id}", replaces=replaces))
        t = s.tasks[task_id]
        s.move(t, TaskStatus.RUNNING)
        s.move(t, TaskStatus.FAILED, "again")
    s.add(Task(id="a3", description="redo again", branch="worker/a3", replaces="a2"))
    assert s.carried() == {"a", "a2"} and s.give_up() == []
    s.move(s.tasks["a3"], TaskStatus.CANCELLED)
    assert ids(s.give_up()) == ["b"]


def test_a_dependency_whose_conflict_fix_is_open_is_waited_for() -> None:
    """a failed to land on a conflict; its conflict fix carries a's work on: b waits for it and
    starts once it lands (a is superseded); had the fix failed too, b would fail."""
    s, _ = scheduler(make("a"), make("b", depends_on=["a"]), make("c", depends_on=["a"]))
    a = s.tasks["a"]
    for step in (TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.FAILED):
        s.move(a, step, "merge conflict" if step == TaskStatus.FAILED else "")
    fix = Task(id="a-conflict-fix", description="resolve", branch="worker/a-fix", kind="conflict-fix",
               continue_from="a", priority=1)
    s.add(fix)
    assert ids(s.ready()) == ["a-conflict-fix"] and s.tasks["b"].status == TaskStatus.PENDING
    land(s, "a-conflict-fix")
    s.move(a, TaskStatus.SUPERSEDED, "carried on by a-conflict-fix")
    assert ids(s.ready()) == ["b", "c"]


def test_a_dependency_whose_carrier_failed_too_fails_the_dependent_when_given_up() -> None:
    s, _ = scheduler(make("a"), make("b", depends_on=["a"]))
    a = s.tasks["a"]
    for step in (TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.FAILED):
        s.move(a, step)
    s.add(Task(id="a-fix", description="resolve", branch="worker/a-fix", continue_from="a"))
    fix = s.tasks["a-fix"]
    s.move(fix, TaskStatus.RUNNING)
    assert s.ready() == [] and s.tasks["b"].status == TaskStatus.PENDING
    s.move(fix, TaskStatus.FAILED, "still conflicts")
    s.ready()
    assert s.tasks["b"].status == TaskStatus.PENDING and ids(s.waiting()) == ["b"]
    s.give_up()
    assert s.tasks["b"].status == TaskStatus.FAILED


def test_unknown_dependency_fails_the_task() -> None:
    s, _ = scheduler(make("a", depends_on=["ghost"]))
    assert s.ready() == []
    assert s.tasks["a"].status == TaskStatus.FAILED
    assert "ghost" in s.tasks["a"].reason
    assert not s.open_work()


def test_dependency_still_running_keeps_waiting() -> None:
    s, _ = scheduler(make("a"), make("b", depends_on=["a"]))
    a = s.tasks["a"]
    s.move(a, TaskStatus.RUNNING)
    assert ids(s.ready()) == [] and s.tasks["b"].status == TaskStatus.PENDING
    assert s.open_work()


def test_events() -> None:
    s, events = scheduler(make("a", priority=2, depends_on=[]), make("b", depends_on=["a"]))
    created = [e for e in events if isinstance(e, TaskCreated)]
    assert [(e.task_id, e.branch, e.priority, e.depends_on, e.scope, e.description) for e in created] == [
        ("a", "worker/a", 2, [], ["src/a.py"], "do a"), ("b", "worker/b", 5, ["a"], ["src/b.py"], "do b")]
    a = s.tasks["a"]
    s.move(a, TaskStatus.RUNNING)
    s.move(a, TaskStatus.BLOCKED, "needs input")
    changes = [e for e in events if isinstance(e, TaskStatusChanged)]
    assert [(e.task_id, e.before, e.after, e.reason) for e in changes] == [
        ("a", "pending", "running", ""), ("a", "running", "blocked", "needs input")]


def test_illegal_move_emits_nothing() -> None:
    s, events = scheduler(make("a"))
    before = len(events)
    with pytest.raises(IllegalTransition):
        s.move(s.tasks["a"], TaskStatus.LANDED)
    assert len(events) == before
    assert s.tasks["a"].status == TaskStatus.PENDING


def test_open_work_ends_when_everything_ended() -> None:
    s, _ = scheduler(make("a"), make("b"))
    land(s, "a")
    assert s.open_work()
    t = s.tasks["b"]
    s.move(t, TaskStatus.RUNNING)
    s.move(t, TaskStatus.UNCHANGED)
    assert not s.open_work()
    assert ids(s.with_status(TaskStatus.LANDED)) == ["a"]


def test_overlapping_scopes_run_at_once_by_default_and_wait_when_held() -> None:
    a, b, c = make("a"), make("b"), make("c")
    b.scope = ["src/a.py", "src/b.py"]
    s, _ = scheduler(a, b, c)
    s.move(s.tasks["a"], TaskStatus.RUNNING)
    assert ids(s.ready()) == ["b", "c"]  # b shares src/a.py with the running a: it runs anyway
    s.hold_overlaps = True  # SCOPE_OVERLAP=hold
    assert ids(s.ready()) == ["c"]


def test_conflict_fixes_of_one_file_wait_for_each_other() -> None:
    f1, f2, t = make("f1"), make("f2"), make("t")
    for f in (f1, f2):
        f.kind, f.scope = "conflict-fix", ["shared.txt"]
    t.scope = ["shared.txt"]
    s, _ = scheduler(f1, f2, t)
    s.move(s.tasks["f1"], TaskStatus.RUNNING)
    assert ids(s.ready()) == ["t"]  # a plain task is not held by a conflict fix


@pytest.mark.parametrize("marked", ["running", "pending"])
def test_a_task_marked_exclusive_holds_its_files_both_ways(marked: str) -> None:
    a, b, c = make("a"), make("b"), make("c")
    a.scope = b.scope = ["src/shared.py"]
    (a if marked == "running" else b).exclusive = True
    s, _ = scheduler(a, b, c)
    s.move(s.tasks["a"], TaskStatus.RUNNING)
    assert ids(s.ready()) == ["c"]
    land(s, "c")
    s.move(s.tasks["a"], TaskStatus.MERGING)
    assert ids(s.ready()) == []  # still held while a waits in the merge queue
    s.move(s.tasks["a"], TaskStatus.LANDED)
    assert ids(s.ready()) == ["b"]


def test_subtasks_of_one_parent_sharing_a_file_run_at_once_unless_marked() -> None:
    a, b = make("p-sub-1"), make("p-sub-2")
    a.parent = b.parent = "p"
    a.scope = b.scope = ["src/m.py"]
    s, _ = scheduler(a, b)
    s.move(s.tasks["p-sub-1"], TaskStatus.RUNNING)
    assert ids(s.ready()) == ["p-sub-2"]


def hot_scheduler(*tasks: Task, scopes: int = 3, union: list[str] | None = None) -> tuple[Scheduler, list[Event]]:
    events: list[Event] = []
    s = Scheduler(events.append, hot=HotFiles(events.append, UnionFiles(union or []), scopes=scopes, conflicts=2))
    for t in tasks:
        s.add(t)
    return s, events


def test_a_file_that_conflicts_again_and_again_becomes_hot_and_is_held() -> None:
    a, b = make("a"), make("b")
    a.scope = b.scope = ["src/registry.py"]
    s, events = hot_scheduler(a, b, scopes=0)
    s.move(s.tasks["a"], TaskStatus.RUNNING)
    assert ids(s.ready()) == ["b"]  # not hot yet: overlapping scopes run at once
    assert s.hot is not None
    s.hot.conflicted(["src/registry.py"])
    assert ids(s.ready()) == ["b"]
    s.hot.conflicted(["src/registry.py", "src/other.py"])
    assert ids(s.ready()) == []  # hot: held while a runs
    hot = [e for e in events if isinstance(e, FileHot)]
    assert [(e.path, e.conflicts) for e in hot] == [("src/registry.py", 2)]
    assert len(s.hot.notes) == 1 and "HOT FILE src/registry.py" in s.hot.notes[0] and "union_merge" in s.hot.notes[0]


def test_a_file_named_by_many_open_scopes_becomes_hot_unless_it_is_a_line_set() -> None:
    tasks = [make(f"t{i}") for i in range(4)]
    for t in tasks:
        t.scope = ["src/core.py", "CHANGELOG.md", "docs/index.txt"]
    tasks[0].union_merge = ["docs/index.txt"]  # the planner's mark
    s, events = hot_scheduler(*tasks, scopes=3, union=["CHANGELOG*"])
    assert [e.path for e in events if isinstance(e, FileHot)] == ["src/core.py"]
    s.move(s.tasks["t0"], TaskStatus.RUNNING)
    assert ids(s.ready()) == []


def _start_one_at_a_time(s: Scheduler, room: int) -> list[str]:
    """What the driver did before `start`: ask `ready` again after each task it started."""
    started: list[str] = []
    while len(started) < room and (ready := s.ready()):
        s.move(ready[0], TaskStatus.RUNNING)
        started.append(ready[0].id)
    return started


def _overlapping() -> list[Task]:
    """Tasks sharing files, some exclusive, some conflict fixes, with priorities and a dependency."""
    tasks = [make("a", 3), make("b", 1), make("c", 2), make("d", 1), make("e", 5), make("f", 4, depends_on=["a"]),
             make("g", 2), make("h", 2)]
    tasks[0].scope = tasks[1].scope = ["src/shared.py"]
    tasks[1].exclusive = True
    tasks[2].scope = tasks[3].scope = ["src/both.py", "src/other.py"]
    tasks[2].kind = tasks[3].kind = "conflict-fix"
    tasks[6].scope = tasks[7].scope = ["src/g.py"]  # plain overlap: both may run
    return tasks


@pytest.mark.parametrize("room", [0, 1, 2, 3, 5, 8, 20])
def test_start_picks_what_asking_ready_after_each_start_would(room: int) -> None:
    """`start` looks at the run once, yet a task it starts holds back the next ones exactly as
    if `ready` were asked again after each start (shared exclusive files, conflict fixes)."""
    one, _ = scheduler(*_overlapping())
    many, events = scheduler(*_overlapping())
    expected = _start_one_at_a_time(one, room)
    assert ids(many.start(room)) == expected
    assert ids(many.with_status(TaskStatus.RUNNING)) == sorted(expected)
    assert [e.task_id for e in events if isinstance(e, TaskStatusChanged)] == expected
    assert ids(many.ready()) == ids(one.ready())


def test_start_does_not_start_what_a_running_task_holds_back() -> None:
    s, _ = scheduler(*_overlapping())
    s.move(s.tasks["b"], TaskStatus.RUNNING)  # exclusive on src/shared.py
    s.move(s.tasks["c"], TaskStatus.RUNNING)  # a conflict fix on src/both.py
    assert ids(s.start(10)) == ["g", "h", "e"]
    assert ids(s.ready()) == []


def test_the_status_index_follows_every_move_and_a_restored_task() -> None:
    s, _ = scheduler(make("a"), make("b"), make("c"))
    s.move(s.tasks["b"], TaskStatus.RUNNING)
    s.move(s.tasks["b"], TaskStatus.MERGING)
    assert ids(s.with_status(TaskStatus.PENDING)) == ["a", "c"]
    assert ids(s.with_status(TaskStatus.MERGING, TaskStatus.PENDING)) == ["a", "b", "c"]  # planned order
    restored = make("c")
    restored.status = TaskStatus.LANDED  # a record read back: added again in the status it had
    s.add(restored)
    assert ids(s.with_status(TaskStatus.PENDING)) == ["a"]
    assert ids(s.with_status(TaskStatus.LANDED)) == ["c"]
    assert ids(s.snapshot()) == ["a", "b", "c"]
    assert all(t.status == status for status in TaskStatus for t in s.with_status(status))


def test_live_is_every_task_itself_in_plan_order() -> None:
    s, _ = scheduler(make("c"), make("a"), make("b"))
    live = s.live()
    assert ids(live) == ["c", "a", "b"] and all(t is s.tasks[t.id] for t in live)
