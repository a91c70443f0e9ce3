"""One OpenAI-compatible endpoint, through the openai SDK: one request, one attempt.

SDK errors are translated into `longshot.errors.LLMError` subclasses here (`map_errors`)
and nowhere else. The SDK's own retries are off: the router (`longshot.llm.router`)
decides retries and failover from `RETRY_POLICY`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from longshot.errors import (
    LLMBadRequest, LLMConnectionError, LLMContextOverflow, LLMRateLimited, LLMServerError, LLMTimeout,
)
from longshot.llm.base import Completion, Message, ToolCall, Usage

CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection to an endpoint (LLM_TIMEOUT bounds the whole request)."""
POOL_SIZE = 16
"""Requests in flight per HTTP client (and so connections per pool) before another client is added."""
OVERFLOW_MARKERS = ("context_length_exceeded", "maximum context length", "reduce the length",
                    "prompt is too long", "too many tokens", "context window")


class OpenAICompatEndpoint:
    """Sends chat requests to one endpoint; ``name`` appears in every error."""

    def __init__(
        self, *, name: str, base_url: str, api_key: str, max_tokens: int = 65536,
        temperature: float = 0.7, timeout: float = 120.0,
    ) -> None:
        self.name = name
        self.max_tokens = max_tokens
        self.temperature = temperature
        # A connection that cannot be made fails in seconds, not after LLM_TIMEOUT: a wrong or
        # down endpoint shows as retries and failover at once instead of a long silent wait.
        self._options = {"base_url": base_url, "api_key": api_key or "none", "max_retries": 0,
                         "timeout": openai.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))}
        self._clients: list[openai.AsyncOpenAI] = []
        self._in_flight: list[int] = []

    def _acquire(self) -> int:
        """The least busy client, or a new one when all have ``POOL_SIZE`` requests in flight.

        Each client has its own connection pool, and the HTTP library looks over every idle
        connection of a pool at each request and each answer: one pool for a hundred workers
        made that the largest cost per request. Small pools keep it small.
        """
        if not self._clients or min(self._in_flight) >= POOL_SIZE:
            self._clients.append(openai.AsyncOpenAI(**self._options))  # type: ignore[arg-type]
            self._in_flight.append(0)
        i = self._in_flight.index(min(self._in_flight))
        self._in_flight[i] += 1
        return i

    async def send(self, model: str, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> Completion:
        """One request; raises an LLMError subclass on any failure, a cut answer included."""
        kwargs: dict[str, Any] = {
            "model": model, "messages": messages,
            "max_tokens": self.max_tokens, "temperature": self.temperature,
        }
        if tools:
            kwargs["tools"] = tools
        started = time.monotonic()
        client = self._acquire()
        try:
            with self.map_errors():
                # The SDK's public ``post`` sends this exact body. ``chat.completions.create`` would
                # first walk the whole conversation against its TypedDict annotations (a no-op for
                # plain JSON messages), which cost more CPU than anything else per request at scale.
                resp = await self._clients[client].post("/chat/completions", body=kwargs, cast_to=ChatCompletion)
        finally:
            self._in_flight[client] -= 1
        if not resp.choices:
            raise LLMServerError("the answer had no choices", endpoint=self.name)
        choice = resp.choices[0]
        msg = choice.message
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
            for c in (msg.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        usage = Usage(
            prompt_tokens=resp.usage.prompt_tokens if resp.usage else 0,
            completion_tokens=resp.usage.completion_tokens if resp.usage else 0,
        )
        return Completion(content=msg.content, tool_calls=calls, finish_reason=choice.finish_reason,
                          usage=usage, model=resp.model or model,
                          duration_ms=int((time.monotonic() - started) * 1000))

    @contextmanager
    def map_errors(self) -> Iterator[None]:
        """Translate openai SDK errors into Longshot's hierarchy, naming this endpoint."""
        name = self.name
        try:
            yield
        except openai.RateLimitError as e:
            raise LLMRateLimited(f"rate limited: {e.message}", name, _retry_after(e)) from e
        except openai.APITimeoutError as e:
            raise LLMTimeout("the request timed out", name) from e
        except openai.APIConnectionError as e:
            raise LLMConnectionError(f"connection failed: {e}", name) from e
        except openai.APIStatusError as e:
            text = str(e.message).lower() + " " + str(e.body).lower()
            if e.status_code >= 500:
                raise LLMServerError(f"HTTP {e.status_code}: {e.message}", name) from e
            if any(m in text for m in OVERFLOW_MARKERS):
                raise LLMContextOverflow(f"context overflow: {e.message}", name) from e
            raise LLMBadRequest(f"HTTP {e.status_code}: {e.message}", name) from e
        except openai.APIResponseValidationError as e:
            raise LLMServerError(f"malformed answer: {e}", name) from e
        except (ValueError, KeyError, TypeError) as e:  # a body cut mid-JSON, or not a completion at all
            raise LLMServerError(f"unreadable answer ({type(e).__name__}: {e})", name) from e

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()


def _retry_after(e: openai.APIStatusError) -> float | None:
    value = e.response.headers.get("retry-after") if e.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
