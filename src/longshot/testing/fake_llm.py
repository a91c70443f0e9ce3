"""An OpenAI-compatible chat-completions server on loopback, driven by a script.

`FakeLLM` serves ``POST /v1/chat/completions`` (plain and streamed) and ``GET /v1/models``
from a background thread, so clients in the same process and in other processes can use it.
Each request is routed to a role by its ``model`` field, turned into a `Turn`, and answered
with whatever `Reply` the script returns, faults included. Every request is recorded for
assertions; an optional JSON-lines log holds request bodies, never headers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from longshot.llm.base import ROLES, Role
from longshot.testing.fake_script import (
    CONTEXT_OVERFLOW_MESSAGE,
    Reply,
    Script,
    ScriptExhausted,
    Turn,
    completion_body,
    error_body,
    stream_chunks,
    task_id_of,
)

log = logging.getLogger(__name__)

_ROLE_SEARCH_ORDER: tuple[Role, ...] = ("subplanner", "planner", "worker", "reconciler")


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
    ended: float | None = None


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class FakeLLM:
    """A scripted OpenAI-compatible server; use as a context manager or `start`/`stop` it.

    ``models`` maps model names to roles; an unmapped model name containing a role name is
    routed to that role. ``errors`` collects script failures (exhausted or raising scripts)
    and handler faults, so a test can assert that nothing went unscripted. The script is
    called under a lock, one request at a time, so a stateful script needs no locking.
    """

    def __init__(
        self,
        script: Script,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: dict[str, str] | None = None,
        request_log: Path | None = None,
    ) -> None:
        bad = {m: r for m, r in (models or {}).items() if r not in ROLES}
        if bad:
            raise ValueError(f"models map to unknown roles {bad}; roles are {list(ROLES)}")
        self._script = script
        self._address = (host, port)
        self._models = cast(dict[str, Role], dict(models or {}))
        self._request_log = request_log
        self._lock = threading.Lock()
        self._script_lock = threading.Lock()
        self._stopping = threading.Event()
        self._records: list[RequestRecord] = []
        self._errors: list[str] = []
        self._disconnects: list[str] = []
        self._in_flight: dict[str | None, int] = {}
        self._peaks: dict[str | None, int] = {}
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeLLM:
        """Bind the socket and serve from a daemon thread."""
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("FakeLLM is already started (or stopped: it cannot be restarted)")
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release hanging and delayed replies, close every connection."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                log.debug("fake_llm: connection already closed at stop: %s", exc)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("FakeLLM is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``, e.g. ``http://127.0.0.1:54321/v1``."""
        return f"http://{self._address[0]}:{self.port}/v1"

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every chat request so far, in arrival order."""
        with self._lock:
            return [dataclasses.replace(r) for r in self._records]

    @property
    def errors(self) -> list[str]:
        """Script failures and handler faults, in order."""
        with self._lock:
            return list(self._errors)

    @property
    def disconnects(self) -> list[str]:
        """Requests whose client went away before the answer was written."""
        with self._lock:
            return list(self._disconnects)

    def peak_in_flight(self, role: str | None = None) -> int:
        """Most requests (of ``role``, or of any role) handled at once, arrival to response end."""
        with self._lock:
            return self._peaks.get(role, 0)

    def count(self, role: str | None = None, task_id: str | None = None) -> int:
        """How many chat requests came for ``role`` and/or ``task_id`` (None matches any)."""
        with self._lock:
            return sum(
                1
                for r in self._records
                if (role is None or r.role == role) and (task_id is None or r.task_id == task_id)
            )

    def _models_payload(self) -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "longshot-fake"} for m in self._models]
        return {"object": "list", "data": data}

    def _route(self, model: str) -> Role:
        if model in self._models:
            return self._models[model]
        for role in _ROLE_SEARCH_ORDER:
            if role in model:
                return role
        raise _HTTPError(
            400,
            f"fake_llm: model {model!r} is not mapped to a role: known models {sorted(self._models)}, "
            f"or use a model name containing one of {list(ROLES)}",
            code="model_not_found",
        )

    def _play(self, turn: Turn) -> Reply:
        try:
            with self._script_lock:
                reply = self._script(turn)
            if not isinstance(reply, Reply):
                raise TypeError(f"script returned {type(reply).__name__}, not Reply")
            return reply
        except ScriptExhausted as exc:
            self._error(str(exc))
            raise _HTTPError(500, str(exc)) from exc
        except Exception as exc:
            message = f"fake_llm script error: role={turn.role} task={turn.task_id} turn={turn.turn}: {exc!r}"
            self._error(message)
            raise _HTTPError(500, message) from exc

    def _error(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self._errors.append(message)

    def _disconnected(self, record: RequestRecord, exc: BaseException) -> None:
        with self._lock:
            record.status = 499
            self._disconnects.append(f"request {record.index} (role={record.role}): {exc!r}")

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _enter(self, key: str | None) -> None:
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        self._peaks[key] = max(self._peaks.get(key, 0), self._in_flight[key])

    def _begin(self, has_auth: bool) -> RequestRecord:
        with self._lock:
            record = RequestRecord(index=len(self._records), has_auth=has_auth, started=time.monotonic())
            self._records.append(record)
            self._enter(None)
            return record

    def _routed(self, record: RequestRecord, turn: Turn) -> None:
        with self._lock:
            record.role, record.task_id, record.turn = turn.role, turn.task_id, turn.turn
            self._enter(turn.role)

    def _end(self, record: RequestRecord, status: int) -> None:
        with self._lock:
            record.ended = time.monotonic()
            if record.status != 499:
                record.status = status
            for key in {None, record.role}:
                self._in_flight[key] -= 1
            if self._request_log is not None:
                line = {
                    "index": record.index, "role": record.role, "model": record.model,
                    "task_id": record.task_id, "turn": record.turn, "status": record.status,
                    "has_auth": record.has_auth, "body": record.body,
                }  # fmt: skip
                with self._request_log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeLLM) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms between them
    server: _Server
    status = 0

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

    def do_GET(self) -> None:
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
        self.status = 0
        record = fake._begin(has_auth=self.headers.get("Authorization") is not None)
        try:
            try:
                self._chat(fake, record, raw)
            except _HTTPError as exc:
                self._send_error(exc)
        except ConnectionError as exc:
            fake._disconnected(record, exc)
            self.close_connection = True
        except Exception as exc:
            fake._error(f"fake_llm handler error: request {record.index}: {exc!r}")
            if self.status:
                self.close_connection = True
            else:
                self._send_error(_HTTPError(500, f"fake_llm handler error: {exc!r}"))
        finally:
            fake._end(record, self.status)

    def _not_found(self, *_: Any) -> None:
        self._send_error(_HTTPError(404, f"fake_llm: no route for {self.command} {self.path}"))

    do_PUT = do_DELETE = do_PATCH = _not_found

    def _chat(self, fake: FakeLLM, record: RequestRecord, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _HTTPError(400, f"fake_llm: request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _HTTPError(400, "fake_llm: request body must be a JSON object")
        record.body = body
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            raise _HTTPError(400, "fake_llm: you must provide a model parameter")
        record.model = model
        if not isinstance(messages, list):
            raise _HTTPError(400, "fake_llm: 'messages' must be a list")
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
            raise _HTTPError(400, CONTEXT_OVERFLOW_MESSAGE, "context_length_exceeded")
        if reply.status != 200:
            headers = {} if reply.retry_after is None else {"Retry-After": f"{reply.retry_after:g}"}
            message = reply.error_message or f"fake_llm: scripted HTTP {reply.status}"
            self._send_error(_HTTPError(reply.status, message), headers)
            return
        if turn.stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = stream_chunks(reply, model=model, index=turn.index, messages=messages, include_usage=include_usage)
            self._stream(chunks, reply.cut_after_bytes)
        else:
            payload = completion_body(reply, model=model, index=turn.index, messages=messages)
            self._send_json(200, payload, cut=reply.cut_after_bytes)

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.status = status

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

    def _send_error(self, exc: _HTTPError, headers: dict[str, str] | None = None) -> None:
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
