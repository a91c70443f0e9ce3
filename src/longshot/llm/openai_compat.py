"""One OpenAI-compatible endpoint over HTTP: one request, one attempt.

The request is sent with the HTTP stack the openai SDK itself ships on, called directly: a
JSON body out, a JSON body in, read as plain dicts. The SDK's request machinery (option
models, header building, response models) cost about twice the CPU of the request itself at
scale (docs/benchmarks.md, issue 21); nothing of it is needed for a chat completion without
streaming. Below that, the request goes straight to ``httpcore2``'s connection pool with
what ``httpx2`` would send, built once (`longshot.llm.transport`); an endpoint the
environment sends through a proxy keeps the plain ``httpx2`` client.

Errors are translated into `longshot.errors.LLMError` subclasses here (`map_errors`,
`_status_error`) and nowhere else, with the SDK's semantics: a timeout is `LLMTimeout`,
a refused or broken connection `LLMConnectionError`, 429 `LLMRateLimited` (with
``Retry-After`` or ``retry-after-ms``), 5xx and unreadable answers `LLMServerError`, a
4xx naming the context window `LLMContextOverflow`, any other 4xx `LLMBadRequest`. There
are no retries here: the router (`longshot.llm.router`) decides retries and failover from
`RETRY_POLICY`. The API key goes only into the ``Authorization`` header; no error message
carries a header.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpcore2
import httpx2
import pydantic_core

from longshot import __version__
from longshot.errors import (
    LLMBadRequest, LLMConnectionError, LLMContextOverflow, LLMRateLimited, LLMServerError, LLMTimeout,
)
from longshot.llm.base import Completion, Message, ToolCall, Usage
from longshot.llm.transport import HttpxSender, PoolSender, Sender, Template, needs_httpx, request_template

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection to an endpoint (LLM_TIMEOUT bounds the whole request)."""
POOL_SIZE = 16
"""Requests in flight per HTTP client (and so connections per pool) before another client is added."""
OVERFLOW_MARKERS = ("context_length_exceeded", "maximum context length", "reduce the length",
                    "prompt is too long", "too many tokens", "context window")
TRANSPORT_ERRORS = (httpcore2.NetworkError, httpcore2.ProtocolError, httpcore2.ProxyError,
                    httpcore2.UnsupportedProtocol)
"""httpcore2's errors that ``httpx2`` reports as ``TransportError`` (its timeouts are caught apart)."""
MAX_ERROR_TEXT = 500
"""Characters of an error answer's body kept in the error message."""


