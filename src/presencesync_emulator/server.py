"""`presencesync emulator`: serve the emulated org with uvicorn (HTTP or self-signed HTTPS), and
its Pub/Sub API (gRPC) on a port of its own, both in one event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import uvicorn

from presencesync_emulator.app import create_app
from presencesync_emulator.logredact import install_log_redaction
from presencesync_emulator.pubsub import server as pubsub_server
from presencesync_emulator.tls import ensure_certificate

DEFAULT_PUBSUB_PORT = pubsub_server.DEFAULT_PUBSUB_PORT


def serve(
    host: str,
    port: int,
    db: str,
    tls: bool,
    tls_dir: str,
    pubsub_port: int | None = DEFAULT_PUBSUB_PORT,
    jwt_audiences: Sequence[str] | None = None,
) -> None:
    """Run the emulator until interrupted (blocking). `pubsub_port` None: no Pub/Sub API.
    `jwt_audiences`: the JWT bearer `aud` values accepted (default https://login.salesforce.com)."""
    # Console URLs carry the bridge's token (?token=): uvicorn's access log must not.
    install_log_redaction()
    scheme = "https" if tls else "http"
    # No fixed base URL: instance_url and serverUrl follow the address each client used
    # (localhost, 127.0.0.1 or a LAN name with --host 0.0.0.0).
    app = create_app(db, jwt_audiences=jwt_audiences or None)
    options: dict[str, Any] = {}
    tls_files = None
    if tls:
        cert, key = ensure_certificate(tls_dir)
        options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        tls_files = (cert, key)
        print(f"emulator TLS certificate: {cert}")
    print(f"Salesforce org emulator on {scheme}://{host}:{port} (db {db})")
    print(f"JWT bearer audiences accepted: {', '.join(app.state.org.login_audiences)}")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        ws="websockets-sansio",
        timeout_graceful_shutdown=3,
        **options,
    )

    async def run() -> None:
        grpc_server = None
        if pubsub_port is not None:
            try:
                grpc_server = await pubsub_server.start(
                    app.state.org,
                    host=host,
                    port=pubsub_port,
                    instance_url_ok=pubsub_server.instance_url_on_port(port, tls),
                    tls_files=tls_files,
                )
            except (OSError, RuntimeError) as exc:
                # The HTTP side is the stable contract: it still starts when this port is taken.
                print(f"Pub/Sub API not started: {exc}")
            else:
                print(f"Pub/Sub API (gRPC{', TLS' if tls else ''}) on {host}:{grpc_server.port}")
        try:
            await uvicorn.Server(config).serve()
        finally:
            if grpc_server is not None:
                await grpc_server.stop(1.0)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        app.state.org.store.close()
