"""A test's own apt suite, served to the lab hosts by the lab's repository server.

A test builds small packages with ``dpkg-deb`` (configuration files, a
Recommends, a maintainer script: what the demo packages lack), and
publishes them as a suite of their own beside the lab's archive: its
``Packages`` and ``Release`` files are made and signed with the lab's
archive key by the very functions that build the lab's archive, so the
hosts trust it as they trust the lab's own suites. A host sees the suite
once the test adds its sources file; ``lab reset`` takes it away again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support.lab import Lab
from webmg_ops.lab import apt_repo, network
from webmg_ops.lab.base import LAB_KEYRING_FILE
from webmg_ops.lab.paths import LabPaths, default_cache_dir

MAINTAINER = "webmg-ops tests <tests@webmg-ops.invalid>"
#: Fixed timestamps, as the lab's own packages have.
SOURCE_DATE_EPOCH = "1735689600"


@dataclass(frozen=True)
class SuitePackage:
    """One version of one package of a test's suite."""

    name: str
    version: str
    #: Path in the package (no leading slash) -> content.
    files: Mapping[str, str] = field(default_factory=dict)
    #: Paths (with the leading slash) that dpkg treats as configuration files.
    conffiles: tuple[str, ...] = ()
    recommends: tuple[str, ...] = ()
    #: The package's postinst script, if any.
    postinst: str | None = None


def build_deb(package: SuitePackage, out_dir: Path) -> Path:
    """Given a package and a folder, build its ``.deb`` there and return its path.

    Raise CalledProcessError if dpkg-deb refuses it.
    """
    with tempfile.TemporaryDirectory(prefix="webmg-suite-") as staging:
        root = Path(staging) / "root"
        for path, content in package.files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        debian = root / "DEBIAN"
        debian.mkdir(parents=True)
        fields = {
            "Package": package.name,
            "Version": package.version,
            "Architecture": "all",
            "Maintainer": MAINTAINER,
            "Priority": "optional",
            "Section": "misc",
            **({"Recommends": ", ".join(package.recommends)} if package.recommends else {}),
            "Description": f"{package.name}, a package of a webmg-ops lab test",
        }
        (debian / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
        if package.conffiles:
            (debian / "conffiles").write_text("".join(f"{path}\n" for path in package.conffiles))
        if package.postinst is not None:
            (debian / "postinst").write_text(package.postinst)
            (debian / "postinst").chmod(0o755)
        for folder in [root, *root.rglob("*")]:
            if folder.is_dir():
                folder.chmod(0o755)
        deb = out_dir / f"{package.name}_{package.version}_all.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            capture_output=True,
            check=True,
        )
    return deb


def sources_text(name: str) -> str:
    """Given a suite's name, return the deb822 sources entry by which a host uses it."""
    return (
        "Types: deb\n"
        f"URIs: http://{network.CONTROLLER_ADDRESS}:{network.REPO_PORT}/{name}\n"
        f"Suites: {name}\n"
        f"Components: {apt_repo.COMPONENT}\n"
        f"Signed-By: /{LAB_KEYRING_FILE}\n"
    )


@contextmanager
def served_suite(lab: Lab, name: str, packages: tuple[SuitePackage, ...]) -> Iterator[str]:
    """Within the block, the lab's repository serves PACKAGES as the signed suite NAME;
    yield the sources entry a host needs to use it. The suite is removed afterwards.
    """
    paths = LabPaths(lab_dir=lab.lab_dir, cache_dir=default_cache_dir())
    # Beside the lab's archive (served as /debian): the lab's own suites stay as built.
    archive = paths.repo_dir / name
    meta = apt_repo.SuiteMetadata(codename=name, suite=name, label=name, pool="main")
    try:
        pool = archive / "pool" / meta.pool
        pool.mkdir(parents=True)
        for package in packages:
            build_deb(package, pool)
        architecture = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # The lab's own steps: the same metadata and the same signature as its archive.
        apt_repo._write_packages(archive, meta, architecture)
        release = apt_repo._write_release(archive, meta, architecture)
        apt_repo._sign(apt_repo.ensure_archive_key(paths), [release])
        yield sources_text(name)
    finally:
        shutil.rmtree(archive, ignore_errors=True)
