"""Bounded output capture: `CappedReader` over a real StreamReader, and `cap_text`."""

from __future__ import annotations

import asyncio
import re

import pytest

from longshot.capture import CappedReader, cap_text

MARKER = re.compile(r"\n\[\.\.\. (\d+) bytes of output omitted \.\.\.\]\n")


async def drained(limit: int, *chunks: bytes) -> CappedReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    capped = CappedReader(limit)
    await capped.drain(reader)
    return capped


async def test_small_output_intact() -> None:
    capped = await drained(1000, b"hello\n", b"world\n")
    assert not capped.truncated
    assert capped.total == 12
    assert capped.text() == "hello\nworld\n"


async def test_output_exactly_at_the_limit_is_intact() -> None:
    data = bytes(range(65, 91)) * 4  # 104 bytes
    capped = await drained(len(data), data)
    assert not capped.truncated
    assert capped.text() == data.decode()


async def test_empty_and_none_stream() -> None:
    capped = await drained(100)
    assert capped.text() == "" and not capped.truncated
    none = CappedReader(100)
    await none.drain(None)
    assert none.text() == "" and none.total == 0


async def test_large_output_keeps_head_and_tail() -> None:
    limit = 1000
    head = b"HEAD-START " + b"h" * 100
    tail = b"t" * 100 + b" TAIL-END"
    body = b"m" * 300_000
    data = head + body + tail
    # fed in uneven chunks, as a pipe would deliver them
    chunks = [data[i : i + 7777] for i in range(0, len(data), 7777)]
    capped = await drained(limit, *chunks)
    assert capped.truncated
    assert capped.total == len(data)
    text = capped.text()
    assert text.startswith("HEAD-START ")
    assert text.endswith(" TAIL-END")
    m = MARKER.search(text)
    assert m, text[:200]
    kept = len(text) - len(m.group(0))
    assert kept <= limit
    assert int(m.group(1)) == len(data) - kept
    assert text[: m.start()] == data[: limit // 2].decode()
    assert text[m.end() :] == data[-(limit // 2) :].decode()


async def test_memory_is_bounded_while_draining() -> None:
    limit = 4096
    reader = asyncio.StreamReader()
    capped = CappedReader(limit)
    task = asyncio.create_task(capped.drain(reader))
    for i in range(200):
        reader.feed_data(bytes([48 + i % 10]) * 10_000)
        await asyncio.sleep(0)
        assert len(capped._head) + len(capped._tail) <= limit
    reader.feed_eof()
    await task
    assert capped.total == 2_000_000
    assert len(capped.text()) < limit + 100


async def test_multibyte_characters_cut_at_the_edges_do_not_raise() -> None:
    data = "é".encode() * 10_000
    capped = await drained(101, data)
    text = capped.text()
    assert capped.truncated and MARKER.search(text)
    assert len(text) < 200


@pytest.mark.parametrize("limit", [0, 1, 2, 3])
async def test_tiny_limits(limit: int) -> None:
    capped = await drained(limit, b"abcdefghij")
    assert capped.truncated
    assert MARKER.search(capped.text())


def test_cap_text_short_unchanged() -> None:
    assert cap_text("abc", 3) == "abc"
    assert cap_text("", 0) == ""


def test_cap_text_long() -> None:
    text = "A" * 50 + "-" * 1000 + "Z" * 50
    capped = cap_text(text, 100)
    assert capped.startswith("A" * 50) and capped.endswith("Z" * 50)
    m = re.search(r"\[\.\.\. (\d+) characters omitted \.\.\.\]", capped)
    assert m and int(m.group(1)) == 1000
    assert "-" not in capped.replace(m.group(0), "")
    assert len(capped) <= 100 + len(m.group(0)) + 2
