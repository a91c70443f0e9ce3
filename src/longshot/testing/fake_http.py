"""The HTTP side of `longshot.testing.fake_llm.FakeLLM`: a threading server and its handler.

The handler turns each chat-completions request into a `Turn`, asks the fake for the
scripted `Reply`, and sends it plainly or streamed, with the reply's faults (delays, hangs,
cut streams, error statuses). It records every request on the fake.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from longshot.llm.base import PROBE_TOOL, Role
from longshot.testing.fake_script import (
    CONTEXT_OVERFLOW_MESSAGE,
    Reply,
    ToolCallSpec,
    Turn,
    completion_body,
    error_body,
    stream_chunks,
    task_id_of,
)

log = logging.getLogger("longshot.testing.fake_llm")
TOOLS_REFUSED = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set (fake_llm)'
"""What vLLM answers when tools are sent to a server started without tool calling."""


class HTTPError(Exception):
    """A status and message to answer with."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class RequestRecord:
    """One chat-completions request: what came in, how it was routed, what status went out.

    ``status`` is 0 when no response was sent (a hang or delay ended by `FakeLLM.stop`) and
    499 when the client went away mid-answer. ``started``/``ended`` are `time.monotonic` values.
    """

    index: int
    has_auth: bool
    started: float
    role: Role | None = None
    model: str = ""
    task_id: str | None = None
    turn: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    answered: float | None = None
    """When the status line went out (a client may act on the answer before ``ended``)."""
    ended: float | None = None


class Backend(Protocol):
    """What the handler needs from the fake (`FakeLLM`): routing, the script, the records."""

    _stopping: threading.Event
    api_key: str | None
    tool_calling: bool

    def _probed(self, model: str) -> None: ...
    def _models_payload(self) -> dict[str, Any]: ...
    def _route(self, model: str) -> Role: ...
    def _play(self, turn: Turn) -> Reply: ...
    def _error(self, message: str) -> None: ...
    def _sent(self, record: RequestRecord, status: int) -> None: ...
    def _disconnected(self, record: RequestRecord, exc: BaseException) -> None: ...
    def _track(self, conn: socket.socket, add: bool) -> None: ...
    def _begin(self, has_auth: bool) -> RequestRecord: ...
    def _routed(self, record: RequestRecord, turn: Turn) -> None: ...
    def _end(self, record: RequestRecord, status: int) -> None: ...


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: Backend) -> None:
        self.fake = fake
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms between them
    server: Server
    status = 0
    record: RequestRecord | None = None

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake_llm: " + format, *args)

    def _refused(self) -> bool:
        """Answer 401 when the fake wants a key and the request does not carry it."""
        key = self.server.fake.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return False
        self._send_error(HTTPError(401, "Incorrect API key provided (fake_llm)", code="invalid_api_key"))
        return True

    def do_GET(self) -> None:
        if self._refused():
            return
        if self.path.split("?")[0].rstrip("/") == "/v1/models":
            self._send_json(200, self.server.fake._models_payload())
        else:
            self._not_found()

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._not_found()
            return
        fake = self.server.fake
        if self._refused() or self._probe(fake, raw):
            return
        self.status = 0
        record = self.record = fake._begin(has_auth=self.headers.get("Authorization") is not None)
        try:
            try:
                self._chat(fake, record, raw)
            except HTTPError as exc:
                self._send_error(exc)
        except ConnectionError as exc:
            fake._disconnected(record, exc)
            self.close_connection = True
        except Exception as exc:
            fake._error(f"fake_llm handler error: request {record.index}: {exc!r}")
            if self.status:
                self.close_connection = True
            else:
                self._send_error(HTTPError(500, f"fake_llm handler error: {exc!r}"))
        finally:
            fake._end(record, self.status)

    def _probe(self, fake: Backend, raw: bytes) -> bool:
        """Answer the preflight's probe (a request offering `PROBE_TOOL`) without the script."""
        try:
            body = json.loads(raw)
        except ValueError:
            return False
        tools = body.get("tools") if isinstance(body, dict) else None
        names = [t.get("function", {}).get("name") for t in tools or [] if isinstance(t, dict)]
        if PROBE_TOOL not in names:
            return False
        model = str(body.get("model") or "")
        try:
            fake._route(model)
            if not fake.tool_calling:
                raise HTTPError(400, TOOLS_REFUSED)
        except HTTPError as exc:
            self._send_error(exc)
            return True
        fake._probed(model)
        reply = Reply(tool_calls=[ToolCallSpec(PROBE_TOOL, {"ok": True})])
        self._send_json(200, completion_body(reply, model=model, index=0, messages=body.get("messages") or []))
        return True

    def _not_found(self, *_: Any) -> None:
        self._send_error(HTTPError(404, f"fake_llm: no route for {self.command} {self.path}"))

    do_PUT = do_DELETE = do_PATCH = _not_found

    def _chat(self, fake: Backend, record: RequestRecord, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise HTTPError(400, f"fake_llm: request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise HTTPError(400, "fake_llm: request body must be a JSON object")
        record.body = body
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise HTTPError(400, "fake_llm: you must provide a model parameter")
        record.model = model
        if body.get("tools") and not fake.tool_calling:
            raise HTTPError(400, TOOLS_REFUSED)
        if not isinstance(messages, list):
            raise HTTPError(400, "fake_llm: 'messages' must be a list")
        turn = Turn(
            role=fake._route(model), model=model, messages=messages, tools=body.get("tools"),
            task_id=task_id_of(messages), index=record.index, stream=bool(body.get("stream")),
            turn=sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant"),
        )  # fmt: skip
        fake._routed(record, turn)
        reply = fake._play(turn)
        stopped = fake._stopping.wait(reply.delay) if reply.delay else False
        if stopped or reply.hang and fake._stopping.wait():
            self.close_connection = True
            return
        if reply.context_overflow:
            raise HTTPError(400, CONTEXT_OVERFLOW_MESSAGE, "context_length_exceeded")
        if reply.status != 200:
            headers = {} if reply.retry_after is None else {"Retry-After": f"{reply.retry_after:g}"}
            message = reply.error_message or f"fake_llm: scripted HTTP {reply.status}"
            self._send_error(HTTPError(reply.status, message), headers)
            return
        if turn.stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = stream_chunks(reply, model=model, index=turn.index, messages=messages, include_usage=include_usage)
            self._stream(chunks, reply.cut_after_bytes)
        else:
            payload = completion_body(reply, model=model, index=turn.index, messages=messages)
            self._send_json(200, payload, cut=reply.cut_after_bytes)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        if self.record is not None:  # before the answer goes out: a client may act on it at once
            self.server.fake._sent(self.record, status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None, cut: int | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self._start(status, {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})})
        if cut is not None and cut < len(data):
            self.wfile.write(data[:cut])
            self.close_connection = True
        else:
            self.wfile.write(data)

    def _send_error(self, exc: HTTPError, headers: dict[str, str] | None = None) -> None:
        self._send_json(exc.status, error_body(exc.status, exc.message, exc.code), headers)

    def _stream(self, chunks: list[dict[str, Any]], budget: int | None) -> None:
        self._start(200, {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                          "Transfer-Encoding": "chunked"})  # fmt: skip
        events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks]
        if budget is None:
            events.append(b"data: [DONE]\n\n")
        sent = 0
        for event in events:
            event = event if budget is None else event[: max(0, budget - sent)]
            self._write_chunk(event)
            sent += len(event)
        if budget is None:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
