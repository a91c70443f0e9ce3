"""How one endpoint's requests reach it: httpcore2's connection pool, or httpx2 behind a proxy.

An endpoint sends the same POST over and over: same URL, same headers but the length, a
JSON body out, a JSON body in. `PoolSender` builds that request's URL and headers once and
hands each request straight to ``httpcore2.AsyncConnectionPool``, the transport ``httpx2``
itself sends through, reading and writing through asyncio (`longshot.llm.netstream`) rather
than anyio; what ``httpx2`` adds above the pool (a Request and a Response model per request,
header and URL merging, auth and redirect wrappers, cookie handling) and anyio's cancel
scopes cost about 30% of the CPU of a request (docs/benchmarks.md, issue 21), and nothing of
it is used here.

What ``httpx2`` would do is kept by asking ``httpx2`` itself, once per sender: the headers
are those ``httpx2.AsyncClient.build_request`` builds for the endpoint (``Host``,
``Accept-Encoding``, ``Connection: keep-alive``, ours), the URL is the one it parses, the
timeouts are its ``Timeout`` (connect, read, write, pool), TLS uses the SSL context it would
build (``httpx2.create_ssl_context``: the system store, or ``SSL_CERT_FILE`` /
``SSL_CERT_DIR``), and an answer sent with a ``Content-Encoding`` is decoded by its
``Response``. Proxies: when the environment names a proxy for the endpoint (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY`` in either case, ``NO_PROXY`` honoured), as the client
``httpx2`` builds with ``trust_env`` decides it, the endpoint keeps the plain ``httpx2``
client (`HttpxSender`), proxy and all; so does a URL with credentials in it.

Senders raise the HTTP library's own errors; `longshot.llm.openai_compat` translates them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import httpcore2
import httpx2

from longshot.llm.netstream import AsyncioBackend

Headers = list[tuple[bytes, bytes]]
KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle connection is kept (httpx2's default)."""


class Template(NamedTuple):
    """What every request of an endpoint shares: its URL as given and as httpcore2 takes it, its headers."""

    url: str
    target: httpcore2.URL
    headers: Headers


class Sender(Protocol):
    """Sends one POST of a JSON body; returns (status, response headers, decoded body)."""

    async def post(self, content: bytes) -> tuple[int, Headers, bytes]: ...

    async def aclose(self) -> None: ...


def needs_httpx(url: str) -> bool:
    """Whether requests to ``url`` keep the httpx2 client: the environment routes them through a
    proxy (as an httpx2 client decides it), or the URL carries credentials (httpx2 sends those
    as Basic auth, in place of the key)."""
    client, parsed = _probe(trust_env=True), httpx2.URL(url)
    return bool(parsed.userinfo) or client._transport_for_url(parsed) is not client._transport  # noqa: SLF001


def request_template(url: str, headers: dict[str, str]) -> Template:
    """The URL and the headers (but the length) httpx2 would send a POST to ``url`` with."""
    template = _probe(trust_env=False, headers=headers).build_request("POST", url, content=b"")
    u = template.url
    return Template(url, httpcore2.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port, target=u.raw_path),
                    [(k, v) for k, v in template.headers.raw if k.lower() != b"content-length"])


def _probe(**kwargs: Any) -> httpx2.AsyncClient:
    """A client that is asked questions and never sends (``verify=False`` only spares loading the CA store)."""
    return httpx2.AsyncClient(verify=False, **kwargs)


class HttpxSender:
    """The request through a plain ``httpx2.AsyncClient`` (environment proxies honoured)."""

    def __init__(self, url: str, headers: dict[str, str], timeout: httpx2.Timeout, max_connections: int,
                 max_keepalive: int) -> None:
        self.url = url
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_keepalive)
        self._client = httpx2.AsyncClient(timeout=timeout, limits=limits, headers=headers)

    async def post(self, content: bytes) -> tuple[int, Headers, bytes]:
        resp = await self._client.post(self.url, content=content)
        return resp.status_code, resp.headers.raw, resp.content

    async def aclose(self) -> None:
        await self._client.aclose()


class PoolSender:
    """The request built once and sent through an ``httpcore2.AsyncConnectionPool`` (HTTP/1.1, keep-alive).

    Cookies an endpoint sets (a load balancer's, say) are sent back as httpx2's client does,
    with its cookie jar; an endpoint that sets none costs a look at each answer's header names.
    """

    def __init__(self, template: Template, timeout: httpx2.Timeout, max_connections: int, max_keepalive: int) -> None:
        self._template = template
        self._cookies = httpx2.Cookies()
        self._extensions: dict[str, Any] = {"timeout": timeout.as_dict()}
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=True), max_connections=max_connections,
            max_keepalive_connections=max_keepalive, keepalive_expiry=KEEPALIVE_EXPIRY,
            network_backend=AsyncioBackend())

    async def post(self, content: bytes) -> tuple[int, Headers, bytes]:
        headers = [*self._template.headers, (b"Content-Length", b"%d" % len(content))]
        cookie = self._cookie_header() if self._cookies else b""
        if cookie:
            headers.append((b"Cookie", cookie))
        request = httpcore2.Request(b"POST", self._template.target, headers=headers, content=content,
                                    extensions=self._extensions)
        response = await self._pool.handle_async_request(request)
        try:
            raw = await response.aread()
        finally:
            await response.aclose()
        names = {name.lower() for name, _ in response.headers}
        if b"set-cookie" in names:
            self._cookies.extract_cookies(httpx2.Response(response.status, headers=response.headers,
                                                          request=httpx2.Request("POST", self._template.url)))
        if b"content-encoding" in names:  # decoded by httpx2's decoders (identity: nothing to do)
            raw = httpx2.Response(response.status, headers=response.headers, content=raw).content
        return response.status, response.headers, raw

    def _cookie_header(self) -> bytes:
        """The ``Cookie`` header httpx2's jar gives for this endpoint's URL."""
        request = httpx2.Request("POST", self._template.url)
        self._cookies.set_cookie_header(request)
        return request.headers.get("Cookie", "").encode("latin-1")

    async def aclose(self) -> None:
        await self._pool.aclose()
