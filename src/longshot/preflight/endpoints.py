"""Preflight of the model endpoints: reachable, key accepted, each role's model served, tool
calling works, context window known.

Per endpoint: one ``GET /models`` (reachability, the key, the models served and their
context windows where the server says) and, per distinct model, one tiny chat request
offering one tool (`PROBE_TOOL`) that the model should call: a few hundred tokens in all.
Connections time out after `CONNECT_TIMEOUT` seconds and answers after `READ_TIMEOUT`, so a
wrong address fails in seconds. The key is sent, never shown.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2

from longshot.llm.base import PROBE_TOOL
from longshot.preflight.check import Finding, EndpointSpec, PreflightOptions
from longshot.tools.context import context_window

CONNECT_TIMEOUT = 4.0
READ_TIMEOUT = 8.0
PROBE_MAX_TOKENS = 200
CONTEXT_KEYS = ("context_length", "max_model_len", "context_window", "max_context_length")
PROBE_BODY: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": f"This is a connectivity test. Call the tool {PROBE_TOOL} with ok=true. "
                                      "Do not answer in text."},
        {"role": "user", "content": "Run the test."},
    ],
    "tools": [{"type": "function", "function": {
        "name": PROBE_TOOL, "description": "Confirms that tool calling works.",
        "parameters": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}}}],
    "max_tokens": PROBE_MAX_TOKENS, "temperature": 0,
}


async def check_endpoints(options: PreflightOptions) -> tuple[list[Finding], int]:
    """Every endpoint's findings, checked at once; and the tokens the probes used."""
    found = await asyncio.gather(*(_endpoint(options, ep) for ep in options.endpoints))
    return [c for checks, _ in found for c in checks], sum(tokens for _, tokens in found)


async def _endpoint(options: PreflightOptions, ep: EndpointSpec) -> tuple[list[Finding], int]:
    headers = {"Authorization": f"Bearer {ep.api_key or 'none'}", "Accept": "application/json"}
    timeout = httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    async with httpx2.AsyncClient(timeout=timeout, headers=headers) as client:
        listed, served, problem = await _models(client, ep)
        if problem is not None:
            return [problem], 0
        probes = await asyncio.gather(*(_probe(client, ep, options, m, served) for m in options.models))
        return [listed, *(c for checks, _ in probes for c in checks)], sum(tokens for _, tokens in probes)


async def _models(client: httpx2.AsyncClient, ep: EndpointSpec) -> tuple[Finding, dict[str, int | None] | None,
                                                                         Finding | None]:
    """(the finding, {model: context window or None} when listed, a failure that ends the checks)."""
    url = f"{ep.base_url}/models"
    try:
        resp = await client.get(url)
    except httpx2.TimeoutException:
        fail = Finding(ep.area, "fail", f"no answer from {url} within {CONNECT_TIMEOUT + READ_TIMEOUT:g} s",
                     ep.url_setting, "check the address (the API root, e.g. https://api.openai.com/v1) and that "
                                     "the server runs and is reachable from here")
        return fail, None, fail
    except httpx2.TransportError as e:
        fail = Finding(ep.area, "fail", f"cannot reach {url} ({_reason(e)})", ep.url_setting,
                     "check the address and port, and that the server runs (curl it from this machine)")
        return fail, None, fail
    if resp.status_code in (401, 403):
        fail = Finding(ep.area, "fail", f"{url} refused the API key (HTTP {resp.status_code}: {_message(resp)})",
                     ep.key_setting, f"set {ep.key_setting.split(' ')[0]} to a key that {ep.base_url} accepts")
        return fail, None, fail
    if resp.status_code == 404:
        return Finding(ep.area, "ok", f"{ep.base_url} answers (it does not list its models)"), None, None
    if resp.status_code >= 400:
        fail = Finding(ep.area, "fail", f"{url} answered HTTP {resp.status_code}: {_message(resp)}", ep.url_setting,
                     "check that this is an OpenAI-compatible API root and that the server is healthy")
        return fail, None, fail
    try:
        data = resp.json()["data"]
        served = {str(m["id"]): _context(m) for m in data if isinstance(m, dict) and "id" in m}
    except (ValueError, KeyError, TypeError):
        fail = Finding(ep.area, "fail", f"{url} did not answer like an OpenAI-compatible API (no model list)",
                     ep.url_setting, "give the API root, which usually ends in /v1 (e.g. http://localhost:8000/v1)")
        return fail, None, fail
    return Finding(ep.area, "ok", f"{ep.base_url} answers and accepts the key ({len(served)} models listed)"), served, None


