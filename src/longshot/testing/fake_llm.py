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
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from longshot.llm.base import ROLES, Role
from longshot.testing.fake_http import HTTPError, RequestRecord, Server
from longshot.testing.fake_script import Reply, Script, ScriptExhausted, Turn

log = logging.getLogger(__name__)

_ROLE_SEARCH_ORDER: tuple[Role, ...] = ("subplanner", "planner", "worker", "reconciler")


class FakeLLM:
    """A scripted OpenAI-compatible server; use as a context manager or `start`/`stop` it.

    Knobs a preflight (`longshot doctor`) is tested with: ``api_key`` (a wrong or missing key
    is answered 401), ``tool_calling=False`` (requests with tools are refused, 400) and, as
    before, a model name it cannot route (400 ``model_not_found``). A request that offers the
    preflight's probe tool is answered by the server itself with a call of that tool (what a
    real model does when told to), is never played from the script and is not counted in
    `requests`; `probes` lists them.

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
        api_key: str | None = None,
        tool_calling: bool = True,
        context_length: int | None = None,
    ) -> None:
        bad = {m: r for m, r in (models or {}).items() if r not in ROLES}
        if bad:
            raise ValueError(f"models map to unknown roles {bad}; roles are {list(ROLES)}")
        self._script = script
        self.api_key = api_key
        """When set, every request without ``Authorization: Bearer <api_key>`` is answered 401."""
        self.tool_calling = tool_calling
        """False: the server refuses requests that carry tools (400), as servers without tool support do."""
        self.context_length = context_length
        """Reported per model by ``GET /v1/models`` (as vLLM's ``max_model_len``), when set."""
        self.probes: list[str] = []
        """Models of the preflight probes answered (`longshot.preflight`): never given to the script."""
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
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeLLM:
        """Bind the socket and serve from a daemon thread."""
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("FakeLLM is already started (or stopped: it cannot be restarted)")
        self._server = Server(self._address, self)
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

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every request's handler has finished (a client may have its answer a
        moment before the request is recorded and logged); False if that took too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._in_flight.get(None):
                    return True
            time.sleep(0.005)
        return False

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

    def _probed(self, model: str) -> None:
        with self._lock:
            self.probes.append(model)

    def _models_payload(self) -> dict[str, Any]:
        extra = {} if self.context_length is None else {"max_model_len": self.context_length}
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "longshot-fake", **extra} for m in self._models]
        return {"object": "list", "data": data}

    def _route(self, model: str) -> Role:
        if model in self._models:
            return self._models[model]
        for role in _ROLE_SEARCH_ORDER:
            if role in model:
                return role
        raise HTTPError(
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
            raise HTTPError(500, str(exc)) from exc
        except Exception as exc:
            message = f"fake_llm script error: role={turn.role} task={turn.task_id} turn={turn.turn}: {exc!r}"
            self._error(message)
            raise HTTPError(500, message) from exc

    def _error(self, message: str) -> None:
        log.warning("%s", message)
        with self._lock:
            self._errors.append(message)

    def _sent(self, record: RequestRecord, status: int) -> None:
        with self._lock:
            record.status, record.answered = status, time.monotonic()

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
