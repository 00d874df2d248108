"""`presencesync emulator`: serve the emulated org with uvicorn (HTTP or self-signed HTTPS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import uvicorn

from presencesync_emulator.app import create_app
from presencesync_emulator.tls import ensure_certificate


def serve(
    host: str,
    port: int,
    db: str,
    tls: bool,
    tls_dir: str,
    jwt_audiences: Sequence[str] | None = None,
) -> None:
    """Run the emulator until interrupted (blocking). `jwt_audiences`: the JWT bearer `aud`
    values accepted (default https://login.salesforce.com)."""
    scheme = "https" if tls else "http"
    # No fixed base URL: instance_url and serverUrl follow the address each client used
    # (localhost, 127.0.0.1 or a LAN name with --host 0.0.0.0).
    app = create_app(db, jwt_audiences=jwt_audiences or None)
    options: dict[str, Any] = {}
    if tls:
        cert, key = ensure_certificate(tls_dir)
        options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        print(f"emulator TLS certificate: {cert}")
    print(f"Salesforce org emulator on {scheme}://{host}:{port} (db {db})")
    print(f"JWT bearer audiences accepted: {', '.join(app.state.org.login_audiences)}")
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            ws="websockets-sansio",
            timeout_graceful_shutdown=3,
            **options,
        )
    finally:
        app.state.org.store.close()
