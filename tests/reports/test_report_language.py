"""The report in the client's language: ``language: fr`` in client.yml gives a French
report (its catalogue, its dates, ``<html lang="fr">``) with the very figures of the
English one; every catalogue holds exactly the English keys with the same fields.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pypdf
import pytest
from support.recorded_runs import append_run_finished

from webmg_ops.errors import ExitCode
from webmg_ops.ledger import open_ledger
from webmg_ops.ledger.samples import Sample, roll_up, store_samples
from webmg_ops.reports.catalogue import CATALOGUES, ENGLISH

Run = Callable[..., Any]
Edit = Callable[[str, Callable[[dict[str, Any]], None]], Path]

CLIENT = "terre-solidaire"  # monthly, Europe/Paris
CHECK = "site"
PERIOD = "2026-10"
FIRST = datetime(2026, 10, 1, tzinfo=UTC)
STEP = timedelta(minutes=15)
COUNT = 4 * 24 * 30
DOWN = range(400, 404)  # one hour down, unplanned

#: The French words each section's heading is, as a reader sees them.
FRENCH_HEADINGS = (
    "Rapport de service",
    "Disponibilité",
    "Incidents",
    "Maintenance effectuée",
    "Mises à jour appliquées",
    "Conformité du durcissement",
    "Tests de restauration",
    "Risques, décisions et travaux",
    "Pour votre secteur",
    "Preuve d'enregistrement",
)


def fields(sentence: str) -> set[str]:
    """Return the names of the ``{fields}`` a sentence is filled with."""
    return {name for _, name, _, _ in string.Formatter().parse(sentence) if name is not None}


@pytest.mark.parametrize("language", sorted(set(CATALOGUES) - {"en"}))
def test_every_catalogue_has_the_english_keys_and_fields(language: str) -> None:
    """A catalogue has exactly the English keys, each sentence the same fields (a
    sentence missing one would print less, one with another would fail to render)."""
    other = CATALOGUES[language]
    assert set(other) == set(ENGLISH)
    assert {key: fields(text) for key, text in other.items()} == {
        key: fields(text) for key, text in ENGLISH.items()
    }
    assert all(text.strip() for text in other.values())


def seed(url: str) -> None:
    """Store a month of samples (one hour down) and record an update and a drill."""
    with open_ledger(url) as ledger:
        store_samples(
            ledger,
            [
                Sample(
                    client=CLIENT,
                    check=CHECK,
                    at=FIRST + index * STEP,
                    up=index not in DOWN,
                    status=200,
                    latency_ms=80.0 + index % 7,
                    cause="refused" if index in DOWN else None,
                )
                for index in range(COUNT)
            ],
        )
        roll_up(ledger, datetime(2026, 11, 2, tzinfo=UTC))
        for day, action, evidence in (
            (
                6,
                "update",
                {
                    "hosts": {
                        "web1": {"packages": [{"name": "demo-app", "old": "1.0", "new": "1.1"}]}
                    }
                },
            ),
            (
                14,
                "drill",
                {
                    "hosts": {"web1": {"rpo": "2h", "rpo_s": 7200, "rto": "5m", "rto_s": 300}},
                    "targets": {"rpo": "24h", "rto": "8h"},
                },
            ),
        ):
            append_run_finished(
                ledger,
                CLIENT,
                f"r-{action}",
                action,
                datetime(2026, 10, day, 9, tzinfo=UTC),
                evidence=evidence,
            )
        ledger.append(
            "run-finished",
            CLIENT,
            {
                "run_id": "r-harden",
                "action": "harden",
                "check": True,
                "outcome": "succeeded",
                "started_seq": 0,
                "duration_s": 60,
                "hosts": [],
                "evidence": {"check": True, "score_before": {"passed": 17, "applicable": 20}},
            },
            at=datetime(2026, 10, 20, 9, tzinfo=UTC),
        )


def pdf_text(path: Path) -> str:
    """Return the PDF's text, whitespace (no-break spaces too) folded."""
    text = "".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)
    return re.sub(r"\s+", " ", text)


def report(cli: Run) -> dict[str, Any]:
    done = cli("report", CLIENT, "--period", PERIOD, "--json")
    assert done.code == ExitCode.OK, done
    document: dict[str, Any] = json.loads(done.out)
    return document


def set_language(language: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["language"] = language

    return change


def test_a_french_client_gets_its_report_in_french_with_the_same_figures(
    cli: Run, ledger_url: str, edit_contract: Edit
) -> None:
    """The same period written in English (the default) then in French: the French HTML
    and PDF carry the French headings, dates and outcomes, ``<html lang="fr">``, and the
    figures are those of the English report, value for value."""
    seed(ledger_url)
    english = report(cli)
    english_html = unescape(Path(english["html"]).read_text())

    edit_contract(CLIENT, set_language("fr"))
    french = report(cli)

    assert english["language"] == "en" and french["language"] == "fr"
    assert french["figures"] == english["figures"]
    html = unescape(Path(french["html"]).read_text())
    pdf = pdf_text(Path(french["pdf"]))
    assert '<html lang="fr">' in html and '<html lang="en">' in english_html
    for heading in FRENCH_HEADINGS:
        assert f">{heading}" in html, heading
        assert heading in pdf, heading
    for english_word in ("Maintenance carried out", "Proof of record", "Updates applied"):
        assert english_word not in html and english_word not in pdf
    # Dates, cadence and outcomes in French; figures printed alike in both reports.
    assert "Du jeudi 1 octobre 2026, 00:00 CEST au dimanche 1 novembre 2026, 00:00 CET" in pdf
    assert "rapport mensuel" in html
    assert "Test de restauration r-drill\u00a0: réussie, RPO 2h (objectif 24h)" in html
    assert "mise à jour" in pdf and "réussie" in pdf
    (check,) = [item for item in english["figures"]["availability"] if item["check"] == CHECK]
    uptime = f"{100 * (COUNT - len(DOWN)) / COUNT:.3f}"
    assert f"{check['uptime_percent']:.3f}" == uptime
    for shown in (uptime, "17/20", "85.0 %", "demo-app", "1 h"):
        assert shown in html and shown in english_html, shown
        assert shown in pdf, shown


def test_a_language_without_a_catalogue_is_bad_input(
    cli: Run, ledger_url: str, edit_contract: Edit, private_var: Path
) -> None:
    """``language: de`` (no catalogue) is refused when the contract is read: exit 2,
    the field named, no report written."""
    edit_contract(CLIENT, set_language("de"))

    done = cli("report", CLIENT, "--period", PERIOD)

    assert done.code == ExitCode.BAD_INPUT, done
    assert "language" in done.err and "Traceback" not in done.err
    assert not (private_var / "reports").exists()
