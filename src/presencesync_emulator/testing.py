"""Run the emulator on a free loopback port in a background thread (for tests and demos).

    with running_emulator() as url:          # "http://127.0.0.1:54321"
        httpx.get(url + "/emulator/v1/users")

    with running_emulator(tls=True, tls_dir=tmp) as url:   # "https://localhost:54322"
        httpx.get(url + "/services/data/", verify=ssl_context(tmp))

`start_emulator()` returns a handle (url, app, cert_path, stop()) for longer-lived use.
`start_emulator(pubsub=True)` also serves the Pub/Sub API (gRPC) on a free port in the same
event loop: `handle.pubsub_target` ("127.0.0.1:PORT", or "localhost:PORT" with TLS).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from presencesync_emulator.app import create_app
from presencesync_emulator.pubsub import server as pubsub_server
from presencesync_emulator.tls import ensure_certificate


@dataclass
class RunningEmulator:
    url: str
    app: Starlette
    cert_path: Path | None
    _server: uvicorn.Server
    _thread: threading.Thread
    pubsub_target: str | None = None

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=2)
        if self._thread.is_alive():
            # An idle keep-alive TLS connection waits for the client's close_notify: don't.
            self._server.force_exit = True
            self._thread.join(timeout=10)
        self.app.state.org.store.close()

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl_context(self.cert_path) if self.cert_path else None


def ssl_context(cert_path: str | Path) -> ssl.SSLContext:
    """A client context that trusts the emulator's self-signed certificate."""
    path = Path(cert_path)
    if path.is_dir():
        path = path / "cert.pem"
    return ssl.create_default_context(cafile=str(path))


def start_emulator(
    db: str = ":memory:",
    *,
    tls: bool = False,
    tls_dir: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    pubsub: bool = False,
    pubsub_port: int = 0,
    **app_options: Any,
) -> RunningEmulator:
    """Start an emulator on host:port (default 127.0.0.1 and a free port) in a daemon thread;
    returns once it accepts connections. `app_options` go to create_app(). With `pubsub`, the
    Pub/Sub API is served too, on `pubsub_port` (default: a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it every keep-alive request after the first
    # waits ~40 ms on Nagle + delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    cert_path: Path | None = None
    key_path: Path | None = None
    options: dict[str, Any] = {}
    if tls:
        directory = Path(tls_dir) if tls_dir else Path(tempfile.mkdtemp(prefix="emulator-tls-"))
        cert_path, key_path = ensure_certificate(directory)
        options = {"ssl_certfile": str(cert_path), "ssl_keyfile": str(key_path)}
        url = f"https://localhost:{port}"
    else:
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    app = create_app(db, base_url=url, **app_options)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="websockets-sansio", **options
    )
    server = uvicorn.Server(config)
    grpc_targets: list[str] = []

    async def serve() -> None:
        grpc_server = None
        if pubsub:
            grpc_server = await pubsub_server.start(
                app.state.org,
                host=host,
                port=pubsub_port,
                instance_url_ok=pubsub_server.exact_instance_url(url),
                tls_files=(cert_path, key_path) if cert_path and key_path else None,
            )
            grpc_targets.append(grpc_server.target)
        try:
            await server.serve(sockets=[sock])
        finally:
            if grpc_server is not None:
                await grpc_server.stop(0.2)

    def run() -> None:
        asyncio.run(serve())

    thread = threading.Thread(target=run, name=f"emulator-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the emulator did not start")
        time.sleep(0.01)
    return RunningEmulator(
        url, app, cert_path, server, thread, grpc_targets[0] if grpc_targets else None
    )


@contextmanager
def running_emulator(
    db: str = ":memory:",
    *,
    tls: bool = False,
    tls_dir: str | Path | None = None,
    **options: Any,
) -> Iterator[str]:
    """The emulator's base URL while the block runs (see the module docstring); `options`
    are start_emulator()'s host/port and create_app()'s options."""
    handle = start_emulator(db, tls=tls, tls_dir=tls_dir, **options)
    try:
        yield handle.url
    finally:
        handle.stop()
