"""Our subscriber against the emulator's Pub/Sub API, end to end: the documented presence and
AgentWork events, replay presets, flow control, re-login, broken streams, restarts."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from presencesync.salesforce import SalesforcePubSubError
from presencesync.salesforce.pubsub import (
    ChangeEvent,
    PubSubSubscriber,
    ReconnectPolicy,
    StreamGap,
)
from presencesync.store import create_db_engine, tables, upgrade
from presencesync.store.replay import SqlReplayStore

from .kit import ALL_TOPIC, AW_TOPIC, USP_TOPIC, Emulator, collect, emulator, run

FAST = ReconnectPolicy(base_delay=0.05, max_delay=0.2)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with emulator() as running:
        yield running


@pytest.fixture
def replay_db() -> Iterator[tuple[sa.Engine, str]]:
    """A migrated SQLite store with one account (replay ids are kept per account)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'replay.db'}"
        upgrade(url)
        engine = create_db_engine(url)
        account = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(
                sa.insert(tables.accounts).values(
                    id=account,
                    name="acme",
                    omni_feature=True,
                    config_version=0,
                    created_at=sa.func.now(),
                )
            )
        yield engine, account
        engine.dispose()


def subscriber(
    emu: Emulator, sf: object, topic: str = USP_TOPIC, **options: object
) -> PubSubSubscriber:
    options.setdefault("reconnect", FAST)
    return PubSubSubscriber(sf, topic, target=emu.target, secure=False, **options)  # type: ignore[arg-type]


def test_presence_change_and_logout_become_the_documented_events(emu: Emulator) -> None:
    user = emu.agents[0]

    async def scenario() -> list[ChangeEvent]:
        async with emu.salesforce() as sf, subscriber(emu, sf) as sub:
            events = sub.events()
            pending = asyncio.ensure_future(collect(events, 4))
            await emu.wait_for(lambda s: len(s["streams"]) == 1)
            await emu.call(emu.login, user, "Available")
            await emu.call(emu.set_status, user, "Lunch")
            await emu.call(emu.logout, user)
            return await pending

    login, ended, started, logout = run(scenario())
    assert all(e.entity == "UserServicePresence" and e.topic == USP_TOPIC for e in (login, ended))
    assert login.change_type == "CREATE" and login.fields["IsCurrentState"] is True
    assert login.fields["UserId"] == user and login.changed_fields == ()
    # Status change: UPDATE of the current row (IsCurrentState false), then CREATE of the new.
    assert ended.change_type == "UPDATE" and ended.record_ids == login.record_ids
    assert set(ended.changed_fields) == {
        "IsCurrentState",
        "StatusEndDate",
        "StatusDuration",
        "LastModifiedDate",
    }
    assert ended.value("IsCurrentState") is False and "UserId" not in ended.fields
    assert started.change_type == "CREATE" and started.fields["IsCurrentState"] is True
    assert started.fields["IsAway"] is True  # Lunch has no channels
    assert (ended.transaction_key, ended.sequence_number) == (started.transaction_key, 1)
    assert started.sequence_number == 2
    # Logout: the update alone.
    assert logout.change_type == "UPDATE" and logout.record_ids == started.record_ids
    assert logout.value("IsCurrentState") is False
    assert logout.transaction_key != started.transaction_key
    assert logout.fields["StatusEndDate"] >= started.fields["StatusStartDate"]
    assert logout.commit_timestamp.tzinfo is not None and logout.commit_user == user


