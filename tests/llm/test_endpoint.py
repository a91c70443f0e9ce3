"""One endpoint over real HTTP: the same answers and errors as the openai SDK gives.

The endpoint calls the HTTP stack directly (issue 21): httpcore2's connection pool with the
request built once, or the plain httpx2 client where a proxy applies. Each case here runs
once for each of those two paths (the ``transport`` fixture) and sends one request to a real
server on loopback twice, once through the openai SDK and once through
`OpenAICompatEndpoint`, and checks that our typed error is the one the SDK's exception maps
to, with the same status, message and ``Retry-After``. Answers the fake model cannot give
(``retry-after-ms``, an HTTP date, a non-JSON error page, a 200 that is not a completion)
come from a small raw server in this file.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from longshot.errors import (
    LLMBadRequest, LLMConnectionError, LLMContextOverflow, LLMError, LLMRateLimited, LLMServerError, LLMTimeout,
)
from longshot.llm.openai_compat import OpenAICompatEndpoint
from longshot.testing.fake_script import Reply, ToolCallSpec

WORKER = "fake-worker"  # the fake plays the worker for this model name (tests/helpers.py)

USER = [{"role": "user", "content": "Task ID: t1\nDo the thing."}]
KEY = "sk-canary-endpoint-7d1f"
SDK_TO_OURS: list[tuple[type[Exception], type[LLMError]]] = [
    (openai.RateLimitError, LLMRateLimited),
    (openai.APITimeoutError, LLMTimeout),
    (openai.APIConnectionError, LLMConnectionError),
    (openai.InternalServerError, LLMServerError),
    (openai.APIStatusError, LLMBadRequest),  # any other 4xx; context overflow is told apart by its text
    (ValueError, LLMServerError),
]


def ours_for(sdk_error: Exception) -> type[LLMError]:
    for sdk_cls, ours in SDK_TO_OURS:
        if isinstance(sdk_error, sdk_cls):
            return ours
    raise AssertionError(f"unexpected SDK error {sdk_error!r}")


@pytest.fixture(params=["auto", "httpx2"], ids=["pool", "httpx2"])
def transport(request: pytest.FixtureRequest) -> str:
    """The endpoint's request path: httpcore2's pool (no proxy set) or the httpx2 client."""
    return str(request.param)


async def both(base_url: str, transport: Any, timeout: float = 5.0) -> tuple[Any, Any]:
    """(SDK outcome, our outcome) of one worker request: a completion or the exception raised."""
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=KEY, timeout=timeout, max_retries=0)
    ours = OpenAICompatEndpoint(name="ep", base_url=base_url, api_key=KEY, timeout=timeout, transport=transport)
    outcomes: list[Any] = []
    try:
        for call in (lambda: sdk.chat.completions.create(model=WORKER, messages=USER),  # type: ignore[arg-type]
                     lambda: ours.send(WORKER, USER)):  # type: ignore[arg-type]
            try:
                outcomes.append(await call())
            except Exception as e:  # noqa: BLE001 - the outcome under test
                outcomes.append(e)
    finally:
        await sdk.close()
        await ours.aclose()
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("reply, ours_cls, status", [
    (Reply.error(429, "slow down", retry_after=2.5), LLMRateLimited, 429),
    (Reply.error(500, "boom"), LLMServerError, 500),
    (Reply.error(503, "overloaded"), LLMServerError, 503),
    (Reply.error(401, "Incorrect API key provided"), LLMBadRequest, 401),
    (Reply.error(404, "The model `x` does not exist"), LLMBadRequest, 404),
    (Reply(context_overflow=True), LLMContextOverflow, 400),
    (Reply(status=400, error_message="Please reduce the length of the messages."), LLMContextOverflow, 400),
], ids=["429", "500", "503", "401", "404", "overflow-code", "overflow-text"])
async def test_status_errors_map_as_the_sdks_do(fake_llm, reply: Reply, ours_cls: type[LLMError], status: int,
                                               transport: str) -> None:
    fake = fake_llm(lambda turn: reply)
    sdk_error, our_error = await both(fake.base_url, transport)
    assert isinstance(sdk_error, openai.APIStatusError) and sdk_error.status_code == status
    assert type(our_error) is ours_cls
    if ours_cls is not LLMContextOverflow:
        assert ours_for(sdk_error) is ours_cls
    assert our_error.endpoint == "ep"
    assert (reply.error_message or "") in str(our_error)
    if status == 429:
        assert our_error.retry_after == 2.5
    assert KEY not in str(our_error) and KEY not in repr(our_error.__cause__)


async def test_answers_read_as_the_sdk_reads_them(fake_llm, transport: str) -> None:
    calls = [ToolCallSpec("write", {"path": "a.py", "content": "é ✓\n"}), ToolCallSpec("bash", {"command": "ls"})]
    fake = fake_llm(lambda turn: Reply(content="thinking", tool_calls=calls))
    sdk_answer, ours = await both(fake.base_url, transport)
    choice = sdk_answer.choices[0]
    assert ours.content == choice.message.content
    # ids differ only by the fake's answer counter (each of the two requests is its own answer)
    assert [(c.id.rsplit("_", 1)[1], c.name, c.arguments) for c in ours.tool_calls] == [
        (c.id.rsplit("_", 1)[1], c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert ours.finish_reason == choice.finish_reason
    assert (ours.usage.prompt_tokens, ours.usage.completion_tokens) == (
        sdk_answer.usage.prompt_tokens, sdk_answer.usage.completion_tokens)
    assert ours.model == sdk_answer.model


async def test_the_request_carries_the_key_only_in_its_header(fake_llm, transport: str) -> None:
    fake = fake_llm(lambda turn: Reply(content="ok"))
    _, ours = await both(fake.base_url, transport)
    assert ours.content == "ok"
    ours_record = fake.requests[-1]
    assert KEY not in json.dumps(ours_record.body)
    assert ours_record.body["messages"] == USER and ours_record.body["model"] == WORKER


async def test_a_hang_is_a_timeout_and_a_cut_body_a_server_error(fake_llm, transport: str) -> None:
    hang = fake_llm(lambda turn: Reply(hang=True))
    sdk_error, our_error = await both(hang.base_url, transport, timeout=0.3)
    assert isinstance(sdk_error, openai.APITimeoutError) and isinstance(our_error, LLMTimeout)
    cut = fake_llm(lambda turn: Reply(content="x" * 2000, cut_after_bytes=300))
    sdk_error, our_error = await both(cut.base_url, transport)
    assert isinstance(our_error, ours_for(sdk_error))
    assert isinstance(our_error, (LLMConnectionError, LLMServerError))


async def test_a_refused_connection_names_the_endpoint(transport: str) -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    sdk_error, our_error = await both(f"http://127.0.0.1:{port}/v1", transport)
    assert isinstance(sdk_error, openai.APIConnectionError)
    assert isinstance(our_error, LLMConnectionError) and our_error.endpoint == "ep"


class RawServer:
    """Answers every POST with the next (status, headers, body) of its list."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, list[tuple[str, str]], bytes]] = []  # (request line, headers, body)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.seen.append((self.requestline, list(self.headers.items()), body))
                status, headers, body = outer.answers.pop(0)
                self.send_response(status)
                for k, v in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(answers: list[tuple[int, dict[str, str], bytes]]) -> RawServer:
        servers.append(RawServer(answers))
        return servers[-1]

    yield start
    for s in servers:
        s.server.shutdown()
        s.server.server_close()


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
], ids=["ms", "seconds", "junk", "none"])
async def test_retry_after_in_every_form(raw_server, headers: dict[str, str], expected: float | None,
                                         transport: str) -> None:
    err = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
    server = raw_server([(429, {"Content-Type": "application/json", **headers}, err)] * 2)
    sdk_error, our_error = await both(server.base_url, transport)
    assert isinstance(sdk_error, openai.RateLimitError)
    assert isinstance(our_error, LLMRateLimited) and our_error.retry_after == expected


