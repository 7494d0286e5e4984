"""A test that cannot have the lab, PostgreSQL or an S3 server fails unless told to skip."""

from __future__ import annotations

import pytest
from support.capability import SKIP_VARIABLE, missing


def test_a_missing_capability_fails_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="no lab here"):
        missing("no lab here")


def test_the_opt_out_skips_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SKIP_VARIABLE, "1")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"no lab here \\({SKIP_VARIABLE}=1\\)"):
        missing("no lab here")


def test_ci_ignores_the_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SKIP_VARIABLE, "1")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no lab here"):
        missing("no lab here")


def test_a_lab_without_its_tools_fails_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from support import lab

    monkeypatch.delenv(SKIP_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(lab.environment, "missing_tools", lambda: {"mmdebstrap": "mmdebstrap"})
    with pytest.raises(pytest.fail.Exception, match=r"missing tools: mmdebstrap \(make setup\)"):
        lab.require_lab_capabilities()
