"""Client run logs: rendered from ledger entries, readable, escaped, private, provable."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from support.run_entries import (
    ACTOR,
    FINISHED_AT,
    REASON,
    RUN_ID,
    SCRIPT_MESSAGE,
    STARTED_AT,
    finished_entry,
    make_entry,
    refused_entry,
    started_entry,
)

from webmg_ops.config.clients import load_client
from webmg_ops.config.contract import Contract
from webmg_ops.errors import BadInput
from webmg_ops.reports import RunLogFiles, render_refusal_log, render_run_log, run_log_dir
from webmg_ops.runs.records import (
    RUN_FINISHED,
    RUN_REFUSED,
    RUN_STARTED,
    Outcome,
    Refusal,
    RunFinished,
    RunRefused,
    to_payload,
)
from webmg_ops.secrets import MASK, SecretSet

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_client(INVENTORIES, "alpenhof").contract


def read(files: RunLogFiles) -> tuple[str, str]:
    return files.markdown.read_text(), files.html.read_text()


def test_run_log_tells_the_whole_story(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    finished = finished_entry(started)
    files = render_run_log(started, finished, contract, tmp_path)

    assert files == RunLogFiles(
        markdown=tmp_path / "runs" / RUN_ID / "run-log.md",
        html=tmp_path / "runs" / RUN_ID / "run-log.html",
    )
    for text in read(files):
        for expected in (
            "Hotel Alpenhof",
            "Software updates",
            "alpenhof-web",
            "alpenhof-db",
            "Failed",
            REASON,
            ACTOR,
            "OPS-1234",
            # 21:15 UTC is 23:15 in Vienna (summer time).
            "Tuesday 5 May 2026, 23:15 CEST",
            "Europe/Vienna",
            "12 min 30 s",
            "Restart nginx",
            "OpenSSL on the database server is still vulnerable",
            "the upgrade failed and was rolled back",
            "Retry the database server update on Thursday night",
            "openssl 3.0.15",
            f"{started.seq}:{started.hash}",
            f"{finished.seq}:{finished.hash}",
            f"webmg-ops ledger verify --checkpoint {finished.seq}:{finished.hash}",
        ):
            assert expected in text, expected
        assert "Emergency change" not in text
        assert "Dry run" not in text
        # Plain words come before the technical details and the proof.
        assert text.index("alpenhof-db") < text.index("3c743ae") < text.index(finished.hash)


def test_failed_task_message_is_shown_and_escaped(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    markdown, html = read(render_run_log(started, finished_entry(started), contract, tmp_path))
    assert SCRIPT_MESSAGE in markdown, "kept verbatim inside a code block"
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co" in html


def test_recorded_text_cannot_inject_markdown(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    record = to_payload(
        RunFinished(
            run_id=RUN_ID,
            action="update",
            check=False,
            outcome=Outcome.SUCCEEDED,
            started_seq=started.seq,
            duration_s=1,
            hosts=(),
            next_steps=("see [this](http://evil.example) <img src=x>\n# Heading",),
        )
    )
    finished = make_entry(42, RUN_FINISHED, record, FINISHED_AT, prev_hash=started.hash)
    markdown, _ = read(render_run_log(started, finished, contract, tmp_path))
    assert r"see \[this\](http://evil.example) \<img src=x\> \# Heading" in markdown
    assert "\n# Heading" not in markdown


def test_files_and_folder_are_private(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    folder = run_log_dir(tmp_path, RUN_ID)
    folder.mkdir(parents=True, mode=0o755)
    folder.chmod(0o755)
    files = render_run_log(started, finished_entry(started), contract, tmp_path)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(files.markdown.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.html.stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "checkpoint.txt").stat().st_mode) == 0o600
    assert sorted(path.name for path in folder.iterdir()) == [
        "checkpoint.txt",
        "run-log.html",
        "run-log.md",
    ]


def test_rendering_again_gives_the_same_files(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    finished = finished_entry(started)
    first = read(render_run_log(started, finished, contract, tmp_path))
    assert read(render_run_log(started, finished, contract, tmp_path)) == first


def test_html_is_a_standalone_page_with_an_outcome_badge(
    tmp_path: Path, contract: Contract
) -> None:
    started = started_entry()
    _, html = read(render_run_log(started, finished_entry(started), contract, tmp_path))
    assert html.startswith("<!DOCTYPE html>")
    assert "<style>" in html
    assert '<span class="badge badge-failed">Failed</span>' in html
    assert "<table>" in html
    for external in ("<link", "<script", "src=", "http://", "https://"):
        assert external not in html, external


def test_emergency_run_is_flagged(tmp_path: Path, contract: Contract) -> None:
    # A record written before the gates passed were kept reads as the window's.
    started = started_entry(emergency=True)
    for text in read(render_run_log(started, finished_entry(started), contract, tmp_path)):
        assert "Emergency change outside the maintenance window." in text
        assert f"Reason: {REASON}" in text


def test_an_emergency_names_the_gates_it_went_past(tmp_path: Path, contract: Contract) -> None:
    started = started_entry(emergency=True, overridden="freeze summer, diagnostic first")
    for text in read(render_run_log(started, finished_entry(started), contract, tmp_path)):
        assert "Emergency change past: freeze summer, diagnostic first." in text
        assert "outside the maintenance window" not in text
        assert f"Reason: {REASON}" in text


def test_dry_run_is_flagged(tmp_path: Path, contract: Contract) -> None:
    started = started_entry(check=True)
    finished = finished_entry(started, outcome=Outcome.SUCCEEDED, check=True)
    for text in read(render_run_log(started, finished, contract, tmp_path)):
        assert "Dry run: nothing was changed." in text
        assert "What would change" in text
        assert "Checked, changes would be made" in text


def test_run_in_progress(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    for text in read(render_run_log(started, None, contract, tmp_path)):
        assert "In progress" in text
        assert "not finished yet" in text
        assert "alpenhof-web" in text
        assert "alpenhof-db" in text
        assert f"{started.seq}:{started.hash}" in text
        assert "run-finished" not in text
    _, html = read(render_run_log(started, None, contract, tmp_path))
    assert "badge-in-progress" in html


CHECK_EVIDENCE: dict[str, Any] = {
    "hosts": {
        "alpenhof-web": {
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0-26-amd64",
            "uptime_s": 3 * 86400 + 7200,
            "pending_updates": {
                "security": 2,
                "other": 1,
                "security_packages": ["openssl", "libssl3"],
                "other_packages": [{"name": "tzdata", "version": "2024b-0+deb12u1"}],
            },
            "reboot_required": False,
            "disks": [
                {
                    "mount": "/",
                    "used_percent": 93.4,
                    "size_bytes": 20_000_000_000,
                    "available_bytes": 1_300_000_000,
                },
                {"mount": "/var/lib/postgresql", "used_percent": 41},
            ],
            "listening_ports": [
                {"port": 22, "protocol": "tcp", "address": "0.0.0.0", "process": "sshd"},
                {"port": 8080, "protocol": "tcp", "address": "0.0.0.0", "process": "webmg-demo"},
            ],
            "time_sync": {"synchronized": True, "service": "systemd-timesyncd"},
        },
        # A host whose facts were only partly gathered.
        "alpenhof-db": {"os": "Debian GNU/Linux 12 (bookworm)", "time_sync": False},
    },
    "checked_with": "playbooks/check.yml",
}


def test_check_evidence_partial(tmp_path: Path, contract: Contract) -> None:
    started = started_entry(action="check")
    finished = finished_entry(started, outcome=Outcome.SUCCEEDED, evidence=CHECK_EVIDENCE)
    for text in read(render_run_log(started, finished, contract, tmp_path)):
        for expected in (
            "Health check",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-26-amd64",
            "3 d 2 h",
            "2 security, 1 other",
            "openssl, libssl3",
            "tzdata 2024b-0+deb12u1",
            "93.4 %",
            "nearly full",
            "/var/lib/postgresql",
            "22/tcp on 0.0.0.0 (sshd)",
            "8080/tcp",
            "systemd-timesyncd",
            "security updates are waiting to be installed",
            "the clock is not synchronised",
            "not recorded",
            "playbooks/check.yml",
        ):
            assert expected in text, expected
    markdown, _ = read(render_run_log(started, finished, contract, tmp_path))
    partly_gathered = markdown[
        markdown.index("### alpenhof-db") : markdown.index("### alpenhof-web")
    ]
    for missing in ("Kernel", "Running for", "Pending updates", "Listening network ports"):
        assert f"**{missing}:** not recorded" in partly_gathered, missing


@pytest.mark.parametrize(
    "evidence",
    [
        {},
        {"hosts": None},
        {"hosts": ["not", "a", "mapping"]},
        {"hosts": {"alpenhof-web": None, "alpenhof-db": {"disks": "broken", "time_sync": 3}}},
        {"hosts": {"alpenhof-web": {"disks": [None, {"mount": "/"}], "pending_updates": 5}}},
    ],
)
def test_check_evidence_survives_missing_or_odd_keys(
    tmp_path: Path, contract: Contract, evidence: dict[str, Any]
) -> None:
    started = started_entry(action="check")
    finished = finished_entry(started, outcome=Outcome.SUCCEEDED, evidence=evidence)
    for text in read(render_run_log(started, finished, contract, tmp_path)):
        assert "## Evidence" in text or "<h2>Evidence</h2>" in text


def test_generic_evidence_renders_nested_data(tmp_path: Path, contract: Contract) -> None:
    # "deploy" has no evidence template of its own: the generic one renders it.
    started = started_entry(action="deploy")
    evidence = {
        "snapshot_id": "4f2a9c1e",
        "files": {"new": 12, "changed": 3},
        "databases": [{"name": "demo", "dump_bytes": 123456}],
        "verified": True,
        "password": "vault-canary-0123456789abcdef",
    }
    finished = finished_entry(started, outcome=Outcome.SUCCEEDED, evidence=evidence)
    for text in read(render_run_log(started, finished, contract, tmp_path)):
        for expected in ("Snapshot id", "4f2a9c1e", "Files", "New", "12", "Dump bytes", "yes"):
            assert expected in text, expected
        assert "vault-canary" not in text
        assert MASK in text


def test_secrets_are_masked_again(tmp_path: Path, contract: Contract) -> None:
    canary = "canary-Zq8vR2mT5xW1pL9kB3nH"
    started = started_entry()
    finished = finished_entry(started, evidence={"log": f"restic -r sftp:... --password {canary}"})
    markdown, html = read(
        render_run_log(started, finished, contract, tmp_path, secrets=SecretSet.of([canary]))
    )
    assert canary not in markdown
    assert canary not in html


def test_refusal_log(tmp_path: Path, contract: Contract) -> None:
    refused = refused_entry()
    files = render_refusal_log(refused, contract, tmp_path, RUN_ID)
    assert files.markdown.parent == run_log_dir(tmp_path, RUN_ID)
    for text in read(files):
        for expected in (
            "Refused",
            "Software updates",
            "change freeze",
            "winter season opening and holiday bookings",
            ACTOR,
            "Tuesday 5 May 2026, 23:15 CEST",
            f"7:{refused.hash}",
            "webmg-ops ledger verify --checkpoint",
        ):
            assert expected in text, expected
    _, html = read(files)
    assert "badge-refused" in html


def test_emergency_refusal_is_flagged_as_requested(tmp_path: Path, contract: Contract) -> None:
    record = RunRefused(
        action="harden",
        refusal=Refusal.LOCK,
        message="run 20260505T2100Z-alpenhof-update-000000 holds the lock",
        check=True,
        emergency=True,
        reason="active exploit",
        ticket="INC-9",
    )
    refused = make_entry(8, RUN_REFUSED, to_payload(record), STARTED_AT)
    for text in read(render_refusal_log(refused, contract, tmp_path, RUN_ID)):
        assert "Requested as an emergency change outside the maintenance window." in text
        assert "Reason: active exploit" in text
        assert "Requested as a dry run" in text
        assert "another run for you was already in progress" in text


def test_entries_must_belong_together(tmp_path: Path, contract: Contract) -> None:
    started = started_entry()
    finished = finished_entry(started)
    with pytest.raises(BadInput, match="not run-started"):
        render_run_log(finished, None, contract, tmp_path)
    other_run = make_entry(
        42,
        RUN_FINISHED,
        {**finished.payload, "run_id": "20260505T211500Z-alpenhof-update-ffffff"},
        FINISHED_AT,
    )
    with pytest.raises(BadInput, match="closes run"):
        render_run_log(started, other_run, contract, tmp_path)
    other_client = make_entry(41, RUN_STARTED, started.payload, STARTED_AT, client="riverton")
    with pytest.raises(BadInput, match="belongs to client riverton"):
        render_run_log(other_client, None, contract, tmp_path)
    broken = make_entry(41, RUN_STARTED, {"run_id": RUN_ID}, STARTED_AT)
    with pytest.raises(BadInput, match="not a valid run-started record"):
        render_run_log(broken, None, contract, tmp_path)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("run_id", ["../escape", "a/b", "", ".hidden"])
def test_unsafe_run_ids_are_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(BadInput, match="run id"):
        run_log_dir(tmp_path, run_id)
