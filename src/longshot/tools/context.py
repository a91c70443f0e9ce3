"""Keeping a worker's conversation inside the model's context window, and its guards.

- `context_window`: the model's window from ``llm/contexts.json`` (data, by name/prefix).
- `compact`: replaces older turns by a mechanical summary that keeps the system prompt,
  the task, the worker's first statement of its plan and a line per step taken; the most
  recent turns stay verbatim (never splitting a tool call from its result).
- `LoopGuard`: the same call with the same result K times in a row is a loop; the same
  call whose result changes (polling a build) is not.
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files

from longshot.llm.base import Message

DEFAULT_WINDOW = 128_000
KEEP_RECENT = 8


def context_window(model: str, default: int = DEFAULT_WINDOW) -> int:
    table = {k: v for k, v in json.loads(files("longshot.llm").joinpath("contexts.json").read_text()).items()
             if not k.startswith("_")}
    if model in table:
        return int(table[model])
    matches = [name for name in table if model.startswith(name)]
    return int(table[max(matches, key=len)]) if matches else default


def estimate_tokens(messages: list[Message]) -> int:
    """A cheap, conservative estimate: about four characters per token."""
    return len(json.dumps(messages, ensure_ascii=False)) // 4


def compact(messages: list[Message], keep_recent: int = KEEP_RECENT) -> list[Message]:
    """The conversation with everything between the task and the recent turns summarised."""
    head = messages[:2]  # system prompt and the task
    start = max(2, len(messages) - keep_recent)
    while start < len(messages) and messages[start].get("role") == "tool":
        start += 1  # a tool result must follow the assistant message that asked for it
    middle, recent = messages[2:start], messages[start:]
    if not middle:
        return messages
    lines: list[str] = []
    plan = next((m["content"] for m in middle if m.get("role") == "assistant" and m.get("content")), "")
    results = {m.get("tool_call_id"): str(m.get("content", "")) for m in middle if m.get("role") == "tool"}
    step = 0
    for m in middle:
        if m.get("role") == "user" and m.get("content", "").startswith("[Earlier steps"):
            lines.append(m["content"])
            continue
        for call in m.get("tool_calls") or []:
            step += 1
            fn = call["function"]
            args = fn.get("arguments", "")[:160].replace("\n", " ")
            result = results.get(call.get("id"), "").strip().replace("\n", " ")[:200]
            lines.append(f"- {fn['name']}({args}) -> {result}")
    summary = "[Earlier steps, compacted to save context]\n"
    if plan:
        summary += f"Your plan at the start: {plan[:1500]}\n"
    summary += "Steps taken (tool, arguments, start of the result):\n" + "\n".join(lines[-200:])
    summary += "\nContinue the task from here; re-read files if you need their current content."
    return [*head, {"role": "user", "content": summary}, *recent]


class LoopGuard:
    """Counts identical (call, result) pairs in a row."""

    def __init__(self, limit: int = 4) -> None:
        self.limit = limit
        self._last: str | None = None
        self._count = 0

    def seen(self, name: str, arguments: str, result: str) -> bool:
        """Record a call; True when it is the ``limit``-th identical one in a row."""
        key = hashlib.sha256(json.dumps([name, arguments, result]).encode()).hexdigest()
        self._count = self._count + 1 if key == self._last else 1
        self._last = key
        return self._count >= self.limit