async def test_retry_after_as_an_http_date(raw_server, transport: str) -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    err = json.dumps({"error": {"message": "later"}}).encode()
    server = raw_server([(429, {"Retry-After": when}, err)] * 2)
    _, our_error = await both(server.base_url, transport)
    assert isinstance(our_error, LLMRateLimited)
    assert our_error.retry_after is not None and 25 <= our_error.retry_after <= 31


@pytest.mark.parametrize("status, body, ours_cls", [
    (502, b"<html>Bad Gateway</html>", LLMServerError),
    (200, b"<html>a login page</html>", LLMServerError),
    (200, b'{"object": "list", "data": []}', LLMServerError),
    (200, b'{"choices": []}', LLMServerError),
    (403, b"forbidden", LLMBadRequest),
], ids=["502-html", "200-html", "200-not-a-completion", "200-no-choices", "403-text"])
async def test_unreadable_and_foreign_answers(raw_server, status: int, body: bytes, ours_cls: type[LLMError],
                                              transport: str) -> None:
    server = raw_server([(status, {"Content-Type": "text/html"}, body)] * 2)
    sdk_outcome, our_error = await both(server.base_url, transport)
    assert type(our_error) is ours_cls, our_error
    if isinstance(sdk_outcome, Exception):
        assert ours_for(sdk_outcome) is ours_cls
    if status != 200:
        assert str(status) in str(our_error)


