"""The client's report rendered: HTML with Jinja2 (the run logs' environment and
layout), charts drawn by matplotlib as inline SVG, and a PDF printed from the same
HTML by WeasyPrint. No network, no browser.

Files go to ``<var_dir>/reports/<client>/<period>/report.{html,pdf}``, mode 0600,
beside the proof of record (``checkpoint.txt``), written privately then renamed.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from markupsafe import Markup

from webmg_ops.reports.catalogue import catalogue
from webmg_ops.reports.runlog import (
    DIRECTORY_MODE,
    FILE_MODE,
    _environment,
    format_local_time,
    format_seconds,
)
from webmg_ops.secrets import SecretSet

REPORTS_FOLDER = "reports"
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
CHECKPOINT_FILE = "checkpoint.txt"
TEMPLATE = "client-report.html.j2"
#: The outages listed per check, longest first: a check failing one probe in a hundred
#: has thousands in a quarter, which a reader does not go through.
OUTAGES_SHOWN = 20
#: The trend and drill charts' names: their SVG ids' salt and prefix.
COMPLIANCE_CHART = "compliance-trend"
DRILL_CHART = "restore-drills"


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written: its HTML, its PDF and its checkpoint note."""

    html: Path
    pdf: Path
    checkpoint: Path


def report_dir(var_dir: Path, client: str, period: str) -> Path:
    """Given the var folder, a client and a period name, return the report's folder."""
    return var_dir / REPORTS_FOLDER / client / period


_SVG_ID = re.compile(r'(\bid="|\bxlink:href="#|\bhref="#|url\(#)([^")]+)')


def _own_ids(svg: str, prefix: str) -> Markup:
    # matplotlib numbers its elements per figure (patch_1, text_1...): two charts on a
    # page would share ids, which HTML and the PDF's anchors forbid. Prefix them all.
    return Markup(_SVG_ID.sub(lambda match: f"{match[1]}{prefix}-{match[2]}", svg))


def _svg_of(figure: Any, prefix: str) -> Markup:
    # The SVG element alone (no XML prolog inside HTML), its ids prefixed.
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return _own_ids(text[text.index("<svg") :], prefix)


