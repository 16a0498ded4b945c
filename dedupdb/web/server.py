"""Run the review application with uvicorn on a socket bound here (so ``--port 0`` can say
which port it got before serving)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DedupdbError
from ..store import Store
from .security import is_loopback

TOKEN_ENV = "DEDUPDB_TOKEN"


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    token: str | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        return f"http://{shown}:{self.port}/" + (f"?token={self.token}" if self.token else "")


def choose_token(host: str, token: str | None) -> str | None:
    """The access token: the one given (``--token`` or ``DEDUPDB_TOKEN``), else a new random one
    for any address but the loopback, else none."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < 16:
        raise DedupdbError(
            "the token is too short (fewer than 16 characters)",
            "use a long random one: python3 -c 'import secrets; print(secrets.token_urlsafe())'",
        )
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    return token


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DedupdbError(
            f"cannot listen on {host}:{port}: {err.strerror}",
            "choose another --port (0 picks a free one)",
        ) from err
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    store: Store,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    token: str | None = None,
    cache_dir: Path | None = None,
    on_ready: Callable[[Address], None] | None = None,
) -> None:
    """Serve until interrupted; ``on_ready`` gets the address once the socket listens."""
    import uvicorn

    from .app import create_app

    token = choose_token(host, token)
    sock = bind(host, port)
    address = Address(host, sock.getsockname()[1], token)
    app = create_app(store, token=token, cache_dir=cache_dir)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(address)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