def test_agent_work_lifecycle(emu: Emulator) -> None:
    user = emu.agents[1]
    emu.login(user, "Available")

    async def scenario() -> list[ChangeEvent]:
        async with emu.salesforce() as sf, subscriber(emu, sf, AW_TOPIC) as sub:
            pending = asyncio.ensure_future(collect(sub.events(), 3))
            await emu.wait_for(lambda s: len(s["streams"]) == 1)
            work = await emu.call(emu.create_work, "Case", "Printer on fire")
            assert work["status"] == "Assigned" and work["user_id"] == user
            await emu.call(emu.work_action, work["id"], "accept")
            await emu.call(emu.work_action, work["id"], "close")
            return await pending

    assigned, opened, closed = run(scenario())
    assert assigned.entity == "AgentWork" and assigned.change_type == "CREATE"
    assert assigned.fields["Status"] == "Assigned" and assigned.fields["UserId"] == user
    assert assigned.fields["WorkItemId"].startswith("500")
    assert opened.change_type == "UPDATE" and opened.record_ids == assigned.record_ids
    assert set(opened.changed_fields) == {"Status", "AcceptDateTime", "LastModifiedDate"}
    assert opened.fields["Status"] == "Opened"
    assert closed.fields["Status"] == "Closed"
    assert {"Status", "CloseDateTime", "ActiveTime", "HandleTime"} <= set(closed.changed_fields)


def test_replay_presets(emu: Emulator) -> None:
    user = emu.agents[2]
    emu.login(user)
    emu.set_status(user, "Busy")  # 3 events already on the bus

    async def scenario() -> None:
        async with emu.salesforce() as sf:
            async with subscriber(emu, sf, start="EARLIEST") as sub:
                history = await collect(sub.events(), 3)
            assert [e.change_type for e in history] == ["CREATE", "UPDATE", "CREATE"]
            async with subscriber(emu, sf, start="LATEST") as latest:
                pending = asyncio.ensure_future(collect(latest.events(), 1))
                # The second stream: its start (the tip) is fixed once it is open.
                await emu.wait_for(lambda s: any(st["id"] == 2 for st in s["streams"]))
                await emu.call(emu.logout, user)
                (fresh,) = await pending
            assert fresh.change_type == "UPDATE" and fresh.replay_id not in {
                e.replay_id for e in history
            }

    run(scenario())


def test_custom_replay_resumes_after_the_stored_id_across_restarts(
    emu: Emulator, replay_db: tuple[sa.Engine, str]
) -> None:
    engine, account = replay_db
    store = SqlReplayStore(engine, account)
    user = emu.agents[0]
    emu.login(user)
    emu.set_status(user, "Busy")
    emu.set_status(user, "Available")  # 5 events

    async def scenario() -> None:
        async with emu.salesforce() as sf:
            async with subscriber(emu, sf, start="EARLIEST", replay_store=store) as first:
                seen = await collect(first.events(), 2)
                await first.confirm(seen[-1])
            assert await store.load(USP_TOPIC) == seen[-1].replay_id
            # "Restart": a new subscriber resumes after the confirmed event: no gap, no repeat.
            async with subscriber(emu, sf, start="EARLIEST", replay_store=store) as second:
                rest = await collect(second.events(), 3)
            assert [e.change_type for e in seen + rest] == [
                "CREATE",
                "UPDATE",
                "CREATE",
                "UPDATE",
                "CREATE",
            ]
            assert len({e.event_id for e in seen + rest}) == 5
            # Asking for the next event confirmed the previous one (the third of `rest`
            # was handed out but never confirmed, so a restart gets it again).
            assert await store.load(USP_TOPIC) == rest[1].replay_id

    run(scenario())


def test_flow_control_never_exceeds_the_batch(emu: Emulator) -> None:
    user = emu.agents[1]
    for status in ("Available", "Busy", "Available", "Busy", "Available", "Lunch"):
        emu.set_status(user, status)  # 11 events

    async def scenario() -> None:
        async with (
            emu.salesforce() as sf,
            subscriber(emu, sf, start="EARLIEST", batch_size=2) as sub,
        ):
            owed_seen = []

            async def slowly(_event: ChangeEvent) -> None:
                state = await emu.call(emu.pubsub)
                (stream,) = state["streams"]
                owed_seen.append(stream["pending"])
                await asyncio.sleep(0.01)

            events = await collect(sub.events(), 11, slowly)
            assert len({e.event_id for e in events}) == 11
            assert max(owed_seen) <= 2 and sub.stats.max_owed <= 2
            assert sub.stats.fetch_requests > 5  # topped up as it went, in small requests
            assert sub.stats.requested <= 11 + 2

    run(scenario())


