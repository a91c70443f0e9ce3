"""The per-run request log: every model request and answer of every role, as NDJSON.

One line per attempt. A conversation (role + task) resends its whole history each time,
so a line carries only the messages that conversation has not logged yet
(``messages_from`` says where they start). Configured secret values are replaced by
``[REDACTED]`` wherever they occur; request headers (which hold the API key) are never
seen here at all. Strings shaped like credentials are redacted too (`longshot.redaction`).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

from longshot.errors import LLMError
from longshot.llm.base import Completion, Message
from longshot.redaction import Redactor


class RequestLog:
    def __init__(self, path: Path, secrets: list[str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._stream: IO[str] = path.open("a", encoding="utf-8")
        self._redact = Redactor(secrets or [])
        self._logged: dict[str, int] = {}
        self._lock = threading.Lock()

    def write(self, *, role: str, task_id: str | None, endpoint: str, model: str, messages: list[Message],
              attempt: int, completion: Completion | None = None, error: LLMError | None = None) -> None:
        key = f"{role}:{task_id or ''}"
        start = self._logged.get(key, 0)
        if start > len(messages):  # the conversation was compacted: log it whole again
            start = 0
        record: dict[str, Any] = {
            "ts": time.time(), "role": role, "task_id": task_id, "endpoint": endpoint, "model": model,
            "attempt": attempt, "messages_from": start, "messages": messages[start:],
        }
        if completion is not None:
            record["response"] = completion.as_message()
            record["usage"] = completion.usage.model_dump()
            record["finish_reason"] = completion.finish_reason
            self._logged[key] = len(messages)
        if error is not None:
            record["error"] = f"{type(error).__name__}: {error}"
        line = self._redact(json.dumps(record, ensure_ascii=False))
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        self._stream.close()
