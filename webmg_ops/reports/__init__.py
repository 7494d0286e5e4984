"""Run logs and periodic reports for clients, rendered with Jinja2 from the ledger."""

from __future__ import annotations

from webmg_ops.reports.runlog import (
    RunLogFiles,
    render_refusal_log,
    render_run_log,
    run_log_dir,
)

__all__ = ["RunLogFiles", "render_refusal_log", "render_run_log", "run_log_dir"]
