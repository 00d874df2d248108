"""`presencesync serve`: open the store (migrating it), build the app, run uvicorn."""

from __future__ import annotations

import os

import uvicorn

from presencesync.web.logging import configure_logging


def serve(host: str, port: int, database_url: str) -> None:
    from presencesync.service import open_engine
    from presencesync.web.app import create_app

    configure_logging(os.environ.get("PRESENCESYNC_LOG_LEVEL", "INFO"))
    engine = open_engine(database_url)
    try:
        app = create_app(engine)
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,
            proxy_headers=True,
            # A WebSocket message over the limit is refused by uvicorn before it is read
            # whole (close 1009); the app checks again for servers that do not.
            ws_max_size=app.state.limits.max_ws_message_bytes,
        )
    finally:
        engine.close()
