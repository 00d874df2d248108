"""Run a web app under uvicorn (`presencesync serve`: `presencesync.bootstrap.serve` builds the
engine and the app, then calls `run`)."""

from __future__ import annotations

from typing import Any

import uvicorn


def run(app: Any, host: str, port: int) -> None:
    uvicorn.run(app, host=host, port=port, log_config=None, proxy_headers=True)
