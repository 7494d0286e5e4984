"""requirements.lock pins exactly what pyproject.toml asks for, each pin with its hashes.

``make setup`` installs from the lock alone (``--require-hashes``, then the
project with ``--no-deps``): a dependency added to pyproject.toml but not to
the lock would be missing on a fresh machine, and a floor raised above the
pinned version would not be honoured. Run ``make lock`` to re-pin.
"""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def read_lock() -> dict[str, tuple[Version, int]]:
    """Return each pinned package's version and its number of hashes, from requirements.lock."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = (Version(match[2]), 0)
        elif current is not None and HASH.search(line):
            version, count = pins[current]
            pins[current] = (version, count + len(HASH.findall(line)))
    return pins


def declared() -> list[Requirement]:
    """Return the project's requirements: runtime, dev extra and build backend."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    texts = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["dev"],
        *project["build-system"]["requires"],
    ]
    return [Requirement(text) for text in texts]


LOCK = read_lock()


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_every_declared_requirement_is_pinned_within_its_range(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in LOCK, f"{requirement} is not in requirements.lock: run `make lock`"
    version, _ = LOCK[name]
    assert requirement.specifier.contains(version, prereleases=True), (
        f"requirements.lock pins {name}=={version}, outside {requirement}: run `make lock`"
    )
    if "binary" in requirement.extras:
        # psycopg[binary] brings psycopg-binary: the lock must carry it too.
        assert canonicalize_name(f"{name}-binary") in LOCK


def test_every_pin_carries_hashes() -> None:
    assert LOCK, "requirements.lock pins nothing"
    assert [name for name, (_, hashes) in LOCK.items() if hashes == 0] == []


def test_setup_installs_from_the_lock_only() -> None:
    recipe = (REPO / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in recipe
    assert "pip install -q --no-deps --no-build-isolation -e ." in recipe


def test_the_project_metadata_reads_without_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The locked setuptools reads pyproject.toml as `pip install -e .` does; a deprecated
    # form (the license as a TOML table) would warn on every install.
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(REPO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        distribution = apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert distribution.metadata.license_expression == "LicenseRef-Proprietary"
