"""The live dashboard: a rich Live screen redrawn at 4 Hz from a queue of events.

`Dashboard` is a sink: anything may hand it events from any thread. Its drawing loop
takes at most ``max_per_frame`` events from the queue per frame, folds them into the run
state, and draws one frame; keys (read from the terminal in cbreak mode, so Ctrl-C still
interrupts) change the view. A live run draws from a background thread (`start`/`stop`);
``replay`` and ``watch`` draw from the main thread (`run`).
"""

from __future__ import annotations

import os
import queue
import select
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live

from longshot.dashboard.board import Board
from longshot.dashboard.keys import ViewState
from longshot.dashboard.view import render
from longshot.events import Event

MAX_PER_FRAME = 200
ESCAPES = {"\x1b[A": "up", "\x1b[B": "down", "\x1b[C": "right", "\x1b[D": "left", "\x1b[5~": "pgup",
           "\x1b[6~": "pgdn", "\x1b[Z": "shift-tab", "\x1b[H": "home", "\x1bOA": "up", "\x1bOB": "down",
           "\x1bOC": "right", "\x1bOD": "left", "\t": "tab"}


@dataclass(frozen=True)
class Reset:
    """Queue marker: start over with an empty state (``watch`` switched to a newer log)."""

    source: str


def decode_keys(data: str) -> list[str]:
    """Key names in a chunk read from a terminal: escape sequences by name, other keys as typed."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        for seq, name in ESCAPES.items():
            if data.startswith(seq, i):
                keys.append(name)
                i += len(seq)
                break
        else:
            keys.append(data[i])
            i += 1
    return keys


def _stdin_fd() -> int:
    """The file descriptor of stdin, or -1 when there is none (closed, or replaced by a test runner)."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return -1


class KeyReader:
    """Reads keys from a terminal in a thread while the dashboard draws; restores the terminal."""

    def __init__(self, on_key: Callable[[str], None], fd: int | None = None) -> None:
        self.on_key = on_key
        self.fd = _stdin_fd() if fd is None else fd
        self._saved: list | None = None  # type: ignore[type-arg]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="longshot-keys", daemon=True)

    def __enter__(self) -> KeyReader:
        if self.fd >= 0 and os.isatty(self.fd):
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1)
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(self.fd, 64).decode("utf-8", "replace")
            if not data:
                return
            for key in decode_keys(data):
                self.on_key(key)


class Dashboard:
    """Folds queued events into a `Board` and draws it at ``hz`` frames per second."""

    def __init__(self, console: Console, *, view: ViewState | None = None, clock: Callable[[], float] = time.time,
                 hz: float = 4.0, max_per_frame: int = MAX_PER_FRAME, keys: bool = True, screen: bool = True,
                 quittable: bool = True) -> None:
        self.console = console
        self.state = Board()
        self.view = view or ViewState()
        self.clock = clock
        self.interval = 1.0 / hz
        self.max_per_frame = max_per_frame
        self.keys = keys
        self.screen = screen
        self.quittable = quittable
        """Whether ``q`` closes the dashboard (replay and watch); a live run is stopped with Ctrl-C."""
        self.quit = threading.Event()
        self.frames: list[tuple[float, float, int]] = []
        """(started, drawn, events folded in) of every frame, monotonic seconds: for the benchmark."""
        self.error: Exception | None = None
        self._queue: queue.SimpleQueue[Event | Reset] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def __call__(self, event: Event) -> None:
        self._queue.put(event)

    def reset(self, source: str) -> None:
        self._queue.put(Reset(source))

    def on_key(self, key: str) -> None:
        if key in ("q", "Q") and self.quittable:
            self.quit.set()
        elif self.view.key(key):
            self._wake.set()

    def drain(self) -> int:
        """Fold at most ``max_per_frame`` queued events into the state; how many were taken."""
        taken = 0
        while taken < self.max_per_frame:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            taken += 1
            if isinstance(item, Reset):
                self.state = Board()
                self.view.footer = f"following {item.source}"
            else:
                self.state.apply(item)
        return taken

    def frame(self) -> object:
        size = self.console.size
        return render(self.state, self.view, self.clock(), size.height, size.width)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Draw until ``q``, until ``until()`` is true with nothing left queued, or until `stop`."""
        with Live(console=self.console, screen=self.screen, auto_refresh=False, redirect_stdout=False,
                  redirect_stderr=False) as live, KeyReader(self.on_key) if self.keys else _Nothing():
            due = time.monotonic()
            while True:
                started = time.monotonic()
                taken = self.drain()
                live.update(self.frame(), refresh=True)  # type: ignore[arg-type]
                self.frames.append((started, time.monotonic(), taken))
                finished = self._queue.empty() and taken < self.max_per_frame
                if self.quit.is_set() or (finished and (self._done.is_set() or (until is not None and until()))):
                    return
                due = max(due + self.interval, time.monotonic())  # behind: draw at once, never in a burst
                self._wake.wait(max(0.0, due - time.monotonic()))
                self._wake.clear()

    def start(self) -> None:
        """Draw from a background thread (a live run: the orchestrator owns the main thread).

        A failure while drawing ends the dashboard, not the run: it is kept in ``error``.
        """
        def draw() -> None:
            try:
                self.run()
            except Exception as e:  # noqa: BLE001 - reported by the caller after the run (RunOutput)
                self.error = e

        self._thread = threading.Thread(target=draw, name="longshot-dashboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Draw what is still queued, then leave the screen."""
        self._done.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None
