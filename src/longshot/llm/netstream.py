"""httpcore2's network backend on asyncio's own streams, for the endpoint's connection pools.

httpcore2 reads and writes through anyio by default (`httpcore2.AnyIOBackend`): each socket
read and write opens an anyio cancel scope for its timeout, and looks up the running async
library. The orchestrator only runs on asyncio, so `AsyncioBackend` does the same with
asyncio's streams and ``asyncio.timeout``, and raises httpcore2's own errors as the anyio
backend does: ``ConnectTimeout`` / ``ConnectError`` while connecting or in the TLS
handshake, ``ReadTimeout`` / ``ReadError`` and ``WriteTimeout`` / ``WriteError`` after.
Nothing of HTTP is here: httpcore2 and h11 still frame every request and answer.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
from httpcore2._utils import is_socket_readable

HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before the next address of a host is tried alongside (anyio's delay, which httpcore2 used)."""


class AsyncioStream(httpcore2.AsyncNetworkStream):
    """One connection: a reader and a writer of asyncio, timeouts per operation."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as e:
            raise httpcore2.ReadTimeout(e) from e
        except OSError as e:
            raise httpcore2.ReadError(e) from e

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as e:
            raise httpcore2.WriteTimeout(e) from e
        except OSError as e:
            raise httpcore2.WriteError(e) from e

    async def aclose(self) -> None:
        # as anyio's streams do: drop the connection now, no TLS goodbye to wait on (a hung peer
        # cannot hold a close), then let the loop run once
        self._writer.transport.abort()
        await asyncio.sleep(0)

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore2.AsyncNetworkStream:
        try:
            await self._writer.start_tls(ssl_context, server_hostname=server_hostname, ssl_handshake_timeout=timeout)
        except TimeoutError as e:
            await self.aclose()
            raise httpcore2.ConnectTimeout(e) from e
        except OSError as e:  # ssl.SSLError is an OSError
            await self.aclose()
            raise httpcore2.ConnectError(e) from e
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # httpcore2 asks before reusing an idle connection: anything the peer sent meanwhile (an
            # unasked answer, its close) means the connection is not to be used. asyncio reads as data
            # comes, so that shows in the reader (its buffer, its EOF) more than on the socket.
            return (self._reader.at_eof() or bool(self._reader._buffer)  # type: ignore[attr-defined]  # noqa: SLF001
                    or self._writer.is_closing() or is_socket_readable(self._writer.get_extra_info("socket")))
        return None


class AsyncioBackend(httpcore2.AsyncNetworkBackend):
    """TCP connections through asyncio (TCP_NODELAY set, as asyncio does for every TCP socket)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)
        except TimeoutError as e:
            raise httpcore2.ConnectTimeout(e) from e
        except OSError as e:  # refused, unreachable, a name that does not resolve (socket.gaierror)
            raise httpcore2.ConnectError(e) from e
        sock: socket.socket | None = writer.get_extra_info("socket")
        for option in socket_options or ():
            if sock is not None:
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.UnsupportedProtocol("an endpoint is reached over TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
