"""The client's report rendered: HTML with Jinja2 (the run logs' environment and
layout), charts drawn by matplotlib as inline SVG, and a PDF printed from the same
HTML by WeasyPrint. No network, no browser.

Files go to ``<var_dir>/reports/<client>/<period>/report.{html,pdf}``, mode 0600,
beside the proof of record (``checkpoint.txt``), written privately then renamed.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written: its HTML, its PDF and its checkpoint note."""

    html: Path
    pdf: Path
    checkpoint: Path


def report_dir(var_dir: Path, client: str, period: str) -> Path:
    """Given the var folder, a client and a period name, return the report's folder."""
    return var_dir / REPORTS_FOLDER / client / period


def chart_svg(check: Mapping[str, Any], title: str, latency_label: str) -> Markup:
    """Given one check's figures, return its daily availability and latency as inline SVG.

    Drawn with the Agg backend (no display); the SVG's ids are salted with the check's
    name so that two charts on one page never share an id, and the output is stable.
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
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])


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
    unsigned), the verify command, when written and the secrets to mask, return the HTML.

    Every value is escaped; the text is masked again with ``secrets`` as run logs are.
    """
    texts = catalogue(language)
    charts = {
        check["check"]: chart_svg(
            check, texts["chart_title"].format(check=check["check"]), texts["latency"]
        )
        for check in figures["availability"]
        if check["daily"]
    }
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(figures["timezone"])
    html = (
        _environment(False)
        .get_template(TEMPLATE)
        .render(
            r=figures,
            t=texts,
            charts=charts,
            checkpoint_text=checkpoint_text,
            signed_by=signed_by,
            verify_command=verify_command,
            written_at=format_local_time(written_at, zone),
            local=lambda text: format_local_time(datetime.fromisoformat(text), zone),
            seconds=format_seconds,
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
