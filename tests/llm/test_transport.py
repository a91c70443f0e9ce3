"""The endpoint's two request paths honour the environment as httpx2 does: proxies and TLS.

Requests go straight to httpcore2's connection pool unless the environment names a proxy
for the endpoint (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, either case, ``NO_PROXY``
honoured), when they go through the httpx2 client and its proxy. Here a real forwarding
proxy on loopback shows which requests went through it, and a real HTTPS server with a
self-signed certificate shows that ``SSL_CERT_FILE`` decides what is trusted on both paths.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from longshot.errors import LLMConnectionError
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.llm.transport import HttpxSender, PoolSender
from longshot.testing.fake_script import Reply

WORKER = "fake-worker"
USER = [{"role": "user", "content": "Task ID: t1\nDo the thing."}]
ANSWER = json.dumps({"model": WORKER, "choices": [{"message": {"content": "over TLS"}, "finish_reason": "stop"}]}).encode()

PROXY_VARS = [f"{scheme}_{suffix}" for scheme in ("http", "https", "all", "no") for suffix in ("proxy", "PROXY")]
HOP_BY_HOP = {"connection", "proxy-connection", "keep-alive", "transfer-encoding", "host", "content-length"}


class ForwardingProxy:
    """A plain HTTP forward proxy: takes absolute-URI requests, forwards them, records each target."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.seen.append(self.path)
                target = urlsplit(self.path)
                conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request("POST", target.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardingProxy]:
    """A running proxy, and an environment with no proxy variable set (each test sets its own)."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    p = ForwardingProxy()
    yield p
    p.server.shutdown()
    p.server.server_close()


async def send_once(base_url: str, transport: Any = "auto") -> tuple[Any, type]:
    """(completion or error, the sender class used) of one request through a fresh endpoint."""
    ep = OpenAICompatEndpoint(name="ep", base_url=base_url, api_key="sk-test", timeout=5, transport=transport)
    try:
        try:
            outcome: Any = await ep.send(WORKER, USER)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - the outcome under test
            outcome = e
        return outcome, type(ep._clients[0])  # noqa: SLF001 - which path was taken is the point
    finally:
        await ep.aclose()


@pytest.mark.parametrize("var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
async def test_a_proxy_in_the_environment_carries_the_request(fake_llm, proxy, monkeypatch, var: str) -> None:
    fake = fake_llm(lambda turn: Reply(content="via proxy"))
    monkeypatch.setenv(var, proxy.url)
    answer, sender = await send_once(fake.base_url)
    assert answer.content == "via proxy"
    assert proxy.seen == [fake.base_url + "/chat/completions"] and fake.count() == 1
    assert sender is HttpxSender


@pytest.mark.parametrize("env", [
    {"HTTP_PROXY": "{proxy}", "NO_PROXY": "127.0.0.1"},
    {"http_proxy": "{proxy}", "no_proxy": "localhost,127.0.0.1"},
    {"ALL_PROXY": "{proxy}", "NO_PROXY": "*"},
    {"HTTPS_PROXY": "{proxy}"},  # a proxy for https only: this endpoint is http
], ids=["no-proxy-names-the-host", "lower-case-list", "no-proxy-star", "other-scheme"])
async def test_no_proxy_for_this_endpoint_means_the_direct_pool(fake_llm, proxy, monkeypatch,
                                                                  env: dict[str, str]) -> None:
    fake = fake_llm(lambda turn: Reply(content="direct"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(proxy=proxy.url))
    answer, sender = await send_once(fake.base_url)
    assert answer.content == "direct"
    assert proxy.seen == [] and fake.count() == 1
    assert sender is PoolSender


async def test_a_dead_proxy_is_a_connection_error(fake_llm, proxy, monkeypatch) -> None:
    fake = fake_llm(lambda turn: Reply(content="never"))
    proxy.server.shutdown()
    proxy.server.server_close()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    error, _ = await send_once(fake.base_url)
    assert isinstance(error, LLMConnectionError) and error.endpoint == "ep"
    assert fake.count() == 0


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, certificate file) of an HTTPS server on loopback with a self-signed certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/v1", cert
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("transport", ["auto", "httpx2"], ids=["pool", "httpx2"])
async def test_tls_trusts_what_ssl_cert_file_names(https_server, monkeypatch, transport: str) -> None:
    base_url, cert = https_server
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    answer, sender = await send_once(base_url, transport)
    assert answer.content == "over TLS"
    assert sender is (PoolSender if transport == "auto" else HttpxSender)
    monkeypatch.delenv("SSL_CERT_FILE")  # the system's store does not know this certificate
    error, _ = await send_once(base_url, transport)
    assert isinstance(error, LLMConnectionError) and "CERTIFICATE_VERIFY_FAILED" in str(error)


@pytest.fixture
def http11_server() -> Iterator[Any]:
    """Start an HTTP/1.1 server answering `ANSWER` that records each request's client port;
    ``close=True`` closes every connection after its answer without saying so (a server
    dropping idle keep-alive connections); ``then`` is sent unasked after the answer, and the
    connection is held open a while."""
    servers: list[ThreadingHTTPServer] = []

    def start(close: bool = False, then: bytes = b"") -> tuple[str, list[int]]:
        ports: list[int] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ports.append(self.client_address[1])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(ANSWER)))
                self.end_headers()
                self.wfile.write(ANSWER)
                self.close_connection = close
                if then:
                    time.sleep(0.05)
                    self.wfile.write(then)
                    self.wfile.flush()
                    time.sleep(2)
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        servers.append(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{servers[-1].server_address[1]}/v1", ports

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


async def requests_in_turn(base_url: str, transport: str, n: int, pause: float) -> None:
    """``n`` requests one after the other through one endpoint, ``pause`` seconds apart."""
    ep = OpenAICompatEndpoint(name="ep", base_url=base_url, api_key="sk-test", timeout=5, transport=transport)
    try:
        for _ in range(n):
            assert (await ep.send(WORKER, USER)).content == "over TLS"  # type: ignore[arg-type]
            await asyncio.sleep(pause)
    finally:
        await ep.aclose()


@pytest.mark.parametrize("transport", ["auto", "httpx2"], ids=["pool", "httpx2"])
async def test_one_connection_is_kept_alive_for_requests_in_turn(http11_server, transport: str) -> None:
    base_url, ports = http11_server()
    await requests_in_turn(base_url, transport, 4, 0)
    assert len(ports) == 4 and len(set(ports)) == 1


@pytest.mark.parametrize("transport", ["auto", "httpx2"], ids=["pool", "httpx2"])
@pytest.mark.parametrize("server", [
    {"close": True},  # the server drops each connection after its answer, unsaid
    {"then": b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"},  # an unasked 408 while idle
], ids=["dropped", "unasked-answer"])
async def test_an_idle_connection_the_server_gave_up_is_not_reused(http11_server, transport: str,
                                                                   server: dict[str, Any]) -> None:
    base_url, ports = http11_server(**server)
    await requests_in_turn(base_url, transport, 3, 0.3)  # the pause: what the server did reaches the client
    assert len(ports) == 3 and len(set(ports)) == 3  # each on a new connection, none failed on the old one
