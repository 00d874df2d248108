"""The end-to-end bench's bookkeeping (bench/e2e_ledger.py): a wrong count here would make the
bench report a loop that is not there, or hide one that is."""

from __future__ import annotations

import math

from bench.e2e_ledger import CC_TO_SF, SF_TO_CC, Ledger, merge_reports, percentile, summarize


def test_a_contact_center_change_is_timed_to_its_command() -> None:
    ledger = Ledger(phase="steady")
    ledger.cc_change("a1", "On_Break", now=10.000)
    assert ledger.is_waiting("a1") and ledger.is_waiting("a1", CC_TO_SF)
    ledger.command("a1", "a1:7", "On_Break", now=10.012)
    assert not ledger.is_waiting("a1")
    (latency,) = ledger.latencies[("steady", CC_TO_SF)]
    assert math.isclose(latency, 12.0, abs_tol=1e-6)
    assert ledger.counts == {"steady:cc_changes": 1, "steady:commands": 1}


def test_a_command_nobody_asked_for_is_counted_as_unexpected() -> None:
    ledger = Ledger(phase="steady")
    ledger.sf_change("a1", "ExtendedAway/Lunch", now=1.0)  # must cause no command
    ledger.command("a1", "a1:8", "Lunch", now=1.01)  # a loop would look like this
    ledger.cc_change("a2", "Available", now=1.0)
    ledger.command("a2", "a2:3", "On_Break", now=1.01)  # not the status asked for
    assert ledger.counts["steady:unexpected_commands"] == 2
    assert ledger.is_waiting("a2", CC_TO_SF)  # still waiting for the right one


def test_a_redelivered_command_is_not_a_second_command() -> None:
    ledger = Ledger(phase="steady")
    ledger.cc_change("a1", None, now=0.0)  # a logout: omni_logout
    ledger.command("a1", "a1:9", None, now=0.005)
    ledger.command("a1", "a1:9", None, now=0.5)  # at-least-once delivery
    row = summarize(merge_reports([ledger.report()]), "steady", 1.0)
    assert row["commands"] == 1 and row["commands_per_cc_change"] == 1.0
    assert ledger.counts["duplicate_commands"] == 1


def test_a_salesforce_change_is_timed_to_the_pushed_state() -> None:
    ledger = Ledger(phase="burst")
    ledger.sf_change("a1", "Away/Break", now=5.0)
    ledger.pushed_state("a1", "Ready", now=5.001)  # an older view: not the one awaited
    assert ledger.is_waiting("a1", SF_TO_CC)
    ledger.pushed_state("a1", "Away/Break", now=5.030)
    assert not ledger.is_waiting("a1")
    assert math.isclose(ledger.latencies[("burst", SF_TO_CC)][0], 30.0, abs_tol=1e-6)


def test_refused_changes_and_lost_ones() -> None:
    ledger = Ledger(phase="steady")
    ledger.cc_change("a1", "Available", now=0.0)
    ledger.cancel("a1", CC_TO_SF)  # HTTP 409: nothing will arrive
    ledger.sf_change("a2", "Ready", now=0.0)
    assert ledger.expire(now=20.0, older_than=15.0) == 1
    row = summarize(merge_reports([ledger.report()]), "steady", 2.0)
    assert row["cc_changes"] == 0 and row["sf_changes"] == 1 and row["lost"] == 1


def test_a_command_counts_in_the_phase_of_its_change() -> None:
    ledger = Ledger(phase="steady")
    ledger.cc_change("a1", "Available", now=0.0)
    ledger.phase = "burst"
    ledger.command("a1", "a1:1", "Available", now=0.2)
    merged = merge_reports([ledger.report()])
    assert summarize(merged, "steady", 1.0)["commands_per_cc_change"] == 1.0
    assert math.isnan(summarize(merged, "burst", 1.0)["commands_per_cc_change"])


def test_reports_of_several_generators_merge_and_percentiles_use_nearest_rank() -> None:
    one, two = Ledger(phase="p"), Ledger(phase="p")
    for n, ledger in enumerate((one, two)):
        for i in range(50):
            agent = f"g{n}-{i}"
            ledger.cc_change(agent, "Available", now=0.0)
            ledger.command(agent, f"{agent}:1", "Available", now=(n * 50 + i + 1) / 1000)
    row = summarize(merge_reports([one.report(), two.report()]), "p", 1.0)
    assert row[CC_TO_SF]["n"] == 100
    assert math.isclose(row[CC_TO_SF]["p50"], 50.0)
    assert math.isclose(row[CC_TO_SF]["p99"], 99.0)
    assert math.isclose(row[CC_TO_SF]["max"], 100.0)
    assert math.isnan(percentile([], 50))


def test_a_command_after_the_timeout_is_late_not_a_loop() -> None:
    ledger = Ledger(phase="steady")
    ledger.cc_change("a1", "On_Break", now=0.0)
    assert ledger.expire(now=16.0, older_than=15.0) == 1
    ledger.phase = "tail"
    ledger.command("a1", "a1:4", "On_Break", now=17.0)
    row = summarize(merge_reports([ledger.report()]), "steady", 1.0)
    assert row["lost"] == 1 and row["late_commands"] == 1 and row["unexpected_commands"] == 0
    assert row["commands_per_cc_change"] == 1.0
    ledger.command("a1", "a1:5", "On_Break", now=18.0)  # a second one is a loop
    assert ledger.counts["tail:unexpected_commands"] == 1
