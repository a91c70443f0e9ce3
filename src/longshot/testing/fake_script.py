"""The script side of the fake LLM server: what a request looks like to a script, what it
answers, and how an answer looks on the wire.

A script is any callable ``Turn -> Reply``. `RoleScript` builds one from a per-role table of
replies, played by turn number, and can load the same table from a JSON file. The
``*_body``/``stream_chunks`` functions render replies as OpenAI chat-completions JSON.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeAlias

from longshot.llm.base import ROLES, Message, Role

CONTEXT_OVERFLOW_MESSAGE = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "more tokens than that. Please reduce the length of the messages."
)
_TASK_ID = re.compile(r"Task ID:\s*(\S+)")
_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True)
class Turn:
    """One chat request as a script sees it.

    ``task_id`` comes from ``Task ID: <id>`` in the first user message; ``turn`` is the number
    of assistant messages already in ``messages``; ``index`` counts every chat request the
    server has received, from 0.
    """

    role: Role
    model: str
    messages: list[Message]
    tools: list[dict[str, Any]] | None
    task_id: str | None
    turn: int
    index: int
    stream: bool = False


@dataclass(frozen=True)
class ToolCallSpec:
    """A tool call to send: ``arguments`` go out as JSON, or ``raw_arguments`` verbatim when set."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    id: str | None = None

    @property
    def arguments_text(self) -> str:
        """The ``function.arguments`` string as it goes on the wire."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.arguments)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCallSpec:
        """Build from ``{"name": ..., "arguments": {...}}`` (optionally ``raw_arguments``, ``id``)."""
        _check_keys(data, cls, "tool call")
        if not isinstance(data.get("name"), str):
            raise ValueError(f"tool call needs a string 'name': {dict(data)!r}")
        if not isinstance(data.get("arguments", {}), dict):
            raise ValueError(f"tool call 'arguments' must be an object: {dict(data)!r}")
        return cls(**data)


@dataclass(frozen=True)
class Reply:
    """What the fake server answers to one request.

    A normal answer carries ``content`` and/or ``tool_calls``. ``delay`` holds the answer back
    without blocking other requests. The fault knobs, checked in this order, replace it:
    ``hang`` (never answer until the server stops), ``context_overflow`` (400,
    ``context_length_exceeded``), ``status`` other than 200 (an OpenAI-shaped error, with a
    ``Retry-After`` header when ``retry_after`` is set), ``empty_choices`` (a 200 with no
    choices). ``cut_after_bytes`` closes the connection after that many body bytes; a cut
    stream never sends ``[DONE]``.
    """

    content: str | None = None
    tool_calls: list[ToolCallSpec] = field(default_factory=list)
    delay: float = 0.0
    finish_reason: str | None = None
    status: int = 200
    retry_after: float | None = None
    error_message: str | None = None
    hang: bool = False
    cut_after_bytes: int | None = None
    empty_choices: bool = False
    context_overflow: bool = False

    def __post_init__(self) -> None:
        calls = [c if isinstance(c, ToolCallSpec) else ToolCallSpec.from_dict(c) for c in self.tool_calls]
        object.__setattr__(self, "tool_calls", calls)
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")
        if self.cut_after_bytes is not None and self.cut_after_bytes < 0:
            raise ValueError(f"cut_after_bytes must be >= 0, got {self.cut_after_bytes}")

    @classmethod
    def text(cls, content: str, *, delay: float = 0.0) -> Reply:
        """A plain text answer."""
        return cls(content=content, delay=delay)

    @classmethod
    def call(cls, name: str, /, **arguments: Any) -> Reply:
        """An answer holding one tool call with these JSON arguments."""
        return cls(tool_calls=[ToolCallSpec(name, arguments)])

    @classmethod
    def error(cls, status: int, message: str | None = None, *, retry_after: float | None = None) -> Reply:
        """An HTTP error answer in OpenAI's error shape."""
        return cls(status=status, error_message=message, retry_after=retry_after)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        """Build from a JSON object with `Reply` field names; tool calls as objects."""
        _check_keys(data, cls, "reply")
        values = dict(data)
        calls = values.pop("tool_calls", [])
        if not isinstance(calls, list):
            raise ValueError(f"reply 'tool_calls' must be a list: {calls!r}")
        return cls(tool_calls=[ToolCallSpec.from_dict(c) for c in calls], **values)

    @property
    def resolved_finish_reason(self) -> str:
        """``finish_reason`` if set, else ``"tool_calls"`` with tool calls and ``"stop"`` without."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


Script: TypeAlias = Callable[[Turn], Reply]
Entry: TypeAlias = Script | Sequence[Reply] | Reply


class ScriptExhausted(Exception):
    """The script has no reply for this turn. The server answers 500 and records the message."""

    def __init__(self, turn: Turn, detail: str = "") -> None:
        message = f"fake_llm script exhausted: role={turn.role} task={turn.task_id} turn={turn.turn}"
        super().__init__(f"{message} ({detail})" if detail else message)


class RoleScript:
    """A script from a per-role table.

    Each role maps to a callable ``Turn -> Reply``, a single `Reply` (every turn), or a list of
    replies played by turn number (the count of assistant messages in the conversation, so a
    continued conversation advances). A role may instead map to a task table
    ``{task_id: entry, "*": default}``, picked by the turn's task id. A role, task or list
    with nothing for the turn raises `ScriptExhausted`.
    """

    def __init__(self, roles: Mapping[str, Entry | Mapping[str, Entry]]) -> None:
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}; roles are {list(ROLES)}")
        self._roles = dict(roles)

    def __call__(self, turn: Turn) -> Reply:
        entry = self._roles.get(turn.role)
        if entry is None:
            raise ScriptExhausted(turn, "no script for this role")
        if isinstance(entry, Mapping):
            key = turn.task_id if turn.task_id is not None and turn.task_id in entry else "*"
            if key not in entry:
                raise ScriptExhausted(turn, "no script for this task and no '*' default")
            entry = entry[key]
        return _play(entry, turn)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoleScript:
        """Build from JSON-shaped data: each role maps to a list of reply objects, or to a task
        table ``{task_id: [reply, ...], "*": [...]}``."""
        roles: dict[str, Entry | Mapping[str, Entry]] = {}
        for role, value in data.items():
            if isinstance(value, list):
                roles[role] = _replies(value, role)
            elif isinstance(value, dict):
                roles[role] = {task: _replies(v, f"{role}.{task}") for task, v in value.items()}
            else:
                raise ValueError(f"{role}: expected a list of replies or a task table, got {value!r}")
        return cls(roles)

    @classmethod
    def from_file(cls, path: str | Path) -> RoleScript:
        """Load `from_dict` data from a JSON file."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a role script must be a JSON object")
        return cls.from_dict(data)


