"""Bounded capture of a command's output: the head and the tail, with a marker between.

A command may print gigabytes (``yes``, a runaway test); memory must stay bounded and
what the model sees must show both how the output started and how it ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class CappedReader:
    """Reads a stream to its end, keeping at most ``limit`` bytes (half head, half tail)."""

    def __init__(self, limit: int, on_output: Callable[[int], None] | None = None) -> None:
        self.limit = max(2, limit)
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0
        self.on_output = on_output

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the stream (for sources that are not an asyncio stream)."""
        half = self.limit // 2
        self.total += len(chunk)
        if self.on_output is not None:
            self.on_output(self.total)
        room = half - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > half:
                del self._tail[: len(self._tail) - half]

    def data(self) -> bytes:
        """Every byte read; only meaningful when nothing was cut (`truncated` is False)."""
        return bytes(self._head + self._tail)

    def text(self) -> str:
        head = self._head.decode("utf-8", "replace")
        if not self.truncated:
            return head + self._tail.decode("utf-8", "replace")
        cut = self.total - len(self._head) - len(self._tail)
        tail = self._tail.decode("utf-8", "replace")
        return f"{head}\n[... {cut} bytes of output omitted ...]\n{tail}"


def cap_text(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, head and tail kept with a marker."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters omitted ...]\n{text[-half:]}"
