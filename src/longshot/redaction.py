"""Redaction: secret values never leave the process in a log, a page or a report.

`Redactor` replaces two kinds of secret with ``[REDACTED]``:

- the configured values (API keys from the settings, and values of environment variables
  whose names say they hold a secret), in their raw, JSON-escaped and HTML-escaped forms,
  so a value is caught whether it is read from a log line or sits in a rendered page;
- strings shaped like well-known credentials (OpenAI/Anthropic ``sk-`` keys, GitHub tokens,
  AWS access key ids, Slack tokens, bearer tokens, PEM private keys), even when nobody
  configured them here.

The request log (`longshot.llm.requestlog`) and the web view (`longshot.web`) both use it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping

MARK = "[REDACTED]"
PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str]], ...] = (
    (("sk-",), re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}")),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}")),
    (("github_pat_",), re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}")),
    (("AKIA",), re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    (("xox",), re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}")),
    (("earer ", "EARER "), re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/\-]{16,}=*")),
    (("PRIVATE KEY",), re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")),
)
"""Credentials recognisable by their shape, each with the literals one of which it contains (a quick
test that spares the expression on text without any)."""
SECRET_NAME = re.compile(r"(?i)(api_?key|token|secret|password|passwd|credential|private_key)")
"""Environment variable names whose values are treated as secrets."""
MIN_NAMED_SECRET = 8
"""Values shorter than this in variables named like secrets are too common to redact (``true``, ``none``)."""


def secrets_in_env(env: Mapping[str, str]) -> list[str]:
    """Values of the variables in ``env`` whose names say they hold a secret."""
    return [v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_NAMED_SECRET]


class Redactor:
    """Replaces configured secret values and credential-shaped strings with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = (), *, patterns: bool = True) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {secret, json.dumps(secret)[1:-1], html.escape(secret), html.escape(secret, quote=False)}
        self._values = sorted(forms, key=len, reverse=True)  # longest first: a secret containing another
        self._patterns = PATTERNS if patterns else ()

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MARK)
        for hints, pattern in self._patterns:
            if any(h in text for h in hints):
                text = pattern.sub(MARK, text)
        return text