def _play(entry: Entry, turn: Turn) -> Reply:
    if isinstance(entry, Reply):
        return entry
    if callable(entry):
        reply = entry(turn)
        if not isinstance(reply, Reply):
            raise TypeError(f"script for role {turn.role} returned {type(reply).__name__}, not Reply")
        return reply
    if isinstance(entry, Sequence) and not isinstance(entry, str):
        if turn.turn < len(entry):
            return entry[turn.turn]
        raise ScriptExhausted(turn, f"{len(entry)} replies scripted")
    raise TypeError(f"bad script entry for role {turn.role}: {entry!r}")


def _replies(value: Any, where: str) -> list[Reply]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{where}: expected a list of reply objects, got {value!r}")
    return [Reply.from_dict(v) for v in value]


def _check_keys(data: Mapping[str, Any], cls: type, what: str) -> None:
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} fields {unknown} in {dict(data)!r}")


def task_id_of(messages: list[Message]) -> str | None:
    """The id in ``Task ID: <id>`` in the first user message, if any."""
    first = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
    content = first.get("content") if first is not None else None
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    match = _TASK_ID.search(content) if isinstance(content, str) else None
    return match.group(1) if match else None


def usage_of(messages: list[Message], reply: Reply) -> dict[str, int]:
    """Rough token counts: a quarter of the characters, at least 1."""
    prompt = max(1, len(json.dumps(messages)) // 4)
    completion = max(1, len((reply.content or "") + "".join(c.arguments_text for c in reply.tool_calls)) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body; ``type`` and a default ``code`` follow from the status."""
    type_, default_code = _ERROR_KINDS.get(status, ("server_error", "server_error"))
    return {"error": {"message": message, "type": type_, "param": None, "code": code or default_code}}


def completion_body(reply: Reply, *, model: str, index: int, messages: list[Message]) -> dict[str, Any]:
    """A ``chat.completion`` object for a normal (non-fault) reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = _wire_calls(reply, index)
    choice = {"index": 0, "message": message, "finish_reason": reply.resolved_finish_reason, "logprobs": None}
    choices = [] if reply.empty_choices else [choice]
    return {**_envelope(model, index, "chat.completion"), "choices": choices, "usage": usage_of(messages, reply)}


def stream_chunks(
    reply: Reply, *, model: str, index: int, messages: list[Message], include_usage: bool
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed reply, without the ``[DONE]`` marker."""
    base = _envelope(model, index, "chat.completion.chunk")
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

    if reply.empty_choices:
        chunks = [{**base, "choices": []}]
    else:
        chunks = [chunk({"role": "assistant", "content": None if reply.content is None else ""})]
        chunks += [chunk({"content": piece}) for piece in _pieces(reply.content or "")]
        for n, call in enumerate(_wire_calls(reply, index)):
            function = {"name": call["function"]["name"], "arguments": ""}
            chunks.append(chunk({"tool_calls": [{"index": n, "id": call["id"], "type": "function", "function": function}]}))
            for piece in _pieces(call["function"]["arguments"]):
                chunks.append(chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, reply.resolved_finish_reason))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage_of(messages, reply)})
    return chunks


def _wire_calls(reply: Reply, index: int) -> list[dict[str, Any]]:
    return [
        {"id": c.id or f"call_{index}_{n}", "type": "function", "function": {"name": c.name, "arguments": c.arguments_text}}
        for n, c in enumerate(reply.tool_calls)
    ]


def _envelope(model: str, index: int, obj: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-fake-{index}", "object": obj, "created": int(time.time()), "model": model}


def _pieces(text: str, count: int = 3) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]
