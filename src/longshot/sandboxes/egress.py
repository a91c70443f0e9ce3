"""The set-up's only way out: an HTTP proxy to the package indexes and nowhere else.

A set-up (``SANDBOX_SETUP_COMMAND``, a check's dependency set-up) installs dependencies, and
installing runs code: a project's ``setup.py`` or build backend, a module that shadows
``pip``, an sdist's build. In a checkout that code may have been written by a worker. So a
set-up never gets the network: it runs under the same bubblewrap profile as every command
(its own network namespace: no host loopback, no DNS, no abstract sockets), and its only
connection out is this proxy, served by the orchestrator on a Unix socket mounted read-only
at ``/run/longshot``. `LAUNCH`, run inside with the orchestrator's own interpreter in
isolated mode (``-I -S``: nothing from the checkout is imported), listens on loopback,
exports ``HTTP(S)_PROXY`` for pip, npm, cargo and go, and runs the set-up. The proxy opens
a connection only to a host (and port) named in ``SANDBOX_SETUP_HOSTS``; anything else is
answered ``403`` and named in the set-up's output.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from longshot.forwarder import FORWARDER

DEFAULT_HOSTS = ("pypi.org", "files.pythonhosted.org", "registry.npmjs.org", "registry.yarnpkg.com", "crates.io",
                 "index.crates.io", "static.crates.io", "proxy.golang.org", "sum.golang.org")
"""The public package indexes of the ecosystems `longshot.pipeline.checks` detects."""
PORT = 3128
"""Where the set-up finds the proxy inside (loopback of its own network namespace)."""
HEAD_LIMIT = 16 * 1024

LAUNCH = FORWARDER.split("if __name__")[0] + r"""
import os, signal, subprocess
path, port, command = sys.argv[1], int(sys.argv[2]), sys.argv[3]
srv = listen(port)
threading.Thread(target=forward, args=(srv, path), daemon=True).start()
proxy = f"http://127.0.0.1:{port}"
names = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "npm_config_proxy", "npm_config_https_proxy")
env = dict(os.environ, **dict.fromkeys(names, proxy), no_proxy="", NO_PROXY="")
code = subprocess.call(["bash", "-c", command], env=env)
sys.exit(128 - code if code < 0 else code)
"""
"""Runs inside: the forwarder in a thread, then the set-up command with the proxy exported."""


class EgressProxy:
    """Serves the allow-listed HTTP proxy on ``socket_path`` while in ``async with``."""

    def __init__(self, socket_path: Path, hosts: Sequence[str]) -> None:
        self.socket_path = socket_path
        self.hosts = [h.strip().lower() for h in hosts if h.strip()]
        self.refused: list[str] = []
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> EgressProxy:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path), limit=HEAD_LIMIT)
        self.socket_path.chmod(0o666)  # the sandbox's user is not ours
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self.socket_path.unlink(missing_ok=True)

    def allowed(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is an index the set-up may reach: a name (or address) listed, on
        the port listed with it, or on 80 and 443 when none is."""
        host = host.strip("[]").lower().rstrip(".")
        for entry in self.hosts:
            name, _, want = entry.partition(":") if not entry.startswith("[") else entry.partition("]:")
            name = name.strip("[]")
            if name == host and (str(port) == want if want else port in (80, 443)):
                return True
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            method, target, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            host, port, first = _destination(method, target, version)
            if not self.allowed(host, port):
                self.refused.append(f"{host}:{port}")
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                             + f"longshot: {host}:{port} is not in SANDBOX_SETUP_HOSTS\n".encode())
                return
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(first + _without_proxy_headers(head))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()


def _destination(method: str, target: str, version: str) -> tuple[str, int, bytes]:
    """(host, port, the request line to send upstream) of a proxy request."""
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        return host, int(port), b""
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"not a proxy request: {target}")
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return url.hostname, url.port or 80, f"{method} {path} {version}\r\n".encode("latin-1")


def _without_proxy_headers(head: bytes) -> bytes:
    lines = head.split(b"\r\n")[1:]
    kept = [ln for ln in lines if ln and not ln.lower().startswith((b"proxy-", b"connection:"))]
    return b"\r\n".join([*kept, b"Connection: close", b"", b""])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.write_eof()
