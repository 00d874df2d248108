"""The engine: the service layer's single entry point (accounts, configuration, agents, events,
outbox, timers, router, reconciliation) over the store."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from presencesync.domain import (
    AgentSnapshot,
    DomainError,
    Event,
    InteractionOfferWithdrawn,
    InvalidConfig,
    OpenWork,
    PresenceStatus,
    SalesforceSnapshot,
    StateCatalog,
    SyncSettings,
    Transition,
    new_agent,
    validate_config,
)
from presencesync.domain.channels import Channel, Drift
from presencesync.domain.events import Cause, Side
from presencesync.service import outbox as outbox_ops
from presencesync.service import repository as repo
from presencesync.service.codec import InvalidEvent, event_from_json
from presencesync.service.errors import Conflict
from presencesync.service.model import (
    ROLES,
    Account,
    AgentRecord,
    Applied,
    CdcStatus,
    ConfigVersion,
    OutboxCommand,
    Principal,
    SalesforceConnection,
    SalesforceView,
    as_utc,
    utcnow,
)
from presencesync.service.notify import OutboxListener, notify_outbox
from presencesync.service.router import Router
from presencesync.service.transactions import Transactions
from presencesync.service.uow import Hook, Item, Result, apply_batch
from presencesync.service.writer import WriterPool
from presencesync.store import create_db_engine, is_postgres, upgrade
from presencesync.store import tables as t
from presencesync.store.secrets import SecretBox

log = logging.getLogger(__name__)

Subscriber = Callable[[str, str, Applied], None]
RETRIES = 6


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _text(value: object, field: str, *, max_len: int, code: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DomainError(code, f"{field} must be a non-empty string", {"field": field})
    if len(value) > max_len:
        raise DomainError(code, f"{field} is longer than {max_len} characters", {"field": field})
    return value


class _Undo(Exception):
    """Roll back a transaction whose only event was refused by its hook."""

    def __init__(self, error: DomainError) -> None:
        self.error = error


class Engine:
    def __init__(self, database_url: str, *, group_commit: bool = True) -> None:
        self.database_url = database_url
        self.db = create_db_engine(database_url)
        self.postgres = is_postgres(self.db)
        # The Salesforce credentials are stored encrypted (store/secrets.py says with what key).
        self.secrets = SecretBox.for_database(database_url)
        self._subscribers: list[Subscriber] = []
        self._wakers: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._contexts = repo.ContextCache()
        self._tx = Transactions(self.db)
        self._listener: OutboxListener | None = None
        self._writers: WriterPool | None = None
        if group_commit:
            # SQLite has one writer anyway; PostgreSQL row locks let a few run side by side.
            self._writers = WriterPool(self._process, 2 if self.postgres else 1)
        self.router = Router(self._tx, self._submit_hooked)

    def close(self) -> None:
        if self._writers is not None:
            self._writers.close()
            self._writers = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self.db.dispose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- transactions ------------------------------------------------------------------------

    def _write(self) -> AbstractContextManager[Connection]:
        """A connection for one write transaction (BEGIN IMMEDIATE on SQLite)."""
        return self._tx.write()

    def _read(self) -> AbstractContextManager[Connection]:
        return self._tx.read()

    # --- accounts and tokens -----------------------------------------------------------------

    def create_account(self, name: str, *, omni_feature: bool = True) -> str:
        name = _text(name, "name", max_len=200, code="INVALID_ACCOUNT")
        account_id = str(uuid.uuid4())
        with self._write() as conn, conn.begin():
            conn.execute(
                sa.insert(t.accounts).values(
                    id=account_id,
                    name=name,
                    omni_feature=bool(omni_feature),
                    config_version=0,
                    created_at=utcnow(),
                )
            )
        return account_id

    def get_account(self, account_id: str) -> Account:
        with self._read() as conn:
            return repo.require_account(conn, account_id)

    def set_omni_feature(self, account_id: str, enabled: bool) -> None:
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id)
            conn.execute(
                sa.update(t.accounts)
                .where(t.accounts.c.id == account_id)
                .values(omni_feature=bool(enabled))
            )
            repo.bump_config_version(conn, account_id)

    def create_token(
        self, account_id: str, role: str, agent_id: str | None = None, label: str = ""
    ) -> str:
        if role not in ROLES:
            raise DomainError("INVALID_ROLE", f"role must be one of {', '.join(ROLES)}")
        if role == "agent" and agent_id is None:
            raise DomainError("INVALID_ROLE", "an agent token needs the agent_id it acts for")
        token = "ps_" + secrets.token_urlsafe(32)
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id)
            if agent_id is not None:
                repo.get_agent_row(conn, account_id, agent_id)
            conn.execute(
                sa.insert(t.api_tokens).values(
                    token_hash=hash_token(token),
                    account_id=account_id,
                    role=role,
                    agent_id=agent_id,
                    label=label,
                    created_at=utcnow(),
                )
            )
        return token

    def resolve_token(self, token: str) -> Principal | None:
        if not isinstance(token, str) or not token:
            return None
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == hash_token(token))
            ).first()
        return None if row is None else Principal(row.account_id, row.role, row.agent_id)

    # --- account configuration ---------------------------------------------------------------

    def get_catalog(self, account_id: str) -> StateCatalog:
        with self._read() as conn:
            repo.require_account(conn, account_id)
            return repo.load_catalog(conn, account_id)

    def set_minor_states(
        self, account_id: str, raw: Mapping[str, list[str]], actor: str
    ) -> StateCatalog:
        if not isinstance(raw, Mapping):
            raise DomainError("INVALID_STATE", "minor_states must be an object of lists")
        catalog = StateCatalog.from_minor_states(raw)  # raises InvalidState with every problem
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id, lock=True)
            version = self._next_version(conn, t.state_catalogs, account_id)
            conn.execute(
                sa.insert(t.state_catalogs).values(
                    account_id=account_id,
                    version=version,
                    minor_states=catalog.to_api(),
                    saved_by=actor,
                    saved_at=utcnow(),
                )
            )
            repo.bump_config_version(conn, account_id)
        return catalog

    def get_settings(self, account_id: str) -> SyncSettings:
        with self._read() as conn:
            repo.require_account(conn, account_id)
            return repo.load_settings(conn, account_id)

    def save_settings(self, account_id: str, raw: Mapping[str, Any], actor: str) -> SyncSettings:
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id, lock=True)
            settings = SyncSettings.from_api(raw, repo.load_settings(conn, account_id))
            values = {"settings": settings.to_api(), "saved_by": actor, "saved_at": utcnow()}
            repo.upsert_account_row(conn, t.account_settings, account_id, values)
            repo.bump_config_version(conn, account_id)
        return settings

    def save_presence_statuses(
        self, account_id: str, statuses: list[PresenceStatus], actor: str
    ) -> None:
        values = {
            "statuses": [s.to_api() for s in statuses],
            "fetched_by": actor,
            "fetched_at": utcnow(),
        }
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id, lock=True)
            repo.upsert_account_row(conn, t.presence_statuses, account_id, values)

    def get_presence_statuses(self, account_id: str) -> list[PresenceStatus]:
        with self._read() as conn:
            repo.require_account(conn, account_id)
            return repo.load_presence_statuses(conn, account_id)

    def get_omni_config(self, account_id: str) -> ConfigVersion | None:
        with self._read() as conn:
            repo.require_account(conn, account_id)
            return repo.load_config_version(conn, account_id)

    def save_omni_config(
        self, account_id: str, raw: Mapping[str, Any], actor: str
    ) -> ConfigVersion:
        if not isinstance(raw, Mapping):
            raise DomainError("INVALID_CONFIG", "the configuration must be a JSON object")
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id, lock=True)
            result = validate_config(
                raw,
                repo.load_catalog(conn, account_id),
                repo.load_presence_statuses(conn, account_id),
            )
            if result.config is None:
                raise InvalidConfig(result.problems)
            version = self._next_version(conn, t.omni_config_versions, account_id)
            saved_at = utcnow()
            conn.execute(
                sa.insert(t.omni_config_versions).values(
                    account_id=account_id,
                    version=version,
                    config=repo.config_to_json(result.config),
                    warnings=[w.to_api() for w in result.warnings],
                    saved_by=actor,
                    saved_at=saved_at,
                )
            )
            repo.bump_config_version(conn, account_id)
        return ConfigVersion(version, result.config, result.warnings, actor, saved_at)

    @staticmethod
    def _next_version(conn: Connection, table: sa.Table, account_id: str) -> int:
        current = conn.execute(
            sa.select(sa.func.max(table.c.version)).where(table.c.account_id == account_id)
        ).scalar()
        return int(current or 0) + 1

    def set_salesforce_connection(self, account_id: str, conn_info: SalesforceConnection) -> None:
        values = {
            "login_url": conn_info.login_url,
            "client_id": conn_info.client_id,
            "username": conn_info.username,
            "client_secret": self.secrets.seal(conn_info.client_secret),
            "private_key_pem": self.secrets.seal(conn_info.private_key_pem),
            "verify": conn_info.verify,
            "audience": conn_info.audience,
            "pubsub_endpoint": conn_info.pubsub_endpoint,
            "updated_at": utcnow(),
        }
        with self._write() as conn, conn.begin():
            repo.require_account(conn, account_id, lock=True)
            repo.upsert_account_row(conn, t.salesforce_connections, account_id, values)

    def get_salesforce_connection(self, account_id: str) -> SalesforceConnection | None:
        with self._read() as conn:
            repo.require_account(conn, account_id)
            row = conn.execute(
                sa.select(t.salesforce_connections).where(
                    t.salesforce_connections.c.account_id == account_id
                )
            ).first()
        if row is None:
            return None
        return SalesforceConnection(
            row.login_url,
            row.client_id,
            row.username,
            self.secrets.open(row.client_secret),
            self.secrets.open(row.private_key_pem),
            row.verify,
            row.audience,
            row.pubsub_endpoint,
        )

    # --- agents --------------------------------------------------------------------------------

    def create_agent(
        self, account_id: str, agent_id: str, name: str, salesforce_user_id: str | None
    ) -> AgentRecord:
        agent_id = _text(agent_id, "agent_id", max_len=100, code="INVALID_AGENT")
        name = _text(name, "name", max_len=200, code="INVALID_AGENT")
        if salesforce_user_id is not None:
            salesforce_user_id = _text(
                salesforce_user_id, "salesforce_user_id", max_len=18, code="INVALID_AGENT"
            )
        snapshot = new_agent(agent_id)
        try:
            with self._write() as conn, conn.begin():
                repo.require_account(conn, account_id)
                exists = conn.execute(
                    sa.select(t.agents.c.agent_id).where(
                        t.agents.c.account_id == account_id, t.agents.c.agent_id == agent_id
                    )
                ).first()
                if exists is not None:
                    raise Conflict("AGENT_EXISTS", f"agent {agent_id!r} exists already")
                if salesforce_user_id is not None:
                    linked = conn.execute(
                        sa.select(t.agents.c.agent_id).where(
                            t.agents.c.account_id == account_id,
                            t.agents.c.salesforce_user_id == salesforce_user_id,
                        )
                    ).first()
                    if linked is not None:
                        raise Conflict(
                            "SALESFORCE_USER_LINKED",
                            f"Salesforce user {salesforce_user_id} is linked to agent "
                            f"{linked.agent_id!r} already",
                        )
                conn.execute(
                    sa.insert(t.agents).values(
                        account_id=account_id,
                        agent_id=agent_id,
                        name=name,
                        salesforce_user_id=salesforce_user_id,
                        snapshot=snapshot.to_json(),
                        version=0,
                        updated_at=utcnow(),
                        routable=False,
                        state_since=None,
                    )
                )
        except IntegrityError:  # a concurrent create of the same id won the race
            raise Conflict("AGENT_EXISTS", f"agent {agent_id!r} exists already") from None
        return AgentRecord(agent_id, name, salesforce_user_id, snapshot)

    def get_agent(self, account_id: str, agent_id: str) -> AgentRecord:
        with self._read() as conn:
            return repo.agent_record(repo.get_agent_row(conn, account_id, agent_id))

    def list_agents(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> list[AgentRecord]:
        query = (
            sa.select(t.agents)
            .where(t.agents.c.account_id == account_id)
            .order_by(t.agents.c.agent_id)
            .limit(max(1, min(int(limit), 1000)))
        )
        if after is not None:
            query = query.where(t.agents.c.agent_id > after)
        with self._read() as conn:
            repo.require_account(conn, account_id)
            return [repo.agent_record(row) for row in conn.execute(query)]

    def find_agent_by_salesforce_user(
        self, account_id: str, salesforce_user_id: str
    ) -> AgentRecord | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.agents).where(
                    t.agents.c.account_id == account_id,
                    t.agents.c.salesforce_user_id == salesforce_user_id,
                )
            ).first()
        return None if row is None else repo.agent_record(row)

    def history(
        self, account_id: str, agent_id: str, limit: int = 100, before: int | None = None
    ) -> list[Transition]:
        h = t.history
        query = (
            sa.select(h)
            .where(h.c.account_id == account_id, h.c.agent_id == agent_id)
            .order_by(h.c.seq.desc())
            .limit(max(1, min(int(limit), 1000)))
        )
        if before is not None:
            query = query.where(h.c.seq < int(before))
        with self._read() as conn:
            repo.get_agent_row(conn, account_id, agent_id)
            rows = conn.execute(query).all()
        return [
            Transition(
                seq=row.seq,
                at=as_utc(row.at),
                side=Side(row.side),
                from_=row.from_state,
                to=row.to_state,
                cause=Cause(row.cause),
                rule=row.rule,
                caused_by_seq=row.caused_by_seq,
                latency_ms=row.latency_ms,
                channel=None if row.channel is None else Channel(row.channel),
                drift=None if not row.drift else Drift(row.drift["code"], row.drift["message"]),
            )
            for row in rows
        ]

    # --- events --------------------------------------------------------------------------------

    def submit(
        self,
        account_id: str,
        agent_id: str,
        event: Event,
        *,
        source: str,
        source_id: str | None = None,
    ) -> Applied:
        """Apply one event durably; returns once its transaction has committed."""
        result = self._submit(Item(account_id, agent_id, _check_event(event), source, source_id))
        self._follow_up(account_id, agent_id, result)
        return result.applied

    def submit_json(
        self,
        account_id: str,
        agent_id: str,
        data: Mapping[str, Any],
        *,
        source: str,
        source_id: str | None = None,
    ) -> Applied:
        """`submit` for an event in its JSON form (see `codec`); malformed -> INVALID_EVENT."""
        return self.submit(
            account_id, agent_id, event_from_json(data), source=source, source_id=source_id
        )

    def _submit_hooked(self, account_id: str, agent_id: str, event: Event, hook: Hook) -> Result:
        return self._submit(Item(account_id, agent_id, event, "router", None, hook=hook))

    def _submit(self, item: Item) -> Result:
        _check_source(item.source, item.source_id)
        if self._writers is not None and not self._writers.owns_current_thread():
            self._writers.put(item)
        else:
            # No group commit, or a subscriber submitting from a writer thread (queueing
            # would make the writer wait for itself).
            self._process([item])
        return item.future.result()

    def _submit_many(self, items: list[Item]) -> list[Result | Exception]:
        """Submit independent events together (they share transactions); the outcome of each,
        in order. Routes queued calls afterwards where an agent became routable."""
        for item in items:
            _check_source(item.source, item.source_id)
        if self._writers is not None and not self._writers.owns_current_thread():
            for item in items:
                self._writers.put(item)
        elif items:
            self._process(items)
        outcomes: list[Result | Exception] = []
        for item in items:
            try:
                outcomes.append(item.future.result())
            except Exception as error:
                outcomes.append(error)
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Result):
                self._follow_up(item.account_id, item.agent_id, outcome)
        return outcomes

    def _follow_up(self, account_id: str, agent_id: str, result: Result) -> None:
        """After a commit: take a ringing call back from an agent who is no longer free, and
        route queued calls if an agent became free or a call went back to the queue."""
        try:
            if result.withdraw is not None:
                event = InteractionOfferWithdrawn(at=utcnow(), interaction_id=result.withdraw)
                self._submit(Item(account_id, agent_id, event, "router"))
            if result.needs_routing:
                self.router.drain(account_id)
        except Exception:
            log.exception("routing after an event of %s/%s failed", account_id, agent_id)

    def _process(self, items: list[Item]) -> None:
        """Apply `items` in one transaction, retrying on lock contention; a batch that fails
        as a whole is split, so that one bad event cannot sink the others."""
        attempt = 0
        while True:
            try:
                with self._write() as conn, conn.begin():
                    results = apply_batch(conn, items, self._contexts)
                    if items[0].hook is not None and isinstance(results[0], DomainError):
                        raise _Undo(results[0])
                    if self.postgres and any(
                        isinstance(r, Result) and r.has_salesforce_commands for r in results
                    ):
                        notify_outbox(conn)  # other processes' dispatchers (at commit)
                break
            except _Undo as undo:
                results = [undo.error]
                break
            except Exception as error:
                if len(items) > 1:
                    for item in items:
                        self._process([item])
                    return
                transient = isinstance(error, DBAPIError) and (
                    isinstance(error, IntegrityError) or _is_transient(error)
                )
                if transient and attempt < RETRIES:
                    attempt += 1
                    time.sleep(0.005 * 2**attempt)
                    continue
                log.exception("event could not be applied")
                items[0].future.set_exception(error)
                return
        self._after_commit(items, results)

    def _after_commit(self, items: list[Item], results: list[Result | DomainError]) -> None:
        wake = False
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Result) and not result.applied.duplicate:
                wake = wake or result.has_salesforce_commands
                for subscriber in list(self._subscribers):
                    try:
                        subscriber(item.account_id, item.agent_id, result.applied)
                    except Exception:
                        log.exception("subscriber failed")
        if wake:
            self.wake_dispatchers()
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Result):
                item.future.set_result(result)
            else:
                item.future.set_exception(result)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def event_count(self, account_id: str, agent_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(t.event_log)
        query = query.where(t.event_log.c.account_id == account_id)
        if agent_id is not None:
            query = query.where(t.event_log.c.agent_id == agent_id)
        with self._read() as conn:
            return int(conn.execute(query).scalar() or 0)

    # --- outbox --------------------------------------------------------------------------------

    def claim_commands(
        self,
        limit: int = 100,
        lease_seconds: float = 30.0,
        *,
        agents: Collection[tuple[str, str]] | None = None,
    ) -> list[OutboxCommand]:
        """Lease up to `limit` due commands. `agents`: only those of these (account_id,
        agent_id) pairs, e.g. the agents whose console is connected to this process (None: any
        agent's; empty: none, and the store is not touched)."""
        if agents is not None and not agents:
            return []
        with self._write() as conn, conn.begin():
            return outbox_ops.claim(conn, limit, lease_seconds, agents)

    def make_due(self, account_id: str, agent_id: str) -> int:
        """The agent's pending commands that are backing off are due now (its console just
        connected). Returns how many were."""
        with self._write() as conn, conn.begin():
            return outbox_ops.make_due(conn, account_id, agent_id)

    def complete_command(self, outbox_id: int) -> None:
        self.finish_commands([outbox_id], [])

    def supersede_command(self, outbox_id: int) -> None:
        self.finish_commands([], [outbox_id])

    def finish_commands(self, done: list[int], superseded: list[int]) -> None:
        """Mark many commands delivered / overtaken in one transaction."""
        if not done and not superseded:
            return
        with self._write() as conn, conn.begin():
            outbox_ops.finish(conn, done, "done")
            outbox_ops.finish(conn, superseded, "superseded")

    def retry_command(self, outbox_id: int, error: str) -> None:
        with self._write() as conn, conn.begin():
            outbox_ops.retry(conn, outbox_id, error)

    def command_is_current(self, command: OutboxCommand) -> bool:
        """Is the command still awaited by the agent's snapshot (not overtaken by events)?"""
        return command.id in self.current_command_ids([command])

    def current_command_ids(self, commands: list[OutboxCommand]) -> set[int]:
        with self._read() as conn:
            return outbox_ops.current(conn, commands)

    def add_waker(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Called (from any thread) after a commit that added outbox commands, in this process
        or (PostgreSQL, by LISTEN/NOTIFY) in any other."""
        with self._lock:
            self._wakers.append(wake)
            if self.postgres and self._listener is None:
                self._listener = OutboxListener(self.database_url, self.wake_dispatchers)

        def remove() -> None:
            with self._lock:
                if wake in self._wakers:
                    self._wakers.remove(wake)

        return remove

    def wake_dispatchers(self) -> None:
        for wake in list(self._wakers):
            try:
                wake()
            except Exception:
                log.exception("waking a dispatcher failed")

    # --- timers ----------------------------------------------------------------------------------

    def run_due_timers(self, now: datetime | None = None) -> int:
        """Submit every timer event that is due; returns how many were submitted."""
        moment = as_utc(now) or utcnow()
        with self._read() as conn:
            due = conn.execute(
                sa.select(t.timers)
                .where(t.timers.c.due_at <= moment)
                .order_by(t.timers.c.due_at, t.timers.c.id)
                .limit(500)
            ).all()
        # The timer row makes the firing idempotent: fired twice, applied once. Its id alone
        # is not enough: SQLite hands a deleted row's id to the next new row, which would then
        # pass for a duplicate and never fire; the creation time tells them apart. All due
        # timers go to the writers at once, so they share transactions.
        items = [
            Item(
                row.account_id,
                row.agent_id,
                event_from_json(row.event),
                "timer",
                f"timer:{row.id}:{as_utc(row.created_at).isoformat()}",
                timer_id=row.id,
            )
            for row in due
        ]
        fired = 0
        refused: list[int] = []
        for item, outcome in zip(items, self._submit_many(items), strict=True):
            if isinstance(outcome, DomainError):
                log.warning("timer %s refused (%s); dropping it", item.timer_id, outcome.code)
                refused.append(item.timer_id)  # type: ignore[arg-type]
            elif isinstance(outcome, Result):
                fired += 1
        if refused:
            with self._write() as conn, conn.begin():
                conn.execute(sa.delete(t.timers).where(t.timers.c.id.in_(refused)))
        return fired

    def pending_timers(self, account_id: str, agent_id: str) -> list[tuple[str, datetime]]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.timers.c.key, t.timers.c.due_at).where(
                    t.timers.c.account_id == account_id, t.timers.c.agent_id == agent_id
                )
            ).all()
        return [(row.key, as_utc(row.due_at)) for row in rows]

    # --- Change Data Capture (service/cdc.py runs the subscriptions) ----------------------------

    def submit_many(
        self, events: Sequence[tuple[str, str, Event, str, str | None]]
    ) -> list[Applied | Exception]:
        """`submit` for many independent events at once, (account_id, agent_id, event, source,
        source_id) each: they share transactions (group commit) and each agent's keep their
        order. The outcome of each, in order: its Applied, or the error that refused it."""
        items = [
            Item(account_id, agent_id, _check_event(event), source, source_id)
            for account_id, agent_id, event, source, source_id in events
        ]
        return [
            outcome.applied if isinstance(outcome, Result) else outcome
            for outcome in self._submit_many(items)
        ]

    def change_data_capture_accounts(self) -> list[str]:
        """Accounts with the Omni-Channel feature and the `change_data_capture` setting on."""
        a, st = t.accounts, t.account_settings
        with self._read() as conn:
            rows = conn.execute(
                sa.select(a.c.id, st.c.settings)
                .join(st, st.c.account_id == a.c.id)
                .where(a.c.omni_feature.is_(True))
                .order_by(a.c.id)
            ).all()
        return [row.id for row in rows if (row.settings or {}).get("change_data_capture") is True]

    def linked_users(self, account_id: str) -> dict[str, str]:
        """Salesforce user id -> agent id, for every agent of the account linked to a user."""
        a = t.agents
        with self._read() as conn:
            repo.require_account(conn, account_id)
            rows = conn.execute(
                sa.select(a.c.agent_id, a.c.salesforce_user_id).where(
                    a.c.account_id == account_id, a.c.salesforce_user_id.is_not(None)
                )
            ).all()
        return {row.salesforce_user_id: row.agent_id for row in rows}

    def consoles_connected(self, account_id: str, agent_ids: Collection[str]) -> set[str]:
        """Those of `agent_ids` whose console is connected (as their snapshots say)."""
        a = t.agents
        wanted = sorted(set(agent_ids))
        found: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                rows = conn.execute(
                    sa.select(a.c.agent_id, a.c.snapshot).where(
                        a.c.account_id == account_id,
                        a.c.agent_id.in_(wanted[start : start + 500]),
                    )
                )
                found.update(r.agent_id for r in rows if r.snapshot.get("console_connected"))
        return found

    def save_cdc_status(self, status: CdcStatus) -> None:
        values = {
            "holder": status.holder,
            "state": status.state,
            "detail": status.detail,
            "events": status.events,
            "last_event_at": status.last_event_at,
            "started_at": status.started_at,
            "updated_at": status.updated_at,
        }
        with self._write() as conn, conn.begin():
            repo.require_account(conn, status.account_id)
            repo.upsert_account_row(conn, t.cdc_subscriptions, status.account_id, values)

    def get_cdc_status(self, account_id: str) -> CdcStatus | None:
        c = t.cdc_subscriptions
        with self._read() as conn:
            row = conn.execute(sa.select(c).where(c.c.account_id == account_id)).first()
        if row is None:
            return None
        return CdcStatus(
            row.account_id,
            row.holder,
            row.state,
            row.detail,
            int(row.events),
            as_utc(row.last_event_at),
            as_utc(row.started_at),
            as_utc(row.updated_at),
        )

    # --- reconciliation --------------------------------------------------------------------------

    def reconcile(self, account_id: str, views: list[SalesforceView]) -> list[Applied]:
        """Given Salesforce's view of the account's users, submit a SalesforceSnapshot for each
        linked agent whose snapshot disagrees; the pure core decides the corrections."""
        self.get_account(account_id)
        by_user = {view.salesforce_user_id: view for view in views}
        a = t.agents
        linked: list[tuple[str, AgentSnapshot]] = []
        users = sorted(by_user)
        with self._read() as conn:
            for start in range(0, len(users), 500):
                rows = conn.execute(
                    sa.select(a.c.agent_id, a.c.salesforce_user_id, a.c.snapshot).where(
                        a.c.account_id == account_id,
                        a.c.salesforce_user_id.in_(users[start : start + 500]),
                    )
                )
                linked.extend(
                    (row.salesforce_user_id, AgentSnapshot.from_json(row.snapshot)) for row in rows
                )
        items: list[Item] = []
        for user, snap in linked:
            view = by_user[user]
            same_work = {(w.work_id, w.accepted) for w in snap.work} == {
                (w.work_id, w.accepted) for w in view.open_work
            }
            if snap.presence == view.presence_status and same_work:
                continue
            event = SalesforceSnapshot(
                at=utcnow(),
                presence_status=view.presence_status,
                open_work=tuple(OpenWork(w.work_id, w.accepted, w.channel) for w in view.open_work),
                cause=Cause.RECONCILE,
            )
            items.append(Item(account_id, snap.agent_id, event, "reconcile"))
        applied: list[Applied] = []
        for item, outcome in zip(items, self._submit_many(items), strict=True):
            if isinstance(outcome, Result):
                applied.append(outcome.applied)
            else:
                log.warning("reconciling %s failed: %r", item.agent_id, outcome)
        return applied


def _check_event(event: object) -> Event:
    if not isinstance(event, Event) or type(event) is Event:
        raise InvalidEvent(f"not an event: {type(event).__name__}")
    return event


def _check_source(source: object, source_id: object) -> None:
    if not isinstance(source, str) or not source or len(source) > 50:
        raise InvalidEvent("source must be a non-empty string of at most 50 characters")
    if source_id is not None and (not isinstance(source_id, str) or len(source_id) > 200):
        raise InvalidEvent("source_id must be a string of at most 200 characters, or null")


def _is_transient(error: DBAPIError) -> bool:
    """Lock contention worth retrying: SQLite busy, PostgreSQL deadlock/serialization."""
    text = str(error.orig).lower()
    code = getattr(error.orig, "sqlstate", None)
    return code in ("40P01", "40001", "55P03") or "locked" in text or "busy" in text


def open_engine(database_url: str, *, group_commit: bool = True) -> Engine:
    """Migrate the store to the newest schema and start an engine on it."""
    engine = Engine(database_url, group_commit=group_commit)
    try:
        upgrade(database_url, engine.db)  # the engine's own pool: `sqlite://` is one connection
    except BaseException:
        engine.close()
        raise
    return engine
