"""Run a web app under uvicorn (`presencesync serve`: `presencesync.bootstrap.serve` builds the
engine and the app, then calls `run`)."""

from __future__ import annotations

from typing import Any

import uvicorn


def run(app: Any, host: str, port: int) -> None:
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        # A WebSocket message over the limit is refused by uvicorn before it is read whole
        # (close 1009); the app checks again for servers that do not.
        ws_max_size=app.state.limits.max_ws_message_bytes,
    )
