"""What stands between the web view and the network: the access token and the last redaction.

`TokenGate` refuses every request without the token (401) or with a wrong one (403). The
token comes once in the URL (``?token=...``, as Jupyter prints it); the answer sets it as a
cookie and redirects to the same address without it, so it does not stay in the address
bar or go out in a Referer. Tokens are compared in constant time.

`RedactBodies` passes every text response body through the `Redactor` before it leaves, a last
net behind the redaction of every input (run logs, request logs, diffs) as it is read,
and adds headers that keep pages from loading anything but their own scripts and styles.
"""

from __future__ import annotations

import codecs
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from longshot.redaction import Redactor

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def cookie_name(port: int) -> str:
    """Cookies are not kept apart by port: each server's cookie is named after its port."""
    return f"longshot_token_{port}"


class TokenGate:
    def __init__(self, app: App, token: str, port: int) -> None:
        self.app, self.token, self.cookie = app, token, cookie_name(port)

    def _ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if given is not None:
            if not self._ok(given):
                await _refuse(send, 403, "wrong access token")
                return
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            setting = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            await _answer(send, 303, b"", [(b"location", location.encode()), (b"set-cookie", setting.encode())])
            return
        auth = _header(scope, b"authorization").removeprefix("Bearer ")
        presented = _cookies(scope).get(self.cookie) or auth
        if not presented:
            await _refuse(send, 401, "an access token is needed: open the address `longshot serve` printed "
                                     "(it ends in ?token=...)")
            return
        if not self._ok(presented):
            await _refuse(send, 403, "wrong access token")
            return
        await self.app(scope, receive, send)


class RedactBodies:
    """Redacts every response body (whole, or chunk by chunk when streamed) and adds `HEADERS`."""

    def __init__(self, app: App, redact: Redactor) -> None:
        self.app, self.redact = app, redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: list[Message] = []
        text = [True]
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a chunk may end inside a character

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                text[0] = kind.startswith((b"text/", b"application/json", b"application/javascript"))
                start.append(message)
                return
            if message["type"] == "http.response.body":
                more = message.get("more_body", False)
                body = message.get("body", b"")
                if text[0]:
                    body = self.redact(decoder.decode(body, final=not more)).encode()
                if start:
                    head = start.pop()
                    headers = [(k, v) for k, v in head.get("headers", []) if k.lower() != b"content-length"]
                    if not more:
                        headers.append((b"content-length", str(len(body)).encode()))
                    await send({**head, "headers": headers + HEADERS})
                message = {**message, "body": body}
            await send(message)

        await self.app(scope, receive, wrapped)


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name), "")


def _cookies(scope: Scope) -> dict[str, str]:
    pairs = (p.strip().split("=", 1) for p in _header(scope, b"cookie").split(";") if "=" in p)
    return {k: v for k, v in pairs}


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), *headers, *HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send: Send, status: int, why: str) -> None:
    await _answer(send, status, f"{status}: {why}\n".encode(), [(b"content-type", b"text/plain; charset=utf-8")])
