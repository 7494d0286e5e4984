"""What a test does when this machine lacks something it needs: fail, unless told to skip.

A test that needs the lab, PostgreSQL or an S3 server fails when it cannot
have it: a skip would hide a missing capability. Setting ``WEBMG_SKIP_LAB=1``
skips them instead, with the reason in pytest's summary; CI never sets it,
and under ``CI=true`` it is ignored.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

SKIP_VARIABLE = "WEBMG_SKIP_LAB"


def missing(message: str) -> NoReturn:
    """Given what is missing, fail the test (or skip it, when the opt-out is set)."""
    if os.environ.get(SKIP_VARIABLE) == "1" and os.environ.get("CI") != "true":
        pytest.skip(f"{message} ({SKIP_VARIABLE}=1)")
    pytest.fail(f"{message} (set {SKIP_VARIABLE}=1 to skip the tests that need it)")
