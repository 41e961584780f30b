"""ASGI guards in front of every route: the token, and the size of request bodies.

:class:`TokenGuard` accepts ``Authorization: Bearer TOKEN`` (scripts) or the
``faceprior_token`` cookie (the web page). Opening any page with ``?token=TOKEN`` sets that
cookie (HttpOnly, SameSite=Strict, so other sites cannot send it) and redirects to the same
address without the token, so it does not stay in the history or the address bar.
:class:`BodyLimit` answers 413 as soon as a body grows past the limit, before it is parsed.
"""

from __future__ import annotations

import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

COOKIE = "faceprior_token"


class BodyTooLarge(Exception):
    pass


async def send_json(send, status: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class TokenGuard:
    """Refuse (401) every HTTP request without the token, when a token is set."""

    def __init__(self, app, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.token:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = dict(query).get("token")
        if given is not None and scope["method"] == "GET" and self._matches(given):
            kept = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{kept}" if kept else "")
            cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", location.encode()),
                        (b"set-cookie", cookie.encode()),
                        (b"content-length", b"0"),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": b""})
        if self._matches(_bearer(headers)) or self._matches(_cookie(headers)):
            return await self.app(scope, receive, send)
        await send_json(
            send,
            401,
            {
                "error": "a token is required: send 'Authorization: Bearer TOKEN' "
                "(or open the page once with ?token=TOKEN)"
            },
            [(b"www-authenticate", b"Bearer")],
        )

    def _matches(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())


class BodyLimit:
    """Answer 413 for bodies over ``limit`` bytes: by Content-Length, or while reading."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = {
            "error": f"the upload is larger than this server's limit of {self.limit:,} "
            f"bytes (faceprior serve --max-upload-mb)"
        }
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await send_json(send, 413, message, [(b"connection", b"close")])
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return event

        async def tracking_send(event):
            nonlocal started
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_json(send, 413, message, [(b"connection", b"close")])


def _bearer(headers: dict) -> str | None:
    value = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credentials = value.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def _cookie(headers: dict) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    cookie = SimpleCookie()
    try:
        cookie.load(raw.decode("latin-1"))
    except Exception:  # a malformed cookie header is just no token
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel else None
