"""Who may talk to the server: the access token, the Host check, CSRF, and safe headers.

- Bound to a loopback address, the server answers only requests whose Host header names the
  loopback (a web page elsewhere cannot reach it through DNS rebinding). Bound to any other
  address it requires a token, as Jupyter does: printed in the URL (``/?token=...``), then kept
  in a cookie that only this site receives. A program (Prometheus scraping ``/metrics``)
  sends it instead in an ``Authorization: Bearer TOKEN`` header, which is never redirected
  nor kept in a log of addresses.
- Every request that changes something (any method but GET and HEAD) must carry the page's
  CSRF token in the ``X-CSRF-Token`` header (app.js adds it to each htmx request) and, when the
  browser sends an Origin, come from this server's own.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "dedupdb_token"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    """The server's secrets: the access token (None: loopback only) and the CSRF token."""

    token: str | None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def token_ok(self, given: str | None) -> bool:
        return self.token is None or (
            given is not None and secrets.compare_digest(given.encode(), self.token.encode())
        )

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.csrf.encode())


def _host_name(request: Request) -> str:
    host = request.headers.get("host", "")
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, if any."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return (given.strip() or None) if scheme.lower() == "bearer" else None


def refusal(request: Request, guard: Guard) -> Response | None:
    """The response refusing this request, or None to let it through."""
    if guard.token is None and not is_loopback(_host_name(request)):
        return PlainTextResponse(
            "dedupdb serve answers only at a loopback address (http://127.0.0.1:PORT) "
            "unless it was started with a token",
            status_code=403,
        )
    given = request.query_params.get("token")
    if guard.token is not None and given is not None and guard.token_ok(given):
        if request.method in SAFE_METHODS:  # keep the token in a cookie, out of the address bar
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            url = URL(request.url.path + ("?" + urlencode(params) if params else ""))
            response = RedirectResponse(str(url), status_code=303)
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
            return response
    elif not (guard.token_ok(request.cookies.get(COOKIE)) or guard.token_ok(_bearer(request))):
        return PlainTextResponse(
            "dedupdb serve needs its token: open the address it printed (…/?token=…)",
            status_code=403,
        )
    if request.method not in SAFE_METHODS:
        if not guard.csrf_ok(request.headers.get(CSRF_HEADER)):
            return PlainTextResponse(
                "this request lacks the page's CSRF token: reload the page", status_code=403
            )
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
            return PlainTextResponse("cross-origin request refused", status_code=403)
    return None


class GuardMiddleware:
    """``refusal`` for every HTTP request, and ``HEADERS`` on every response."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = refusal(Request(scope), self.guard)

        async def send_with_headers(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.extend((k.lower().encode(), v.encode()) for k, v in HEADERS.items())
                message["headers"] = headers
            await send(message)

        if refused is not None:
            await refused(scope, receive, send_with_headers)  # type: ignore[arg-type]
            return
        await self.app(scope, receive, send_with_headers)  # type: ignore[arg-type]