def test_a_broken_stream_reconnects_without_gaps_or_duplicates(emu: Emulator) -> None:
    user = emu.agents[0]

    async def scenario() -> None:
        async with emu.salesforce() as sf, subscriber(emu, sf, ALL_TOPIC, batch_size=3) as sub:
            got: list[ChangeEvent] = []
            consumer = asyncio.ensure_future(collect(sub.events(), 8, _append(got)))
            await emu.wait_for(lambda s: len(s["streams"]) == 1)
            await emu.call(emu.login, user)
            await emu.call(emu.set_status, user, "Busy")
            await _until(lambda: len(got) >= 3)
            # Break the stream and refuse the next two attempts: backoff, then resume.
            await emu.call(emu.faults, abort_streams=True, refuse_next=2)
            await emu.call(emu.set_status, user, "Available")  # published while disconnected
            await emu.call(emu.set_status, user, "Lunch")
            await emu.call(emu.logout, user)
            events = await consumer
            assert [e.change_type for e in events] == ["CREATE"] + ["UPDATE", "CREATE"] * 3 + [
                "UPDATE"
            ]
            positions = [int.from_bytes(e.replay_id, "big") for e in events]
            assert positions == sorted(set(positions))  # in order, none twice
            assert len({e.event_id for e in events}) == 8
            assert sub.stats.reconnects >= 1
            state = await emu.call(emu.pubsub)
            assert state["subscriptions_refused"] == 2

    run(scenario())


def test_the_server_ending_an_idle_call_cleanly_reconnects() -> None:
    # Nothing owed and no FetchRequest for the idle timeout (a consumer that stopped reading):
    # the server ends the call with OK. That is a transient end like any other: reconnect and
    # resume after the last event handed out.
    with emulator(pubsub_idle_timeout_s=0.3) as emu:
        user = emu.agents[0]

        async def scenario() -> None:
            async with emu.salesforce() as sf, subscriber(emu, sf, batch_size=1) as sub:
                events = sub.events()
                first = asyncio.ensure_future(anext(events))
                await emu.wait_for(lambda s: len(s["streams"]) == 1)
                await emu.call(emu.login, user)
                assert (await first).change_type == "CREATE"
                # UPDATE (the old presence ends) and CREATE (the new one); with batch_size=1
                # the UPDATE waits in the buffer and nothing is owed: the stream goes idle.
                await emu.call(emu.set_status, user, "Busy")
                await _until(lambda: sub.stats.connects >= 2)
                assert sub.stats.last_error == "stream ended by the server"
                rest = [await anext(events), await anext(events)]  # from the new stream
                assert [e.change_type for e in rest] == ["UPDATE", "CREATE"]
                await events.aclose()

        run(scenario())


def test_an_expired_session_makes_it_log_in_again_and_continue(emu: Emulator) -> None:
    user = emu.agents[2]

    async def scenario() -> None:
        # A small batch, so that the subscriber asks for more after each event: the emulator
        # checks the session on every FetchRequest.
        async with emu.salesforce() as sf, subscriber(emu, sf, batch_size=2) as sub:
            got: list[ChangeEvent] = []
            consumer = asyncio.ensure_future(collect(sub.events(), 5, _append(got)))
            await emu.wait_for(lambda s: len(s["streams"]) == 1)
            await emu.call(emu.login, user)
            await _until(lambda: len(got) == 1)
            await emu.call(emu.expire_sessions)
            await emu.call(emu.set_status, user, "Busy")  # owed already: still delivered
            await _until(lambda: len(got) == 3)
            # The FetchRequest that followed was refused: it logs in again and resubscribes.
            await emu.call(emu.set_status, user, "Available")
            events = await consumer
            assert [e.change_type for e in events] == ["CREATE"] + ["UPDATE", "CREATE"] * 2
            assert len({e.event_id for e in events}) == 5
            assert sf.session.login_count >= 2 and sub.stats.connects >= 2

    run(scenario())


