"""Security of the review server: host, token, origin and request-header checks.

See ``docs/review.md``:

* The server binds 127.0.0.1 by default. Binding another address needs an access token,
  which every ``/api/`` request must carry (header ``X-Petseg-Token`` or query
  ``token=``), and prints a warning.
* On a loopback server, requests whose ``Host`` header is not a loopback name are refused
  (403), so a web page elsewhere cannot reach it by DNS rebinding.
* A request carrying an ``Origin`` other than the server's own is refused (403), and every
  ``POST`` must carry the header ``X-Petseg-Request`` (which the page sends and which a
  cross-origin page cannot send without the server's consent): another site open in the
  browser can neither open cases nor edit.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from typing import Any

from petseg.review.http_io import error_answer

__all__ = ["REQUEST_HEADER", "SECURITY_HEADERS", "RequestGuard", "is_loopback"]

#: Header every POST must carry (any value): a cross-origin page cannot send it.
REQUEST_HEADER = "X-Petseg-Request"
#: Headers on every answer.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "worker-src 'self' blob:; script-src 'self' 'wasm-unsafe-eval'"
    ),
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``.

    Parameters
    ----------
    host : str
        Host name or IP address, without port or brackets.

    Returns
    -------
    bool
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestGuard:
    """ASGI middleware: the host, token, origin and request-header checks of the module
    docstring, and the headers every answer carries.

    Parameters
    ----------
    app : ASGI application
        The application answering the requests that pass.
    token : str or None
        Access token required on ``/api/`` requests (None: none required).
    loopback : bool
        The server binds a loopback address: refuse other ``Host`` headers.
    """

    def __init__(self, app: Any, *, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback

    def refusal(self, request: Any) -> tuple[int, str] | None:
        """``(status, message)`` when ``request`` breaks a rule, else None.

        Parameters
        ----------
        request : starlette.requests.Request
            The request before it reaches a route.

        Returns
        -------
        (int, str) or None
        """
        host = request.headers.get("host", "")
        if self.loopback and not is_loopback(host.rsplit(":", 1)[0].strip("[]")):
            return 403, "Host header is not a loopback name; open http://127.0.0.1:PORT/"
        if not request.url.path.startswith("/api/"):
            return None
        if self.token is not None:
            given = request.headers.get("x-petseg-token") or request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return 401, "missing or wrong access token; open the URL printed by `petseg review`"
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            return 403, f"cross-origin request from {origin} refused"
        if request.method == "POST" and REQUEST_HEADER.lower() not in request.headers:
            return 403, f"a POST needs the header {REQUEST_HEADER} (the review page sends it)"
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.datastructures import MutableHeaders
        from starlette.requests import Request

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = self.refusal(request)
        if refused is not None:
            await error_answer(*refused)(scope, receive, send)
            return
        started = time.perf_counter()
        static = request.url.path.startswith("/static/")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
                if static and message["status"] == 200:
                    headers["Cache-Control"] = "max-age=3600"
                headers["Server-Timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
            await send(message)

        await self.app(scope, receive, send_with_headers)