COMPLETION = json.dumps({"id": "c1", "object": "chat.completion", "model": WORKER, "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "packed ✓"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode()


@pytest.mark.parametrize("credentials", ["", "user:pw@"], ids=["plain", "credentials-in-url"])
async def test_both_paths_send_the_same_request(raw_server, credentials: str) -> None:
    """Request line, headers (names, values, order) and body: what httpx2 sends is what the pool sends."""
    server = raw_server([(200, {"Content-Type": "application/json"}, COMPLETION)] * 2)
    base_url = server.base_url.replace("http://", "http://" + credentials)
    for transport in ("httpx2", "auto"):
        ep = OpenAICompatEndpoint(name="ep", base_url=base_url, api_key=KEY, timeout=5, transport=transport)
        try:
            assert (await ep.send(WORKER, USER)).content == "packed ✓"  # type: ignore[arg-type]
        finally:
            await ep.aclose()
    (line_httpx, headers_httpx, body_httpx), (line_pool, headers_pool, body_pool) = server.seen
    assert line_pool == line_httpx == "POST /v1/chat/completions HTTP/1.1"
    assert headers_pool == headers_httpx
    assert ("Authorization", "Basic dXNlcjpwdw==" if credentials else f"Bearer {KEY}") in headers_pool
    assert ("Connection", "keep-alive") in headers_pool
    assert body_pool == body_httpx


async def test_a_cookie_the_endpoint_sets_is_sent_back(raw_server, transport: str) -> None:
    """As the httpx2 client does (a load balancer's affinity cookie, say); one for another path is not."""
    sets = {"Set-Cookie": "lb=node-7; Path=/"}
    other = {"Set-Cookie": "admin=1; Path=/admin"}
    server = raw_server([(200, sets, COMPLETION), (200, other, COMPLETION), (200, {}, COMPLETION)])
    ep = OpenAICompatEndpoint(name="ep", base_url=server.base_url, api_key=KEY, timeout=5, transport=transport)
    try:
        for _ in range(3):
            await ep.send(WORKER, USER)  # type: ignore[arg-type]
    finally:
        await ep.aclose()
    assert [dict((k.lower(), v) for k, v in headers).get("cookie") for _, headers, _ in server.seen] == [
        None, "lb=node-7", "lb=node-7"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_answer_is_decoded(raw_server, encoding: str, transport: str) -> None:
    packed = gzip.compress(COMPLETION) if encoding == "gzip" else zlib.compress(COMPLETION)
    server = raw_server([(200, {"Content-Type": "application/json", "Content-Encoding": encoding}, packed)] * 2)
    sdk_answer, ours = await both(server.base_url, transport)
    assert ours.content == sdk_answer.choices[0].message.content == "packed ✓"
    assert ours.usage.completion_tokens == 2


@pytest.mark.parametrize("status", [200, 503])
async def test_a_body_its_encoding_does_not_decode_is_a_server_error(raw_server, status: int, transport: str) -> None:
    server = raw_server([(status, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"not gzip")] * 2)
    _, our_error = await both(server.base_url, transport)
    assert isinstance(our_error, LLMServerError) and our_error.endpoint == "ep"
