"""The model proxy for agent CLIs: an OpenAI-compatible server on a Unix socket.

An external agent (mini-swe-agent, ...) runs inside the sandbox and must reach a model,
but the sandbox has no network and must never hold an API key. The orchestrator serves
this proxy on a Unix socket that is bind-mounted into the sandbox; a tiny forwarder inside
turns it into ``http://127.0.0.1:<port>/v1`` for the agent. Each request is answered by
the run's `ChatModel` (the router) for the worker role, so routing, retries, accounting
and budgets apply, and the only place requests can go is the configured endpoints.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from longshot.errors import BudgetExceeded, LLMError
from longshot.llm.base import ChatModel, Completion
from longshot.forwarder import FORWARDER

__all__ = ["FORWARDER", "ModelProxy"]

MAX_BODY = 64 * 1024 * 1024


class ModelProxy:
    """Serves chat completions for one task on ``socket_path`` while in ``async with``."""

    def __init__(self, model: ChatModel, socket_path: Path, task_id: str, model_name: str) -> None:
        self.model = model
        self.socket_path = socket_path
        self.task_id = task_id
        self.model_name = model_name
        self.requests = 0
        self.errors: list[str] = []
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> ModelProxy:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket_path))
        self.socket_path.chmod(0o666)  # the sandbox's user is not ours
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.socket_path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, body = request
                status, payload, stream = await self._handle(method, path, body)
                writer.write(_response(status, payload, stream))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            writer.close()

    async def _handle(self, method: str, path: str, body: bytes) -> tuple[int, Any, bool]:
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return 200, {"object": "list", "data": [{"id": self.model_name, "object": "model"}]}, False
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, _error(f"no such endpoint: {method} {path}", "not_found"), False
        try:
            data = json.loads(body or b"{}")
            messages = data["messages"]
        except (ValueError, KeyError, TypeError) as e:
            return 400, _error(f"bad request body: {e}", "invalid_request_error"), False
        self.requests += 1
        try:
            completion = await self.model.complete("worker", messages, data.get("tools"), task_id=self.task_id)
        except BudgetExceeded as e:  # 403: agents treat it as final instead of retrying
            return 403, _error(f"Longshot: {e}", "budget_exceeded"), False
        except LLMError as e:
            return 502, _error(f"Longshot could not get an answer: {e}", "upstream_error"), False
        return 200, _completion_body(completion, self.model_name), bool(data.get("stream"))


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError(f"request body too large ({length} bytes)")
    body = await reader.readexactly(length) if length else b""
    return method, path, body


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code}}


def _completion_body(c: Completion, model: str) -> dict[str, Any]:
    message = c.as_message()
    if not c.tool_calls:
        message.pop("tool_calls", None)
    return {
        "id": f"chatcmpl-longshot-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": c.model or model,
        "choices": [{"index": 0, "message": message, "finish_reason": c.finish_reason or "stop"}],
        "usage": {"prompt_tokens": c.usage.prompt_tokens, "completion_tokens": c.usage.completion_tokens,
                  "total_tokens": c.usage.total},
    }


def _response(status: int, payload: Any, stream: bool) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 502: "Bad Gateway"}[status]
    if stream and status == 200:
        chunk = dict(payload, object="chat.completion.chunk")
        choice = chunk["choices"][0]
        delta = dict(choice["message"])
        delta["tool_calls"] = [dict(call, index=i) for i, call in enumerate(delta.get("tool_calls", []))]
        if not delta["tool_calls"]:
            del delta["tool_calls"]
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": choice["finish_reason"]}]
        body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        kind = "text/event-stream"
    else:
        body = json.dumps(payload).encode()
        kind = "application/json"
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
