"""Sync latency through the whole bridge path, with N agents and their headless consoles.

Everything is real and on loopback: the server (SQLite), the emulator, one Python console client
per agent (the bridge protocol over WebSocket on one side, the emulator's console WebSocket on
the other). Two directions are measured, in rounds in which every agent changes at once:

  contact center -> Salesforce   PUT /agents/{id}/state, until the echo of the SetPresence
                                 command is applied (the history entry's latency_ms: command
                                 decided -> toolkit ran it -> echo committed)
  Salesforce -> contact center   the emulator control API changes the Omni status, until the
                                 contact-center transition is committed (history `at` minus
                                 the moment the control call was made; same host clock)

It also counts commands: each contact-center change must send exactly one (no echo loops).

    python bench/bridge_latency.py --agents 50 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from presencesync_sandbox.demo import start_stack

CC_STATES = ("Away/Break", "Ready")  # -> On_Break, Available
SF_STATUSES = {"Lunch": "ExtendedAway/Lunch", "Training": "ExtendedAway/Training"}


def _quantiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return (
        f"n={len(values)} p50={statistics.median(values):.1f} ms p95={p95:.1f} ms "
        f"max={values[-1]:.1f} ms"
    )


def _wait(probe: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError("the agents did not converge")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="bridge-bench-")
    started = time.monotonic()
    stack = start_stack(
        database_url=f"sqlite:///{directory}/bench.db", agents=args.agents, consoles="headless"
    )
    print(f"{args.agents} agents with headless consoles up in {time.monotonic() - started:.1f} s")
    agents = stack.info["agents"]
    api = httpx.Client(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {stack.info['admin_token']}"},
        timeout=30,
        trust_env=False,
        limits=httpx.Limits(max_connections=32),
    )
    emulator = httpx.Client(base_url=stack.emulator_url, timeout=30, trust_env=False)
    pool = ThreadPoolExecutor(max_workers=16)

    def tokens(agent: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {agent['token']}"}

    def view(agent: dict[str, Any]) -> dict[str, Any]:
        return api.get(f"/api/v1/agents/{agent['agent_id']}", headers=tokens(agent)).json()

    def all_in(state: str, presence: str) -> bool:
        views = list(pool.map(view, agents))
        return all(v["state"] == state and v["presence_status"] == presence for v in views)

    try:
        list(
            pool.map(
                lambda a: api.post(
                    f"/api/v1/agents/{a['agent_id']}/login", headers=tokens(a)
                ).raise_for_status(),
                agents,
            )
        )
        _wait(lambda: all_in("Ready", "Available"))
        assert stack.consoles is not None
        commands_before = sum(c.stats.commands_received for c in stack.consoles.clients)
        cc_latency: list[float] = []
        sf_latency: list[float] = []
        cc_changes = 0
        for round_no in range(args.rounds):
            state = CC_STATES[round_no % 2]
            presence = "On_Break" if state == "Away/Break" else "Available"
            list(
                pool.map(
                    lambda a, s=state: api.put(
                        f"/api/v1/agents/{a['agent_id']}/state",
                        json={"state": s},
                        headers=tokens(a),
                    ).raise_for_status(),
                    agents,
                )
            )
            cc_changes += len(agents)
            _wait(lambda s=state, p=presence: all_in(s, p))
            for agent in agents:
                history = api.get(
                    f"/api/v1/agents/{agent['agent_id']}/history",
                    params={"limit": 5},
                    headers=tokens(agent),
                ).json()
                echo = next(h for h in history if h["side"] == "salesforce" and h["to"] == presence)
                cc_latency.append(float(echo["latency_ms"]))

            # After the contact-center round the status always differs from this one.
            status = ("Lunch", "Training")[round_no % 2]
            target = SF_STATUSES[status]
            sent_at: dict[str, float] = {}

            def change(
                agent: dict[str, Any], s: str = status, sent: dict[str, float] = sent_at
            ) -> None:
                sent[agent["agent_id"]] = time.time()
                emulator.put(
                    f"/emulator/v1/users/{agent['salesforce_user_id']}/omni/status",
                    json={"presence_status": s},
                ).raise_for_status()

            list(pool.map(change, agents))
            _wait(lambda t=target, s=status: all_in(t, s))
            for agent in agents:
                history = api.get(
                    f"/api/v1/agents/{agent['agent_id']}/history",
                    params={"limit": 5},
                    headers=tokens(agent),
                ).json()
                entry = next(h for h in history if h["side"] == "contact_center")
                if entry["to"] != target:
                    continue  # already there: no transition to time
                at = datetime.fromisoformat(entry["at"]).timestamp()
                sf_latency.append((at - sent_at[agent["agent_id"]]) * 1000.0)
        time.sleep(0.5)
        commands = sum(c.stats.commands_received for c in stack.consoles.clients)
        print(f"contact center -> Salesforce (command -> echo applied): {_quantiles(cc_latency)}")
        print(f"Salesforce -> contact center (widget -> state committed): {_quantiles(sf_latency)}")
        print(
            f"commands sent: {commands - commands_before} for {cc_changes} contact-center "
            f"changes and {len(sf_latency)} Salesforce-side changes (no loops: equal to the first)"
        )
    finally:
        pool.shutdown()
        api.close()
        emulator.close()
        stack.stop()


if __name__ == "__main__":
    main()
