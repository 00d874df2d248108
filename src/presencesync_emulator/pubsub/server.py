"""The Pub/Sub API's gRPC server, on a port of its own beside the emulator's HTTP port.

Salesforce serves the Pub/Sub API at api.pubsub.salesforce.com:7443 (TLS). The emulator serves it
on `--pubsub-port` (default 8002), in plain text, or with TLS and the emulator's self-signed
certificate when the emulator runs with `--tls`. Start it inside the event loop that serves HTTP
(`await start(...)`), so both share the org's store without a second writer thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from presencesync_emulator.org import Org
from presencesync_emulator.pubsub.service import PubSubService, add_to_server

DEFAULT_PUBSUB_PORT = 8002


@dataclass
class RunningPubSub:
    server: grpc.aio.Server
    port: int
    target: str  # host:port for a client channel

    async def stop(self, grace: float = 0.5) -> None:
        await self.server.stop(grace)


def exact_instance_url(base_url: str) -> Callable[[str], bool]:
    """Accept the instance URL the token endpoint hands out for `base_url`."""
    expected = base_url.rstrip("/").lower()
    return lambda url: url.rstrip("/").lower() == expected


def instance_url_on_port(port: int, tls: bool) -> Callable[[str], bool]:
    """Accept any host name for the emulator's HTTP port (the CLI emulator has no fixed base URL:
    instance_url follows the address each client used)."""
    scheme = "https" if tls else "http"

    def ok(url: str) -> bool:
        try:
            parts = urlsplit(url)
            return parts.scheme == scheme and parts.port == port and not parts.path.strip("/")
        except ValueError:
            return False

    return ok


async def start(
    org: Org,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PUBSUB_PORT,
    instance_url_ok: Callable[[str], bool],
    tls_files: tuple[Path, Path] | None = None,
) -> RunningPubSub:
    """Serve the org's Pub/Sub API on host:port (0 = a free port). `tls_files` = (cert, key)."""
    if org.pubsub is None:
        raise RuntimeError("the org was created without change data capture")
    server = grpc.aio.server()
    add_to_server(
        server,
        PubSubService(org.store, org.pubsub, lambda: org.org_id, instance_url_ok),
    )
    address = f"{host}:{port}"
    if tls_files is not None:
        cert, key = (p.read_bytes() for p in tls_files)
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"cannot listen on {address} for the Pub/Sub API")
    await server.start()
    client_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if tls_files is not None and client_host == "127.0.0.1":
        client_host = "localhost"  # the name the self-signed certificate is issued to
    return RunningPubSub(server, bound, f"{client_host}:{bound}")
