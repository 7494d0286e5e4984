"""The escalation rules, driven with an injected clock: which notifications are due and
which breaches are recorded, each exactly once.

Promises proved here: a clock notifies the first escalation step's targets at each of
the policy's thresholds (100 % at the breach, past the due instant, not at it); each
escalation step's targets are notified once its ``after`` of SLA time has run while
the incident is not fixed; paused time never counts; a stopped clock and a closed
incident notify nothing; a key already sent or freshly claimed is not sent again,
a pending one and a stale claim are; a breach is recorded once per incident and clock.

Entries are made here as the ledger would store them (the module under test is pure).
The clients' rules come from the demo contracts: riverton (institutional-sla, 24/7,
P1 response 20 minutes, thresholds 50/75/100 %) and alpenhof (stability-security,
business hours in Vienna, thresholds 50/100 %). Expected instants are computed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from support.service import EntryList, rules

from webmg_ops.config.contract import EscalationStep
from webmg_ops.ledger import Entry
from webmg_ops.ledger.canonical import canonical_json
from webmg_ops.service import incidents
from webmg_ops.service.escalation import (
    CLAIM_LEASE,
    CLOCK_BREACHED,
    NOTIFICATION_CLAIMED,
    NOTIFICATION_PENDING,
    NOTIFICATION_SENT,
    Notification,
    decide_tick,
    due_notifications,
    outcome_entry,
)
from webmg_ops.service.incidents import Incident, IncidentRules, find_incident

# A fixture of the service tests.
__all__ = ["rules"]

NEW_YORK = ZoneInfo("America/New_York")
VIENNA = ZoneInfo("Europe/Vienna")
# Monday 30 November 2026, 10:00 in New York: riverton's clocks run 24/7 anyway.
OPENED = datetime(2026, 11, 30, 10, 0, tzinfo=NEW_YORK)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
RIVERTON_THRESHOLDS = (50, 75, 100)
ALPENHOF_THRESHOLDS = (50, 100)

FIRST = "json://127.0.0.1:9/oncall"
SECOND = "mailto://127.0.0.1:9?to=security@riverton.example"
THIRD = "json://127.0.0.1:9/cio"


def step(after: str, *urls: str, name: str = "someone") -> EscalationStep:
    return EscalationStep(
        role="role", name=name, phone="+1 555 0100 900", after=after, notify=list(urls)
    )


# Riverton's path as written in its contract (15m, 30m, 1h), with one target each and
# two on the first step.
RIVERTON_STEPS = (
    step("15m", FIRST, "form://127.0.0.1:9/pager", name="on-call"),
    step("30m", SECOND, name="Dana Whitfield"),
    step("1h", THIRD, name="Marcus Reed"),
)


def open_incident(
    ledger: EntryList, rules: IncidentRules, at: datetime = OPENED, criticality: str = "critical"
) -> int:
    opened = ledger.add(
        incidents.decide_open(
            rules,
            title="portal down",
            impact="availability",
            criticality=criticality,
            host=None,
            reported_by=None,
            ticket=None,
            by="ana",
            now=at,
        )
    )
    return opened.seq


def keys_due(
    incident: Incident,
    rules: IncidentRules,
    at: datetime,
    steps: Sequence[EscalationStep] = RIVERTON_STEPS,
    thresholds: Sequence[int] = RIVERTON_THRESHOLDS,
) -> list[str]:
    return [n.key for n in due_notifications(incident, rules, steps, thresholds, at)]


def test_thresholds_notify_the_first_steps_targets_at_each_share(
    rules: Callable[[str], IncidentRules],
) -> None:
    """P1 response is 20 minutes: 50 % at 10 min, 75 % at 15 min, 100 % only after 20."""
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    incident = find_incident(ledger.entries, seq)
    only_response = [step("9w", FIRST)]  # a step far away: thresholds alone

    def due(minutes: float) -> list[str]:
        return keys_due(incident, riverton, OPENED + minutes * MINUTE, only_response)

    assert due(9.99) == []
    assert due(10) == [f"INC-{seq}/response/50%/step-1/1"]
    assert due(15) == [f"INC-{seq}/response/50%/step-1/1", f"INC-{seq}/response/75%/step-1/1"]
    # Exactly spent at 20 minutes is not a breach yet; a second later it is.
    assert due(20) == due(15)
    assert due(20 + 1 / 60)[-1] == f"INC-{seq}/response/100%/step-1/1"
    # The restore clock (4 h) reaches half-way at 2 h.
    assert f"INC-{seq}/restore/50%/step-1/1" in due(120)
    assert f"INC-{seq}/restore/50%/step-1/1" not in due(119)


def test_every_target_of_the_first_step_gets_its_own_key(
    rules: Callable[[str], IncidentRules],
) -> None:
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    due = due_notifications(
        find_incident(ledger.entries, seq),
        riverton,
        [RIVERTON_STEPS[0]],
        RIVERTON_THRESHOLDS,
        OPENED + 10 * MINUTE,
    )
    assert [(n.key, n.url) for n in due] == [
        (f"INC-{seq}/response/50%/step-1/1", FIRST),
        (f"INC-{seq}/response/50%/step-1/2", "form://127.0.0.1:9/pager"),
    ]
    assert due[0].title.startswith(f"[riverton] INC-{seq} P1: response clock reached 50%")


def test_each_step_is_notified_once_its_after_has_run(
    rules: Callable[[str], IncidentRules],
) -> None:
    """Steps at 15 min, 30 min and 1 h, each to its own targets; thresholds aside."""
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    incident = find_incident(ledger.entries, seq)

    def steps_due(minutes: int) -> list[str]:
        return [
            k for k in keys_due(incident, riverton, OPENED + minutes * MINUTE) if "/after/" in k
        ]

    assert steps_due(14) == []
    assert steps_due(15) == [f"INC-{seq}/after/step-1/1", f"INC-{seq}/after/step-1/2"]
    assert steps_due(30)[-1] == f"INC-{seq}/after/step-2/1"
    assert len(steps_due(59)) == 3
    assert steps_due(60)[-1] == f"INC-{seq}/after/step-3/1"
    second = next(
        n
        for n in due_notifications(
            incident, riverton, RIVERTON_STEPS, RIVERTON_THRESHOLDS, OPENED + 30 * MINUTE
        )
        if n.key.endswith("after/step-2/1")
    )
    assert (second.url, second.step, second.index) == (SECOND, 2, 1)
    assert "escalation step 2 (role, Dana Whitfield): not fixed after 30m" in second.body


def test_a_step_after_counts_business_time_on_a_business_hours_level(
    rules: Callable[[str], IncidentRules],
) -> None:
    """alpenhof's first step is after 1d: one business day of 9 hours (09:00-18:00 in
    Vienna). Opened Monday 09:00, it is due at 18:00 that day; opened Friday 14:00,
    four hours run on Friday and five on Monday: due Monday 14:00, not on the weekend."""
    alpenhof = rules("alpenhof")
    steps = [step("1d", FIRST)]
    ledger = EntryList()
    monday = open_incident(ledger, alpenhof, at=datetime(2026, 11, 30, 9, 0, tzinfo=VIENNA))
    friday = open_incident(ledger, alpenhof, at=datetime(2026, 12, 4, 14, 0, tzinfo=VIENNA))

    def stepped(seq: int, at: datetime) -> bool:
        incident = find_incident(ledger.entries, seq)
        return any(
            "/after/" in key for key in keys_due(incident, alpenhof, at, steps, ALPENHOF_THRESHOLDS)
        )

    assert not stepped(monday, datetime(2026, 11, 30, 17, 59, tzinfo=VIENNA))
    assert stepped(monday, datetime(2026, 11, 30, 18, 0, tzinfo=VIENNA))
    assert not stepped(friday, datetime(2026, 12, 6, 23, 0, tzinfo=VIENNA))  # Sunday night
    assert not stepped(friday, datetime(2026, 12, 7, 13, 59, tzinfo=VIENNA))
    assert stepped(friday, datetime(2026, 12, 7, 14, 0, tzinfo=VIENNA))


def test_paused_time_never_counts(rules: Callable[[str], IncidentRules]) -> None:
    """Waiting on the client from minute 5 to minute 125: at minute 124 only 5 minutes of
    SLA time ran (nothing due); 5 more after resuming reach 50 % of the response."""
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    ledger.add(
        incidents.decide_wait(
            find_incident(ledger.entries, seq),
            on="client",
            note="access",
            by=None,
            now=OPENED + 5 * MINUTE,
        )
    )
    paused = find_incident(ledger.entries, seq)
    assert keys_due(paused, riverton, OPENED + 124 * MINUTE) == []
    ledger.add(incidents.decide_resume(paused, note=None, by=None, now=OPENED + 125 * MINUTE))
    resumed = find_incident(ledger.entries, seq)
    assert keys_due(resumed, riverton, OPENED + 129 * MINUTE) == []
    assert keys_due(resumed, riverton, OPENED + 130 * MINUTE) == [
        f"INC-{seq}/response/50%/step-1/1",
        f"INC-{seq}/response/50%/step-1/2",
    ]


def test_a_stopped_clock_and_a_fixed_or_closed_incident_notify_nothing(
    rules: Callable[[str], IncidentRules],
) -> None:
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)

    def act(command: str, minutes: int) -> None:
        ledger.add(
            incidents.decide_step(
                riverton,
                find_incident(ledger.entries, seq),
                command,
                note="done",
                by=None,
                now=OPENED + minutes * MINUTE,
            )
        )

    act("ack", 5)  # the response clock stops at 5 minutes: met
    later = keys_due(find_incident(ledger.entries, seq), riverton, OPENED + 3 * HOUR)
    assert not any("/response/" in key for key in later)
    assert f"INC-{seq}/restore/50%/step-1/1" in later
    act("mitigate", 10)
    act("fix", 20)
    # Every clock stopped, and steps end with the fix.
    assert keys_due(find_incident(ledger.entries, seq), riverton, OPENED + 9 * HOUR) == []

    # Acknowledged at 12 minutes, past 50 % of its response, with no tick in between: a
    # stopped clock tells nobody of a share it passed while running.
    late = open_incident(ledger, riverton)
    ledger.add(
        incidents.decide_step(
            riverton,
            find_incident(ledger.entries, late),
            "ack",
            note=None,
            by=None,
            now=OPENED + 12 * MINUTE,
        )
    )
    after_ack = keys_due(find_incident(ledger.entries, late), riverton, OPENED + 13 * MINUTE)
    assert not any("/response/" in key for key in after_ack)


def history_at(ledger: EntryList) -> list[Entry]:
    return list(ledger.entries)


def tick_once(
    ledger: EntryList,
    rules: IncidentRules,
    now: datetime,
    wall: datetime,
    send: Callable[[Notification], str | None] = lambda _n: None,
    tick: str = "t1",
) -> tuple[list[str], list[str]]:
    """Run one tick's decision and its sends on the fake ledger; return the keys claimed
    and the breaches recorded (incident seq/clock)."""
    decision = decide_tick(
        history_at(ledger),
        rules,
        RIVERTON_STEPS,
        RIVERTON_THRESHOLDS,
        now=now,
        wall=wall,
        tick=tick,
    )
    breaches = []
    for entry in decision.entries:
        stored = ledger.add(entry, at=wall)
        if stored.kind == CLOCK_BREACHED:
            breaches.append(f"{stored.payload['incident']}/{stored.payload['clock']}")
    for notification in decision.claimed:
        ledger.add(outcome_entry(notification, rules.client, tick, send(notification)), at=wall)
    return [n.key for n in decision.claimed], breaches


def test_a_second_tick_sends_nothing_and_breaches_are_recorded_once(
    rules: Callable[[str], IncidentRules],
) -> None:
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    at = OPENED + 21 * MINUTE
    claimed, breaches = tick_once(ledger, riverton, at, at)
    assert f"INC-{seq}/response/100%/step-1/1" in claimed
    assert breaches == [f"{seq}/response"]
    kinds = [entry.kind for entry in ledger.entries]
    assert kinds.count(NOTIFICATION_CLAIMED) == kinds.count(NOTIFICATION_SENT) == len(claimed)
    again, breaches_again = tick_once(ledger, riverton, at + MINUTE, at + MINUTE)
    assert (again, breaches_again) == ([], [])


def test_a_pending_notification_is_sent_again_by_the_next_tick(
    rules: Callable[[str], IncidentRules],
) -> None:
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    at = OPENED + 10 * MINUTE
    key = f"INC-{seq}/response/50%/step-1/1"
    claimed, _ = tick_once(
        ledger, riverton, at, at, send=lambda n: "refused" if n.key == key else None
    )
    assert key in claimed
    pending = [e for e in ledger.entries if e.kind == NOTIFICATION_PENDING]
    assert [(e.payload["key"], e.payload["error"]) for e in pending] == [(key, "refused")]
    # The next tick retries that key alone (its message as first claimed), and records it sent.
    retried, _ = tick_once(ledger, riverton, at + MINUTE, at + MINUTE)
    assert retried == [key]
    assert ledger.entries[-1].kind == NOTIFICATION_SENT
    assert ledger.entries[-1].payload["key"] == key
    assert tick_once(ledger, riverton, at + 2 * MINUTE, at + 2 * MINUTE)[0] == []


def test_a_pending_notification_is_retried_even_once_the_incident_is_closed(
    rules: Callable[[str], IncidentRules],
) -> None:
    """Never lost: a failed breach notice still goes out after the incident moved on."""
    riverton = rules("riverton")
    ledger = EntryList()
    seq = open_incident(ledger, riverton)
    at = OPENED + 10 * MINUTE
    claimed, _ = tick_once(ledger, riverton, at, at, send=lambda _n: "down")
    for command in ("ack", "mitigate", "fix"):
        ledger.add(
            incidents.decide_step(
                riverton,
                find_incident(ledger.entries, seq),
                command,
                note="done",
                by=None,
                now=at + MINUTE,
            )
        )
    retried, _ = tick_once(ledger, riverton, at + HOUR, at + HOUR)
    assert sorted(retried) == sorted(claimed)


def test_a_fresh_claim_is_left_to_its_tick_and_a_stale_one_is_taken_over(
    rules: Callable[[str], IncidentRules],
) -> None:
    """Two ticks at once: the second sees the first's claims and sends nothing; a claim
    whose tick died (no outcome after the lease) is sent by a later tick."""
    riverton = rules("riverton")
    ledger = EntryList()
    open_incident(ledger, riverton)
    at = OPENED + 10 * MINUTE
    first = decide_tick(
        history_at(ledger), riverton, RIVERTON_STEPS, RIVERTON_THRESHOLDS, now=at, wall=at, tick="a"
    )
    assert first.claimed
    for entry in first.entries:
        ledger.add(entry, at=at)
    # Tick "a" has not recorded any outcome yet.
    second = decide_tick(
        history_at(ledger), riverton, RIVERTON_STEPS, RIVERTON_THRESHOLDS, now=at, wall=at, tick="b"
    )
    assert second.claimed == ()
    just_before = at + CLAIM_LEASE - timedelta(seconds=1)
    assert (
        decide_tick(
            history_at(ledger),
            riverton,
            RIVERTON_STEPS,
            RIVERTON_THRESHOLDS,
            now=at,
            wall=just_before,
            tick="c",
        ).claimed
        == ()
    )
    stale = decide_tick(
        history_at(ledger),
        riverton,
        RIVERTON_STEPS,
        RIVERTON_THRESHOLDS,
        now=at,
        wall=at + CLAIM_LEASE,
        tick="d",
    )
    assert [n.key for n in stale.claimed] == [n.key for n in first.claimed]


def test_claims_carry_the_masked_target_and_the_message(
    rules: Callable[[str], IncidentRules],
) -> None:
    riverton = rules("riverton")
    ledger = EntryList()
    open_incident(ledger, riverton)
    steps = [step("9w", "json://127.0.0.1:9/hook?token={vault:webmg_hook_token}")]
    at = OPENED + 10 * MINUTE
    decision = decide_tick(
        history_at(ledger), riverton, steps, RIVERTON_THRESHOLDS, now=at, wall=at, tick="t"
    )
    (claim,) = decision.entries
    payload: dict[str, Any] = dict(claim.payload)
    assert payload["target"] == "json://127.0.0.1:9/hook?token=********"
    assert "{vault:" not in canonical_json(payload)
    assert payload["title"].startswith("[riverton] INC-")
    assert (payload["step"], payload["index"], payload["tick"]) == (1, 1, "t")