def chart_svg(
    check: Mapping[str, Any], title: str, latency_label: str, prefix: str = "availability"
) -> Markup:
    """Given one check's figures, its title, the latency axis's label and the prefix of
    its SVG ids (one per chart of a page), return its daily availability and latency as
    inline SVG.

    Drawn with the Agg backend (no display); the output is stable (no date, salted ids).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    days = [item["day"][5:] for item in check["daily"]]
    availability = [item["sla_percent"] or 0.0 for item in check["daily"]]
    latency = [item["latency_avg_ms"] or 0.0 for item in check["daily"]]
    with pyplot.rc_context({"svg.hashsalt": check["check"], "svg.fonttype": "none"}):
        figure = Figure(figsize=(7.5, 2.6))
        axes = figure.add_subplot()
        axes.bar(days, availability, color="#1b7a3a", width=0.8)
        axes.set_ylim(min([*availability, 99.0]) - 1.0, 100.5)
        axes.set_ylabel("%")
        axes.set_title(title, fontsize=9)
        axes.tick_params(axis="x", labelsize=6, rotation=90)
        twin = axes.twinx()
        twin.plot(days, latency, color="#1f5fa8", marker=".", linewidth=1)
        twin.set_ylabel(latency_label)
        twin.ticklabel_format(axis="y", useOffset=False, style="plain")
        figure.tight_layout()
        return _svg_of(figure, prefix)


#: Day and month names of the languages whose dates are not written in English.
_DATE_NAMES: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fr": (
        ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
        (
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
    ),
}


def format_report_time(moment: datetime, zone: tzinfo, language: str) -> str:
    """Given an aware datetime, a time zone and a language, return it as local text in
    that language: ``mardi 5 mai 2026, 23:04 CEST``; English as the run logs write it."""
    names = _DATE_NAMES.get(language)
    if names is None:
        return format_local_time(moment, zone)
    days, months = names
    local = moment.astimezone(zone)
    day, month = days[local.weekday()], months[local.month - 1]
    return f"{day} {local.day} {month} {local:%Y, %H:%M %Z}".strip()


def _format_duration_words(language: str) -> Callable[[float], str]:
    # Hours and minutes read alike; only the day's unit differs (jour: "j").
    if language == "fr":
        return lambda seconds: format_seconds(seconds).replace(" d", " j")
    return format_seconds


#: An element id in an SVG, or a reference to one (``xlink:href="#…"``, ``url(#…)``).
def _hours(seconds: Any) -> float:
    return float(seconds) / 3600 if isinstance(seconds, int | float) else math.nan


def compliance_chart_svg(trend: Sequence[Mapping[str, Any]], title: str) -> Markup:
    """Given the compliance trend (period, passed, total, percent; percent None where
    nothing was measured) and the chart's title, return a bar per period as inline SVG,
    a gap where nothing was measured. Stable ids (salted), no date in the output."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    periods = [str(item["period"]) for item in trend]
    percent = [
        float(item["percent"]) if item["percent"] is not None else math.nan for item in trend
    ]
    with pyplot.rc_context({"svg.hashsalt": COMPLIANCE_CHART, "svg.fonttype": "none"}):
        figure = Figure(figsize=(7.5, 2.6))
        axes = figure.add_subplot()
        bars = axes.bar(periods, percent, color="#1f5fa8", width=0.7)
        axes.bar_label(
            bars,
            labels=[
                f"{item['passed']}/{item['total']}" if item["percent"] is not None else ""
                for item in trend
            ],
            fontsize=6,
        )
        # Every period on the axis, a gap where nothing was measured (NaN bars do not
        # widen the axis by themselves).
        axes.set_xlim(-0.5, len(periods) - 0.5)
        axes.set_ylim(0, 110)
        axes.set_yticks([0, 25, 50, 75, 100])
        axes.set_ylabel("%")
        axes.set_title(title, fontsize=9)
        axes.tick_params(axis="x", labelsize=7, rotation=45)
        figure.tight_layout()
        return _svg_of(figure, COMPLIANCE_CHART)


