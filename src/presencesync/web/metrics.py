"""Prometheus metrics of one app: events applied, commands sent, sync latency, agents by state.

Each app has its own registry, so that several apps in one process (tests, benchmarks) do not
collide. Event and latency numbers come from the engine's after-commit callback; commands are
counted when the bridge has actually handed them to a console.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Round trips through a browser console: milliseconds to a few seconds.
# The *_created series double every counter's lines and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client left it unannotated

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "presencesync_events",
            "Events submitted to the engine, by outcome (applied, echo, stale, held, ...)",
            ["outcome"],
            registry=self.registry,
        )
        self.commands_sent = Counter(
            "presencesync_commands_sent",
            "Salesforce commands handed to an agent's console bridge, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.commands_not_delivered = Counter(
            "presencesync_commands_not_delivered",
            "Delivery attempts that found no console to take the command (retried later)",
            registry=self.registry,
        )
        self.sync_latency = Histogram(
            "presencesync_sync_latency_seconds",
            "Round trip of a change made by the sync: from the change that caused it to its "
            "confirmation on the other side",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.agents = Gauge(
            "presencesync_agents",
            "Agents by contact-center major state (agents seen since the server started)",
            ["state"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "presencesync_http_requests",
            "HTTP requests served, by method and status class",
            ["method", "status"],
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._agent_state: dict[tuple[str, str], str] = {}

    def observe_applied(self, account_id: str, agent_id: str, applied: Any) -> None:
        """The engine's after-commit callback (any thread)."""
        decision = applied.decision
        outcome = "duplicate" if applied.duplicate else str(decision.outcome)
        self.events.labels(outcome=outcome).inc()
        if applied.duplicate:
            return
        for transition in decision.transitions:
            if transition.latency_ms is not None:
                self.sync_latency.observe(transition.latency_ms / 1000.0)
        self.track_agent(account_id, agent_id, decision.agent.state.major.value)

    def track_agent(self, account_id: str, agent_id: str, major: str) -> None:
        with self._lock:
            self._set_state((account_id, agent_id), major)

    def seed_agent(self, account_id: str, agent_id: str, major: str) -> None:
        """Count an agent read from the store unless a commit has tracked it already (what a
        commit says is newer than what was read before it)."""
        with self._lock:
            if (account_id, agent_id) not in self._agent_state:
                self._set_state((account_id, agent_id), major)

    def _set_state(self, key: tuple[str, str], major: str) -> None:
        previous = self._agent_state.get(key)
        if previous == major:
            return
        if previous is not None:
            self.agents.labels(state=previous).dec()
        self.agents.labels(state=major).inc()
        self._agent_state[key] = major

    def command_delivered(self, payload: dict[str, Any], delivered: bool) -> None:
        if delivered:
            self.commands_sent.labels(kind=str(payload.get("kind", "unknown"))).inc()
        else:
            self.commands_not_delivered.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def seed_agent_gauge(engine: Any, metrics: Metrics, page: int = 500) -> int:
    """Count every stored agent by state once at start-up, so that the gauge covers agents
    that have not changed since; the engine's commits keep it current afterwards. (Commits of
    other processes sharing the store are not seen here.)"""
    import sqlalchemy as sa

    from presencesync.store import tables

    with engine.db.connect() as conn:
        account_ids = [row.id for row in conn.execute(sa.select(tables.accounts.c.id))]
    seen = 0
    for account_id in account_ids:
        after: str | None = None
        while True:
            records = engine.list_agents(account_id, limit=page, after=after)
            for record in records:
                metrics.seed_agent(account_id, record.agent_id, record.snapshot.state.major.value)
            seen += len(records)
            if len(records) < page:
                break
            after = records[-1].agent_id
    return seen
