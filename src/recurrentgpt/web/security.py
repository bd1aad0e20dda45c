"""Cheap protections for a studio that listens on a port: one pure-ASGI middleware, in this order:

1. Host check: without a token only loopback names are served, so a DNS-rebinding page cannot
   reach the studio through a name of its own that resolves to 127.0.0.1.
2. Token: with a token, every request needs ``Authorization: Bearer TOKEN`` or the cookie that
   visiting ``/?token=TOKEN`` sets (HttpOnly, SameSite=Strict).
3. Cross-site requests: a state-changing request must say it comes from a script of ours
   (``X-Requested-With`` or a JSON body, which a plain HTML form cannot send), must not be marked
   cross-site by ``Sec-Fetch-Site`` and, if it names an ``Origin``, that origin must be this host.
4. Body size: ``Content-Length`` over the limit is refused at once; a body streamed without one is
   counted as it arrives (413 either way).
5. Every response carries a strict Content-Security-Policy (no inline script, nothing off-site).
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "rgpt_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit // 1024} KB")


def host_name(host_header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:8000' -> '::1'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    def __init__(
        self, app: ASGIApp, *, token: str | None, max_body: int, allowed_hosts: Iterable[str] | None = None
    ):
        self.app = app
        self.token = token or None
        self.max_body = max_body
        if allowed_hosts is None and self.token is None:
            allowed_hosts = LOOPBACK_HOSTS
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts) if allowed_hosts is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _respond(send_with_headers, *refusal)
            return
        if self.token and scope["method"] == "GET" and self._query_token(scope) is not None:
            await self._set_cookie(scope, send_with_headers)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_headers(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge as e:  # raised outside a route (the app's own handler answers inside one)
            if not started:
                await _respond(send_with_headers, 413, e.detail)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        if self.allowed_hosts is not None and host_name(headers.get("host", "")) not in self.allowed_hosts:
            return 403, "this studio only answers on its loopback address (start it with --token to serve others)"
        if self.token and not self._authorised(scope, headers):
            return 401, "a token is required: open the address printed by `recurrentgpt serve` (it ends in ?token=…)"
        if scope["method"] in UNSAFE_METHODS:
            if headers.get("sec-fetch-site") == "cross-site":
                return 403, "cross-site requests are refused"
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                return 403, "the request's Origin does not match this studio"
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if "x-requested-with" not in headers and content_type != "application/json":
                return 403, "state-changing requests need a JSON body or an X-Requested-With header"
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "invalid Content-Length"
            if int(length) > self.max_body:
                return 413, f"the request body is larger than {self.max_body // 1024} KB"
        return None

    def _authorised(self, scope: Scope, headers: Headers) -> bool:
        assert self.token is not None
        candidates = []
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                candidates.append(value)
        query = self._query_token(scope)
        if query is not None and scope["method"] == "GET":
            candidates.append(query)
        return any(hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates)

    @staticmethod
    def _query_token(scope: Scope) -> str | None:
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if name == "token":
                return value
        return None

    async def _set_cookie(self, scope: Scope, send: Send) -> None:
        """``/?token=…``: remember the token in a cookie and drop it from the address bar."""
        query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k != "token"]
        location = scope.get("path", "/") + ("?" + urlencode(query) if query else "")
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                            (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _respond(send: Send, status: int, message: str, **extra: Any) -> None:
    body = json.dumps({"error": message, **extra}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