def drill_chart_svg(
    drills: Sequence[Mapping[str, Any]], titles: Mapping[str, str], measured: str, target: str
) -> Markup:
    """Given the period's drills (``rpo_s``, ``rto_s`` and their ``*_target_s`` in
    seconds), the titles of the RPO and RTO panels (keys ``rpo``, ``rto``) and the
    legend's words for measured and target, return side-by-side panels as inline SVG:
    a bar per drill, the target as a line across them. Stable ids, no date."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    labels = [f"{index}. {item['run_id']}" for index, item in enumerate(drills, 1)]
    positions = list(range(len(drills)))
    with pyplot.rc_context({"svg.hashsalt": DRILL_CHART, "svg.fonttype": "none"}):
        figure = Figure(figsize=(7.5, 2.8))
        for column, key in enumerate(("rpo", "rto"), 1):
            axes = figure.add_subplot(1, 2, column)
            values = [_hours(item.get(f"{key}_s")) for item in drills]
            goals = [_hours(item.get(f"{key}_target_s")) for item in drills]
            axes.bar(positions, values, color="#1b7a3a", width=0.6, label=measured)
            # The target as a step line across each drill's bar: a target changed by a
            # new contract shows where it changed.
            axes.step(
                [-0.5, *positions, positions[-1] + 0.5] if positions else [],
                [goals[0], *goals, goals[-1]] if goals else [],
                where="mid",
                color="#b3261e",
                linewidth=1.5,
                label=target,
            )
            # Headroom above the highest bar or target for the legend.
            highest = max([value for value in [*values, *goals] if not math.isnan(value)] or [1.0])
            axes.set_ylim(0, highest * 1.3)
            axes.set_xticks(positions, labels, fontsize=6, rotation=30, ha="right")
            axes.set_ylabel("h")
            axes.set_title(titles[key], fontsize=9)
            axes.legend(fontsize=6, loc="upper left")
        figure.tight_layout()
        return _svg_of(figure, DRILL_CHART)


def render_html(
    figures: Mapping[str, Any],
    checkpoint_text: str,
    signed_by: str | None,
    verify_command: str,
    written_at: datetime,
    secrets: SecretSet | None = None,
    language: str = "en",
) -> str:
    """Given the figures, the checkpoint note's text, the signing key's name (None:
    unsigned), the verify command, when written, the secrets to mask and the report's
    language (its catalogue, dates and ``<html lang>``), return the HTML.

    Every value is escaped; the text is masked again with ``secrets`` as run logs are.
    Raise BadInput for a language without a catalogue.
    """
    texts = catalogue(language)
    charts = {
        check["check"]: chart_svg(
            check,
            texts["chart_title"].format(check=check["check"]),
            texts["latency"],
            f"availability-{number}",
        )
        for number, check in enumerate(figures["availability"])
        if check["daily"]
    }
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(figures["timezone"])
    actions = figures["actions"]
    trend = actions.get("compliance_trend") or []
    trend_chart = (
        compliance_chart_svg(trend, texts["compliance_chart_title"].format(count=len(trend)))
        if any(item["percent"] is not None for item in trend)
        else None
    )
    drill_chart = None
    if any(
        item.get(key) is not None
        for item in actions.get("drills") or []
        for key in ("rpo_s", "rto_s")
    ):
        drill_chart = drill_chart_svg(
            actions["drills"],
            {key: texts["drill_chart_title"].format(measure=key.upper()) for key in ("rpo", "rto")},
            texts["measured"],
            texts["target_line"],
        )
    html = (
        _environment(False)
        .get_template(TEMPLATE)
        .render(
            r=figures,
            t=texts,
            language=language,
            charts=charts,
            trend_chart=trend_chart,
            drill_chart=drill_chart,
            checkpoint_text=checkpoint_text,
            signed_by=signed_by,
            verify_command=verify_command,
            written_at=format_report_time(written_at, zone, language),
            local=lambda text: format_report_time(datetime.fromisoformat(text), zone, language),
            seconds=_format_duration_words(language),
            outages_shown=OUTAGES_SHOWN,
        )
    )
    return (secrets or SecretSet()).mask_text(html)


def render_pdf(html: str, base: Path) -> bytes:
    """Given the report's HTML and its folder (for relative links), return the PDF:
    archival (PDF/A-3u, so it stays readable as long as the client keeps it) and tagged
    (its structure read aloud or reflowed)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=html, base_url=str(base)).write_pdf(
        pdf_variant="pdf/a-3u", pdf_tags=True
    )
    return pdf


def _write_private(path: Path, data: bytes) -> None:
    # Private temporary file then rename: never half a report, never readable by others.
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        temporary.chmod(FILE_MODE)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def write_report_files(folder: Path, html: str, pdf: bytes, checkpoint_text: str) -> ReportFiles:
    """Given the report's folder, its HTML, PDF and checkpoint note, write them (0600)."""
    folder.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    folder.chmod(DIRECTORY_MODE)
    files = ReportFiles(folder / HTML_FILE, folder / PDF_FILE, folder / CHECKPOINT_FILE)
    _write_private(files.checkpoint, checkpoint_text.encode())
    _write_private(files.html, html.encode())
    _write_private(files.pdf, pdf)
    return files


def write_audit_files(folder: Path, files: Mapping[str, str]) -> dict[str, Path]:
    """Given the report's folder and the audit export's files (name -> text), write them
    beside the report (0600, privately then renamed) and return their paths by name."""
    folder.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    written = {}
    for name, text in files.items():
        path = folder / name
        _write_private(path, text.encode())
        written[name] = path
    return written