async def _probe(client: httpx2.AsyncClient, ep: EndpointSpec, options: PreflightOptions, model: str,
                 served: dict[str, int | None] | None) -> tuple[list[Finding], int]:
    """One tiny tool-call request with ``model``; its findings and the tokens it used."""
    area, setting = f"model {model}" + (f" at {ep.name}" if options.many_endpoints else ""), options.models[model]
    try:
        resp = await client.post(f"{ep.base_url}/chat/completions", json={"model": model, **PROBE_BODY})
    except httpx2.TimeoutException:
        return [Finding(area, "warn", f"no answer to a tiny request within {READ_TIMEOUT:g} s: tool calling was not "
                                    "checked", setting, "if the model is this slow, raise LLM_TIMEOUT")], 0
    except httpx2.TransportError as e:
        return [Finding(area, "fail", f"the request failed ({_reason(e)})", ep.url_setting, "check the server")], 0
    if resp.status_code in (401, 403):
        return [Finding(area, "fail", f"the key was refused for this model (HTTP {resp.status_code}: "
                                    f"{_message(resp)})", ep.key_setting, f"use a key with access to {model}")], 0
    if resp.status_code >= 400:
        return [_refused(resp, ep, model, setting, area, served)], 0
    try:
        answer = resp.json()
        message = answer["choices"][0]["message"]
        tokens = int((answer.get("usage") or {}).get("total_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return [Finding(area, "fail", "the answer is not a chat completion", ep.url_setting,
                      "check that this is an OpenAI-compatible API")], 0
    calls = [(c.get("function") or {}).get("name") for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    checks = [Finding(area, "ok", "tool calling works") if PROBE_TOOL in calls else
              Finding(area, "warn", "answered in text instead of calling the offered tool: workers need tool calling",
                    setting, "use a model that supports tool (function) calling")]
    checks.append(_window(options.context_window, model, served, area))
    return checks, tokens


def _refused(resp: httpx2.Response, ep: EndpointSpec, model: str, setting: str, area: str,
             served: dict[str, int | None] | None) -> Finding:
    """A probe answered with an error status: an unknown model, no tool calling, or else."""
    text, body, status = _message(resp), resp.text.lower(), resp.status_code
    if status == 404 and "model" not in body:
        return Finding(area, "fail", f"nothing at {ep.base_url}/chat/completions answers like an OpenAI-compatible API "
                                   f"(HTTP 404)", ep.url_setting,
                     "give the API root, which usually ends in /v1 (e.g. http://localhost:8000/v1)")
    if status == 404 or "model_not_found" in body or ("model" in text.lower() and "tool" not in text.lower()):
        shown = f"; it serves {', '.join(sorted(served)[:8])}" if served else ""
        return Finding(area, "fail", f"{ep.base_url} does not serve model {model!r} (HTTP {status}: {text}){shown}",
                     setting, "set it to a model the endpoint serves")
    if "tool" in text.lower() or "function" in text.lower():
        return Finding(area, "fail", f"refused tool calling (HTTP {status}: {text})", setting,
                     "use a model and server with tool (function) calling, e.g. vLLM with --enable-auto-tool-choice")
    return Finding(area, "fail", f"refused a tiny request (HTTP {status}: {text})", setting, "see the server's message")


def _window(configured: int | None, model: str, served: dict[str, int | None] | None, area: str) -> Finding:
    told = (served or {}).get(model)
    if told:
        return Finding(area, "ok", f"context window {told:,} tokens (said by the server)")
    if configured:
        return Finding(area, "ok", f"context window {configured:,} tokens (LLM_CONTEXT_WINDOW)")
    known = context_window(model, 0)
    if known:
        return Finding(area, "ok", f"context window {known:,} tokens (bundled table)")
    return Finding(area, "warn", "context window unknown: 128,000 tokens is assumed", "LLM_CONTEXT_WINDOW",
                 "set LLM_CONTEXT_WINDOW to the model's window in tokens")


def _context(entry: dict[str, Any]) -> int | None:
    for key in CONTEXT_KEYS:
        value = entry.get(key) or (entry.get("top_provider") or {}).get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _message(resp: httpx2.Response) -> str:
    """The server's own error message, short."""
    try:
        body = resp.json()
    except ValueError:
        return " ".join(resp.text.split())[:200] or resp.reason_phrase
    err = body.get("error", body) if isinstance(body, dict) else body
    text = err.get("message") if isinstance(err, dict) else err
    return " ".join(str(text or resp.reason_phrase).split())[:200]


def _reason(e: httpx2.TransportError) -> str:
    cause: BaseException | None = e
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    return " ".join(str(cause or e).split())[:200] or type(e).__name__
