"""Local web server of the review page: the Starlette application of
:mod:`petseg.review.routes` served by uvicorn (security: :mod:`petseg.review.security`)."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from concurrent.futures import wait
from pathlib import Path
from typing import Any

from petseg.review.app import ReviewApp
from petseg.review.preview import PREVIEW_VOXELS
from petseg.review.routes import create_asgi_app
from petseg.review.security import is_loopback

__all__ = ["ReviewServer", "make_server", "serve"]

#: A connection that sends nothing (before its first request or between requests) is
#: closed after this many seconds.
IDLE_TIMEOUT_S = 5
PRELOAD_WAIT_S = 10.0
"""How long ``petseg review`` lets the first case be read before it opens the browser."""


def _http_protocol() -> type:
    """uvicorn's h11 protocol with JSON answers to malformed requests and an idle timeout
    from the moment a connection opens (uvicorn's starts after the first answer)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"error": f"malformed HTTP request: {msg}"}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event))
            self.transport.close()

    return Protocol


class ReviewServer:
    """The review served by uvicorn on a socket bound at construction (so ``port=0``
    is resolved at once); ``serve_forever`` blocks until ``shutdown``.

    Parameters
    ----------
    app : ReviewApp
        What is served (kept as the attribute ``app``).
    host : str
        Address to bind (127.0.0.1 by default in :func:`make_server`).
    port : int
        TCP port; 0 picks a free one.
    verbose : bool
        Log every request.
    """

    def __init__(self, app: ReviewApp, host: str, port: int, *, verbose: bool) -> None:
        import uvicorn

        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP: asyncio then sets TCP_NODELAY on each connection (with the
        # default proto 0 it does not, and every keep-alive answer waits ~40 ms for the
        # client's delayed ACK)
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(128)
        config = uvicorn.Config(
            create_asgi_app(app, loopback=is_loopback(host)),
            http=_http_protocol(),
            lifespan="off",
            log_config=None,
            log_level="info" if verbose else "warning",
            access_log=verbose,
            timeout_keep_alive=IDLE_TIMEOUT_S,
            timeout_graceful_shutdown=5,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._started = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (or Ctrl+C when run in the main thread)."""
        self._started.set()
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` (called from another thread) and wait for it."""
        self._server.should_exit = True
        if self._started.is_set():
            self._stopped.wait(timeout=30)

    def server_close(self) -> None:
        """Close the listening socket."""
        self.socket.close()


def make_server(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    verbose: bool = False,
    preview_voxels: int = PREVIEW_VOXELS,
) -> tuple[ReviewServer, str]:
    """Create (not start) the review server; return it and the URL to open.

    A non-loopback ``host`` requires a token; with ``token=None`` one is generated, and
    the URL names this machine (its host name for ``0.0.0.0`` / ``::``). ``port=0`` picks
    a free port. Studies with more than ``preview_voxels`` voxels are first shown reduced
    (:mod:`petseg.review.preview`).

    Parameters
    ----------
    root : str or Path
        Case output folder or cohort folder.
    host : str
        Address to bind; a non-loopback address needs a token.
    port : int
        TCP port; 0 picks a free one.
    token : str or None
        Access token required on ``/api/`` requests (generated for a non-loopback host).
    verbose : bool
        Log every request.
    preview_voxels : int
        Studies larger than this many voxels are first served reduced (0: never).

    Returns
    -------
    server : ReviewServer
    url : str
        The URL to open (with the token, if any).
    """
    if preview_voxels < 0:
        raise ValueError(f"preview_voxels must be 0 (no preview) or positive, got {preview_voxels}")
    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(24)
    app = ReviewApp(root, token=token, preview_voxels=preview_voxels)
    server = ReviewServer(app, host, port, verbose=verbose)
    return server, _url(host, server.server_address[1], token)


def _url(host: str, port: int, token: str | None) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    open_browser: bool = True,
    verbose: bool = False,
    preview_voxels: int = PREVIEW_VOXELS,
) -> None:
    """Run the review server until interrupted (the ``petseg review`` command).

    Parameters
    ----------
    root, host, port, token, verbose, preview_voxels : see :func:`make_server`
        The same options.
    open_browser : bool
        Open the page in the default browser once the first case is read.
    """
    server, url = make_server(
        root, host=host, port=port, token=token, verbose=verbose, preview_voxels=preview_voxels
    )
    port = server.server_address[1]
    local = _url("127.0.0.1", port, server.app.token)
    if not is_loopback(host):
        print(
            f"petseg review: WARNING: listening on {host}, reachable from other machines on "
            "the network; anyone with the URL (it holds the access token) can read and edit "
            "these studies",
            flush=True,
        )
    print(f"petseg review: serving {server.app.cohort.root} at {url}  (Ctrl+C stops)", flush=True)
    if url != local:
        print(f"petseg review: on this machine: {local}", flush=True)
    first = server.app.preload_first_case()
    if open_browser and first is not None:
        wait([first], timeout=PRELOAD_WAIT_S)  # the page opens on a case already read
    if open_browser:
        import webbrowser

        webbrowser.open(local)
    try:
        server.serve_forever()
    finally:
        server.server_close()
