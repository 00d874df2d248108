"""`presencesync emulator`: serve the emulated org with uvicorn (HTTP or self-signed HTTPS)."""

from __future__ import annotations

import uvicorn

from presencesync.emulator.app import create_app
from presencesync.emulator.tls import ensure_certificate


def serve(host: str, port: int, db: str, tls: bool, tls_dir: str) -> None:
    """Run the emulator until interrupted (blocking)."""
    scheme = "https" if tls else "http"
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    base_url = f"{scheme}://{shown_host}:{port}" if port else None
    # With port 0 the real port is only known after binding: let requests tell the base URL.
    app = create_app(db, base_url=None if port == 0 else base_url)
    options: dict[str, object] = {}
    if tls:
        cert, key = ensure_certificate(tls_dir)
        options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
        print(f"emulator TLS certificate: {cert}")
    print(f"Salesforce org emulator on {scheme}://{host}:{port} (db {db})")
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            ws="websockets-sansio",
            timeout_graceful_shutdown=3,
            **options,
        )  # type: ignore[arg-type]
    finally:
        app.state.org.store.close()
