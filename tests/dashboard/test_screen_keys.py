"""The live dashboard's keys and drawing loop (dashboard/screen.py).

Keys are typed into a real pseudo-terminal (``os.openpty``) read by the real `KeyReader`;
the drawing loop draws into a rich console writing to a buffer, as a terminal of fixed size.
"""

from __future__ import annotations

import io
import os
import termios
import threading

import pytest
from rich.console import Console

from longshot.dashboard.keys import ViewState
from longshot.dashboard.screen import ESCAPES, Dashboard, KeyReader, decode_keys
from longshot.events import RunStarted, RunWarning


def dashboard(**kwargs: object) -> Dashboard:
    console = Console(file=io.StringIO(), force_terminal=True, width=100, height=24)
    return Dashboard(console, keys=False, screen=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("seq, name", sorted(ESCAPES.items()))
def test_every_escape_sequence_is_one_named_key(seq: str, name: str) -> None:
    assert decode_keys(f"a{seq}b") == ["a", name, "b"]


def test_keys_as_typed_are_kept_whole_including_other_alphabets_and_a_lone_escape() -> None:
    assert decode_keys("q\x1bé日\x1b[") == ["q", "\x1b", "é", "日", "\x1b", "["]
    assert decode_keys("") == []


class Pty:
    """A pseudo-terminal: what is written to ``leader`` is read from ``follower`` as typed keys."""

    def __enter__(self) -> Pty:
        self.leader, self.follower = os.openpty()
        return self

    def type(self, text: str) -> None:
        os.write(self.leader, text.encode())

    def __exit__(self, *exc: object) -> None:
        os.close(self.leader)
        os.close(self.follower)


def test_keys_typed_in_a_terminal_change_the_view_and_the_terminal_is_restored() -> None:
    dash = dashboard()
    got: list[str] = []
    seen = threading.Event()

    def on_key(key: str) -> None:
        dash.on_key(key)
        got.append(key)
        if key == "+":
            seen.set()

    with Pty() as pty:
        before = termios.tcgetattr(pty.follower)
        with KeyReader(on_key, fd=pty.follower) as reader:
            assert termios.tcgetattr(pty.follower)[3] & termios.ICANON == 0  # cbreak: keys come one by one
            pty.type("\t\x1b[6~d+")
            assert seen.wait(10), got
        assert termios.tcgetattr(pty.follower) == before and not reader._thread.is_alive()

    assert got == ["tab", "pgdn", "d", "+"]
    assert (dash.view.tab, dash.view.debug, dash.view.depth, dash.view.scroll["activity"]) == (1, True, 5, 10)


def test_a_key_reader_without_a_terminal_reads_nothing_and_changes_nothing() -> None:
    read, write = os.pipe()
    try:
        with KeyReader(lambda key: None, fd=read) as reader:
            os.write(write, b"q")
        assert reader._saved is None and not reader._thread.is_alive()
    finally:
        os.close(read)
        os.close(write)
    with KeyReader(lambda key: None, fd=-1) as reader:
        assert not reader._thread.is_alive()


@pytest.mark.parametrize("quittable", [True, False])
def test_q_quits_a_replay_but_not_a_live_run_and_other_keys_are_ignored(quittable: bool) -> None:
    dash = dashboard(quittable=quittable)

    for key in ("q", "Q", "x", "\x1b"):
        dash.on_key(key)

    assert dash.quit.is_set() is quittable and dash.view == ViewState()


def test_the_loop_folds_a_backlog_frame_by_frame_before_it_ends() -> None:
    dash = dashboard(max_per_frame=10, hz=1000.0, view=ViewState(tab=1))  # the activity feed
    dash(RunStarted(ts=0, request="the request", repo="x", target_branch="main", max_workers=2))
    for i in range(24):
        dash(RunWarning(ts=1 + i, message=f"warning {i}"))

    dash.run(until=lambda: True)  # done as soon as nothing is left: not before the backlog is drawn

    assert [taken for _, _, taken in dash.frames] == [10, 10, 5]
    assert dash.state.events == 25 and "warning 23" in dash.console.file.getvalue()  # type: ignore[attr-defined]


def test_a_quit_key_ends_the_loop_with_events_still_queued() -> None:
    dash = dashboard(max_per_frame=1, hz=1000.0)
    for i in range(50):
        dash(RunWarning(ts=i, message=f"warning {i}"))
    dash.on_key("q")

    dash.run(until=lambda: False)

    assert len(dash.frames) == 1 and dash.state.events == 1


def test_the_frame_is_as_big_as_the_console_and_uses_the_dashboards_clock() -> None:
    dash = dashboard(clock=lambda: 125.0)
    dash(RunStarted(ts=5, request="the request", repo="x", target_branch="main", max_workers=2))
    dash.drain()
    console = Console(file=io.StringIO(), width=100, height=24, record=True, color_system=None)

    console.print(dash.frame())  # type: ignore[arg-type]

    lines = console.export_text().splitlines()
    assert len(lines) == 24 and all(len(line) == 100 for line in lines)
    assert "⏱ 2:00" in lines[1]  # 125 - 5 seconds, by the clock given, not the wall clock


def test_stopping_a_dashboard_that_never_drew_is_harmless_and_a_stopped_one_draws_no_more() -> None:
    dashboard().stop()
    dash = dashboard(hz=1000.0)
    dash.start()
    dash(RunWarning(ts=1, message="last words"))
    dash.stop()
    drawn = len(dash.frames)

    dash(RunWarning(ts=2, message="too late"))

    assert dash.error is None and dash.state.warnings == 1 and len(dash.frames) == drawn
    assert dash._thread is not None and not dash._thread.is_alive()