def test_rejected_credentials_and_unknown_topics_are_fatal(emu: Emulator) -> None:
    async def scenario() -> None:
        async with emu.salesforce() as sf:
            async with subscriber(emu, sf, "/data/AccountChangeEvent") as sub:
                with pytest.raises(SalesforcePubSubError) as caught:
                    await collect(sub.events(), 1)
                assert caught.value.status == "NOT_FOUND"
            sf.session.token = None
            async with subscriber(emu, sf, tenant_id="00D000000000000AAA") as wrong_org:
                with pytest.raises(SalesforcePubSubError) as caught:
                    await collect(wrong_org.events(), 1)
                assert caught.value.status == "UNAUTHENTICATED"
                assert caught.value.error_code.endswith("service.auth.error")

    run(scenario())


def test_a_replay_id_out_of_retention_is_reported_as_a_gap(
    emu: Emulator, replay_db: tuple[sa.Engine, str]
) -> None:
    engine, account = replay_db
    store = SqlReplayStore(engine, account)
    user = emu.agents[1]
    emu.login(user)

    async def scenario() -> None:
        await store.save(USP_TOPIC, (10**9).to_bytes(8, "big"))  # never issued: refused
        gaps: list[StreamGap] = []

        async def on_gap(gap: StreamGap) -> None:
            gaps.append(gap)

        async with (
            emu.salesforce() as sf,
            subscriber(emu, sf, replay_store=store, on_gap=on_gap) as sub,
        ):
            (event,) = await collect(sub.events(), 1)
        assert event.change_type == "CREATE"  # resubscribed at EARLIEST
        (gap,) = gaps
        assert gap.reason == "replay_id_rejected" and gap.error_code.endswith("replayid.corrupted")
        assert gap.replay_id == (10**9).to_bytes(8, "big")

    run(scenario())


def test_tls_like_a_real_org(tmp_path: Path) -> None:
    with emulator(tls=True, tls_dir=tmp_path) as emu:
        user = emu.agents[0]
        assert emu.target.startswith("localhost:")

        async def scenario() -> ChangeEvent:
            async with emu.salesforce() as sf:
                sub = PubSubSubscriber(
                    sf,
                    USP_TOPIC,
                    target=emu.target,
                    root_certificates=tmp_path / "cert.pem",
                    start="EARLIEST",
                    reconnect=FAST,
                )
                async with sub:
                    (event,) = await collect(sub.events(), 1)
                    return event

        emu.login(user)
        assert run(scenario()).change_type == "CREATE"


@pytest.mark.postgres
def test_replay_store_on_postgresql() -> None:
    url = os.environ.get("PRESENCESYNC_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("PRESENCESYNC_TEST_POSTGRES_URL is required in CI")
        pytest.skip("PRESENCESYNC_TEST_POSTGRES_URL not set")
    schema = f"pubsub_{uuid.uuid4().hex[:8]}"
    admin = create_db_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in url else "?"
        scoped = f"{url}{separator}options=-csearch_path%3D{schema}"
        upgrade(scoped)
        engine = create_db_engine(scoped)
        account = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(
                sa.insert(tables.accounts).values(
                    id=account,
                    name="acme",
                    omni_feature=True,
                    config_version=0,
                    created_at=sa.func.now(),
                )
            )
        store = SqlReplayStore(engine, account)
        assert run(store.load(USP_TOPIC)) is None
        run(store.save(USP_TOPIC, b"\x00\x01"))
        run(store.save(USP_TOPIC, b"\x00\x02"))
        run(store.save(AW_TOPIC, b"\x00\x03"))
        assert run(store.load(USP_TOPIC)) == b"\x00\x02"
        assert run(store.load(AW_TOPIC)) == b"\x00\x03"
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _append(into: list[ChangeEvent]):  # a callback for collect()
    async def append(event: ChangeEvent) -> None:
        into.append(event)

    return append


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.01)
