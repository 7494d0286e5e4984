"""The pure decisions of ``incident collect`` (:mod:`webmg_ops.service.evidence`): text from
a host becomes safe text (masked, no terminal control, bounded, the cut said), the hosts
to read follow the incident, and a closed incident takes no evidence."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webmg_ops.errors import BadInput
from webmg_ops.secrets import MASK, SecretSet
from webmg_ops.service import evidence
from webmg_ops.service.evidence import (
    HEAD,
    PROBES,
    TAIL,
    HostCollection,
    ProbeRun,
    clean,
    decide_evidence,
    hosts_to_collect,
    neutralise,
)
from webmg_ops.service.incidents import Incident

SECRET = "Canary-Db-Passw0rd-7731"
SECRETS = SecretSet.of([SECRET])
NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
DISK = next(probe for probe in PROBES if probe.name == "disk")


def incident(state: str = "triage", host: str | None = None) -> Incident:
    return Incident(
        seq=7,
        client="alpenhof",
        title="booking site slow",
        impact="availability",
        criticality="minor",
        severity="P3",
        host=host,
        reported_by=None,
        ticket=None,
        opened_at=NOW,
        state=state,
    )


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("\x1b[2Jcleared", "\ufffd[2Jcleared"),  # ESC: cursor, colours, clear screen
        ("\x9b31mred", "\ufffd31mred"),  # C1 CSI, one character
        ("title\x1b]0;owned\x07", "title\ufffd]0;owned\ufffd"),  # window title, BEL
        ("abc\u202edcba", "abc\ufffddcba"),  # right-to-left override
        ("zero\u200bwidth", "zero\ufffdwidth"),
        ("a\x00b\x7fc", "a\ufffdb\ufffdc"),
        ("one\r\ntwo\rthree", "one\ntwo\nthree"),  # a bare CR would overwrite the line
        ("kept\ttabs\nand lines", "kept\ttabs\nand lines"),
        ("Grüße aus 東京 ✓", "Grüße aus 東京 ✓"),
    ],
)
def test_control_and_format_characters_are_replaced(sent: str, shown: str) -> None:
    assert neutralise(sent) == shown


@given(st.binary(max_size=400))
def test_any_bytes_become_text_without_controls_or_the_secret(raw: bytes) -> None:
    text, _cut = clean(SECRET.encode() + raw + SECRET.encode(), SECRETS, 300)
    assert SECRET not in text
    assert len(text) <= 300
    assert all(
        char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")
        for char in text
    )


@pytest.mark.parametrize("keep", [HEAD, TAIL])
def test_a_secret_across_the_cut_is_masked_whole(keep: str) -> None:
    """Masked before the cut: no part of a secret is left at the edge that is kept."""
    limit = 100
    edge = "a" * (limit - 5)
    sent = edge + SECRET + edge if keep == HEAD else edge + SECRET + "b" * (limit - 5)
    text, was_cut = clean(sent.encode(), SECRETS, limit, keep)
    assert was_cut
    assert len(text) == limit
    assert SECRET[:5] not in text and SECRET[-5:] not in text
    assert MASK[:5] in text


def test_a_cut_keeps_whole_lines_from_the_end_asked() -> None:
    lines = [f"line {number:03d}" for number in range(100)]  # 8 characters and a line end
    sent = "\n".join(lines) + "\n"
    head, head_cut = clean(sent.encode(), SECRETS, 95, HEAD)
    tail, tail_cut = clean(sent.encode(), SECRETS, 95, TAIL)
    assert (head_cut, tail_cut) == (True, True)
    assert head == "".join(f"{line}\n" for line in lines[:10])
    assert tail == "".join(f"{line}\n" for line in lines[-10:])
    assert clean(sent.encode(), SECRETS, len(sent)) == (sent, False)


def test_hosts_follow_the_incident() -> None:
    inventory = ["web1", "db1"]
    assert hosts_to_collect(incident(), inventory) == ["db1", "web1"]
    assert hosts_to_collect(incident(host="web1"), inventory) == ["web1"]
    with pytest.raises(BadInput, match=r"INC-7 names host 'old1', which is no longer in alpenhof"):
        hosts_to_collect(incident(host="old1"), inventory)
    with pytest.raises(BadInput, match="inventory has no host"):
        hosts_to_collect(incident(), [])


def test_a_closed_incident_takes_no_evidence() -> None:
    collections = [HostCollection("web1", runs=(ProbeRun(DISK, 0, b"ok\n"),))]
    with pytest.raises(BadInput, match="INC-7 is closed"):
        decide_evidence(incident("closed"), collections, SECRETS, by=None, now=NOW)
    for state in ("triage", "mitigation", "fix", "resolved"):
        entry = decide_evidence(incident(state), collections, SECRETS, by="anna", now=NOW)
        assert (entry.kind, entry.client, entry.actor) == ("incident-evidence", "alpenhof", "anna")


def test_each_command_and_host_gets_its_state() -> None:
    collections = [
        HostCollection(
            "web1",
            runs=(
                ProbeRun(DISK, 0, b"ok\n"),
                ProbeRun(DISK, 3, b"", b"no such unit\n"),
                ProbeRun(DISK, None, b"so far\n", timed_out=True),
                ProbeRun(DISK, None, b"", lost=f"web1: session lost: {SECRET}"),
                ProbeRun(DISK, None, run=False),
            ),
        ),
        HostCollection("db1", runs=(ProbeRun(DISK, 0, b"ok\n"),)),
        HostCollection("old1", problem=evidence.UNREACHABLE, reason="old1 (10.0.0.9): refused"),
    ]
    entry = decide_evidence(incident(), collections, SECRETS, by=None, now=NOW)
    web1, db1, old1 = entry.payload["hosts"]
    assert [command["state"] for command in web1["commands"]] == [
        "ok",
        "failed",
        "timed-out",
        "lost",
        "not-run",
    ]
    assert [command["exit_status"] for command in web1["commands"]] == [0, 3, None, None, None]
    assert web1["commands"][3]["notes"] == [f"session lost: web1: session lost: {MASK}"]
    assert (web1["state"], web1["reason"]) == (
        "incomplete",
        "disk timed-out, disk lost, disk not-run",
    )
    assert (db1["state"], db1["reason"]) == ("collected", None)
    assert (old1["state"], old1["reason"], old1["commands"]) == (
        "unreachable",
        "old1 (10.0.0.9): refused",
        [],
    )
    assert entry.payload["complete"] is False
    assert entry.payload["summary"] == "1 of 3 host(s) collected; web1 incomplete, old1 unreachable"
