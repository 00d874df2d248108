"""Both systems as independent actors (DESIGN.md 4, "Pure core first").

A model Salesforce (Omni online/status/work items; runs the commands it receives exactly once
per command id; emits toolkit events with the real `reason` values and the command ids the
bridge acknowledges, numbered per console session) and the contact center (the core's
`decide` applied to the agent snapshot) exchange messages through a channel that loses,
duplicates and reorders them. Hypothesis interleaves agent actions on both sides with the
channel's misbehaviour; after every step no agent with open work or in Busy/Inbound is
routable (and an offer is accepted exactly when the agent is routable), and at teardown,
once both sides are quiet, the two systems agree and the core sent a bounded number of
commands (see test_properties for the exact convergence statement).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from presencesync.domain import OmniConfig, SyncSettings, is_routable
from presencesync.domain.states import BUSY_INBOUND
from tests.domain.strategies import configs, examples, settings_strategy
from tests.domain.support import Sim, perform
from tests.domain.test_properties import COMMANDS_PER_EXTERNAL_CHANGE

picks = st.integers(0, 50)


class BothSystems(RuleBasedStateMachine):
    sim: Sim | None = None

    @initialize(config=configs(), sync_settings=settings_strategy)
    def start(self, config: OmniConfig, sync_settings: SyncSettings) -> None:
        self.sim = Sim(config, sync_settings)

    def act(self, action: str, pick: int = 0) -> None:
        assert self.sim is not None
        perform(self.sim, action, pick)

    # --- the contact-center agent, the router, the wrap timer ------------------------------

    @rule(pick=picks)
    def cc_login(self, pick: int) -> None:
        self.act("cc_login", pick)

    @rule()
    def cc_logout(self) -> None:
        self.act("cc_logout")

    @rule(pick=picks)
    def cc_state(self, pick: int) -> None:
        self.act("cc_state", pick)

    @rule()
    def call_arrives(self) -> None:
        self.act("call")

    @rule()
    def call_offered(self) -> None:
        self.act("offer")

    @rule()
    def offer_answered(self) -> None:
        self.act("answer")

    @rule()
    def offer_declined(self) -> None:
        self.act("decline_offer")

    @rule()
    def hangup(self) -> None:
        self.act("hangup")

    @rule()
    def wrap_ends(self) -> None:
        self.act("wrap_end")

    # --- the agent (and supervisor) in Salesforce, and Omni's routing ----------------------

    @rule(pick=picks)
    def sf_status(self, pick: int) -> None:
        self.act("sf_status", pick)

    @rule(pick=picks)
    def sf_supervisor(self, pick: int) -> None:
        self.act("sf_supervisor", pick)

    @rule(pick=picks)
    def sf_login(self, pick: int) -> None:
        self.act("sf_login", pick)

    @rule()
    def sf_logout(self) -> None:
        self.act("sf_logout")

    # Omni-Channel logouts with a reason (rules 3.5a-c): a supervisor, a maintenance (and its
    # end), a second console of the same user (another browser, or another tab).

    @rule()
    def sf_supervisor_logout(self) -> None:
        self.act("sf_supervisor_logout")

    @rule()
    def sf_maintenance(self) -> None:
        self.act("sf_maintenance")

    @rule()
    def sf_maintenance_end(self) -> None:
        self.act("sf_maintenance_end")

    @rule()
    def sf_duplicate_login(self) -> None:
        self.act("sf_duplicate_login")

    @rule()
    def sf_duplicate_same_browser(self) -> None:
        self.act("sf_duplicate_same_browser")

    @rule(pick=picks)
    def work_assign(self, pick: int) -> None:
        self.act("work_assign", pick)

    @rule(pick=picks)
    def work_accept(self, pick: int) -> None:
        self.act("work_accept", pick)

    @rule(pick=picks)
    def work_decline(self, pick: int) -> None:
        self.act("work_decline", pick)

    @rule(pick=picks)
    def push_timeout(self, pick: int) -> None:
        self.act("push_timeout", pick)

    @rule(pick=picks)
    def work_close(self, pick: int) -> None:
        self.act("work_close", pick)

    # --- the console session -----------------------------------------------------------------

    @rule()
    def console_disconnects(self) -> None:
        self.act("disconnect")

    @rule()
    def grace_expires(self) -> None:
        self.act("grace_expire")

    @rule()
    def rest_reconcile(self) -> None:
        self.act("rest_reconcile")

    @rule()
    def console_reconnects(self) -> None:
        self.act("reconnect")

    @rule(pick=picks)
    def console_degraded(self, pick: int) -> None:
        self.act("console_degraded", pick)  # a connection error; recovery is a reconnect

    # --- the channel: deliver in any order, lose, duplicate ----------------------------------

    @precondition(lambda self: self.sim is not None and bool(self.sim.to_sf))
    @rule(pick=picks)
    def deliver_command(self, pick: int) -> None:
        self.act("deliver_sf", pick)

    @precondition(lambda self: self.sim is not None and bool(self.sim.to_cc))
    @rule(pick=picks)
    def deliver_event(self, pick: int) -> None:
        self.act("deliver_cc", pick)

    @precondition(lambda self: self.sim is not None and bool(self.sim.to_cc))
    @rule(pick=picks)
    def deliver_event_again(self, pick: int) -> None:
        self.act("dup_cc", pick)

    @precondition(lambda self: self.sim is not None and bool(self.sim.to_sf))
    @rule(pick=picks)
    def deliver_command_again(self, pick: int) -> None:
        self.act("dup_sf", pick)

    @precondition(lambda self: self.sim is not None and bool(self.sim.to_cc or self.sim.to_sf))
    @rule(pick=picks, to_sf=st.booleans())
    def lose_message(self, pick: int, to_sf: bool) -> None:
        self.act("drop_sf" if to_sf else "drop_cc", pick)

    # --- Change Data Capture: committed changes, in order per object, late, sometimes twice ---

    @precondition(lambda self: self.sim is not None and self.sim.cdc_pending())
    @rule(pick=picks)
    def change_event_arrives(self, pick: int) -> None:
        self.act("deliver_cdc", pick)

    @precondition(lambda self: self.sim is not None and self.sim.cdc)
    @rule(pick=picks)
    def change_event_again(self, pick: int) -> None:
        self.act("redeliver_cdc", pick)

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def no_double_routing(self) -> None:
        if self.sim is None:
            return
        agent = self.sim.agent
        if agent.work or agent.state == BUSY_INBOUND or agent.on_call:
            assert not is_routable(agent)

    @invariant()
    def commands_stay_bounded(self) -> None:
        if self.sim is None:
            return
        # Before quiescence a reconnect may still be owed, so allow one more round.
        assert self.sim.sf_commands <= COMMANDS_PER_EXTERNAL_CHANGE * (self.sim.external + 1)

    def teardown(self) -> None:
        if self.sim is None:
            return
        self.sim.quiesce()
        self.sim.check_converged()
        self.sim.check_bounded(COMMANDS_PER_EXTERNAL_CHANGE)


BothSystems.TestCase.settings = settings(
    max_examples=examples(200),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_both_systems = BothSystems.TestCase