class OpenAICompatEndpoint:
    """Sends chat requests to one endpoint; ``name`` appears in every error."""

    def __init__(
        self, *, name: str, base_url: str, api_key: str, max_tokens: int = 65536,
        temperature: float = 0.7, timeout: float = 120.0, transport: Literal["auto", "httpx2"] = "auto",
    ) -> None:
        """``transport="httpx2"`` keeps the plain httpx2 client even without a proxy (to compare the two)."""
        self.name = name
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {api_key or 'none'}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"longshot/{__version__}",
        }
        # A connection that cannot be made fails in seconds, not after LLM_TIMEOUT: a wrong or
        # down endpoint shows as retries and failover at once instead of a long silent wait.
        self._timeout = httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        self._clients: list[Sender] = []
        self._in_flight: list[int] = []
        self._transport = transport
        self._template: Template | None = None  # built at the first request

    def _acquire(self) -> int:
        """The least busy client, or a new one when all have ``POOL_SIZE`` requests in flight.

        Each client has its own connection pool, and the HTTP library looks over every idle
        connection of a pool at each request and each answer: one pool for a hundred workers
        made that the largest cost per request. Small pools keep it small.
        """
        if not self._clients or min(self._in_flight) >= POOL_SIZE:
            self._clients.append(self._new_sender())
            self._in_flight.append(0)
        i = self._in_flight.index(min(self._in_flight))
        self._in_flight[i] += 1
        return i

    def _new_sender(self) -> Sender:
        """A connection pool of its own: httpcore2's, or httpx2's client where a proxy applies (`needs_httpx`)."""
        if self._template is None and self._transport == "auto" and not needs_httpx(self.url):
            self._template = request_template(self.url, self._headers)
        if self._template is not None:
            return PoolSender(self._template, self._timeout, POOL_SIZE * 4, POOL_SIZE)
        return HttpxSender(self.url, self._headers, self._timeout, POOL_SIZE * 4, POOL_SIZE)

    async def send(self, model: str, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Completion:
        """One request; raises an LLMError subclass on any failure, a cut answer included."""
        body: dict[str, Any] = {
            "model": model, "messages": messages,
            "max_tokens": self.max_tokens, "temperature": self.temperature,
        }
        if tools:
            body["tools"] = tools
        try:
            content = pydantic_core.to_json(body)  # the same bytes as json.dumps, in a fifth of the time
        except pydantic_core.PydanticSerializationError:  # a lone surrogate: carried through as json.dumps would
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        started = time.monotonic()
        client = self._acquire()
        try:
            with self.map_errors():
                status, headers, raw = await self._clients[client].post(content)
        finally:
            self._in_flight[client] -= 1
        if status >= 300:
            raise self._status_error(status, httpx2.Headers(headers), raw)
        with self.map_errors():
            return _completion(json.loads(raw), model, int((time.monotonic() - started) * 1000), self.name)

    def _status_error(self, status: int, headers: httpx2.Headers, raw: bytes) -> Exception:
        """The typed error for an answer with a non-success status."""
        message = _error_message(raw)
        if status == 429:
            return LLMRateLimited(f"rate limited: {message}", self.name, _retry_after(headers))
        if status >= 500:
            return LLMServerError(f"HTTP {status}: {message}", self.name)
        text = raw[:4096].decode("utf-8", "replace").lower()
        if any(m in text for m in OVERFLOW_MARKERS):
            return LLMContextOverflow(f"context overflow: {message}", self.name)
        return LLMBadRequest(f"HTTP {status}: {message}", self.name)

    @contextmanager
    def map_errors(self) -> Iterator[None]:
        """Translate HTTP-library and decoding errors into Longshot's hierarchy, naming this endpoint."""
        name = self.name
        try:
            yield
        except (httpx2.TimeoutException, httpcore2.TimeoutException) as e:
            raise LLMTimeout("the request timed out", name) from e
        except (httpx2.TransportError, *TRANSPORT_ERRORS) as e:
            raise LLMConnectionError(f"connection failed: {type(e).__name__}: {e}", name) from e
        except (httpx2.DecodingError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            # a body cut mid-JSON, JSON that is not a completion at all, or a body its encoding does not decode
            raise LLMServerError(f"unreadable answer ({type(e).__name__}: {e})", name) from e

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _completion(data: dict[str, Any], model: str, duration_ms: int, endpoint: str) -> Completion:
    """A `Completion` from a chat-completion JSON body (plain dicts, no response models)."""
    choices = data.get("choices")
    if not choices:
        raise LLMServerError("the answer had no choices", endpoint=endpoint)
    choice = choices[0]
    msg = choice.get("message") or {}
    calls = []
    for c in msg.get("tool_calls") or []:
        fn = c.get("function")
        if fn is None:
            continue
        calls.append(ToolCall(id=str(c.get("id") or ""), name=str(fn["name"]), arguments=fn.get("arguments") or ""))
    usage = data.get("usage") or {}
    content = msg.get("content")
    return Completion(
        content=content if isinstance(content, str) or content is None else str(content),
        tool_calls=calls, finish_reason=choice.get("finish_reason"),
        usage=Usage(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                    completion_tokens=int(usage.get("completion_tokens") or 0)),
        model=data.get("model") or model, duration_ms=duration_ms,
    )


def _error_message(raw: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body's text (capped)."""
    text = raw[:MAX_ERROR_TEXT * 8].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text[:MAX_ERROR_TEXT].strip() or "(empty answer)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:MAX_ERROR_TEXT]
        if isinstance(err, str):
            return err[:MAX_ERROR_TEXT]
    return text[:MAX_ERROR_TEXT]


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, ``retry-after`` in seconds or as a date."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
