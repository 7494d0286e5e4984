"""The demo packages: built with dpkg-deb from the sources in ``demoapp/``.

``webmg-demo-app`` is the web hosts' booking site: 1.0 is installed, 1.1 is
a good update published in the security suite, 1.2 breaks its health
endpoint (its health query names a table that does not exist) and is
published in the updates suite. ``webmg-demo-tools`` is an ordinary package
with an update (1.0 installed everywhere, 1.1 in the updates suite).
``webmg-demo-db`` seeds the database hosts' demo database.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from webmg_ops.lab import execute

MAIN_SUITE = "bookworm"
SECURITY_SUITE = "bookworm-security"
UPDATES_SUITE = "bookworm-updates"
MAINTAINER = "webmg-ops rehearsal lab <lab@webmg-ops.invalid>"
#: Bumped whenever the way packages are built changes.
BUILD_VERSION = 1
#: Fixed timestamps keep the packages byte-for-byte reproducible.
SOURCE_DATE_EPOCH = "1735689600"

GOOD_HEALTH_QUERY = "SELECT count(*) FROM bookings"
#: The regression shipped in 1.2: its health check queries a table that does not exist.
BROKEN_HEALTH_QUERY = "SELECT count(*) FROM booking"


@dataclass(frozen=True)
class DemoRelease:
    """One version of one demo package and the suite that publishes it."""

    package: str
    version: str
    suite: str

    @property
    def filename(self) -> str:
        """The ``.deb`` file name."""
        return f"{self.package}_{self.version}_all.deb"


DEMO_RELEASES: tuple[DemoRelease, ...] = (
    DemoRelease("webmg-demo-app", "1.0", MAIN_SUITE),
    DemoRelease("webmg-demo-app", "1.1", SECURITY_SUITE),
    DemoRelease("webmg-demo-app", "1.2", UPDATES_SUITE),
    DemoRelease("webmg-demo-tools", "1.0", MAIN_SUITE),
    DemoRelease("webmg-demo-tools", "1.1", UPDATES_SUITE),
    DemoRelease("webmg-demo-db", "1.0", MAIN_SUITE),
)

HEALTH_QUERIES = {"1.0": GOOD_HEALTH_QUERY, "1.1": GOOD_HEALTH_QUERY, "1.2": BROKEN_HEALTH_QUERY}

#: Per package: (source file in demoapp/, path in the package, mode).
PACKAGE_FILES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "webmg-demo-app": (
        ("app.py", "usr/lib/webmg-demo-app/app.py", 0o644),
        ("webmg-demo-app.service", "lib/systemd/system/webmg-demo-app.service", 0o644),
    ),
    "webmg-demo-tools": (("webmg-demo-tools", "usr/bin/webmg-demo-tools", 0o755),),
    "webmg-demo-db": (
        ("seed.sql", "usr/share/webmg-demo-db/seed.sql", 0o644),
        ("webmg-demo-db-seed", "usr/sbin/webmg-demo-db-seed", 0o755),
    ),
}

#: Per package: (source file in demoapp/, maintainer script name).
MAINTAINER_SCRIPTS: dict[str, tuple[tuple[str, str], ...]] = {
    "webmg-demo-app": (
        ("app.postinst", "postinst"),
        ("app.prerm", "prerm"),
        ("app.postrm", "postrm"),
    ),
}

CONTROL_FIELDS: dict[str, dict[str, str]] = {
    "webmg-demo-app": {
        "Section": "web",
        "Depends": "python3",
        "Description": "demo booking site of the webmg-ops rehearsal lab\n"
        " Serves /health and /records from a small SQLite database.",
    },
    "webmg-demo-tools": {
        "Section": "admin",
        "Description": "housekeeping helper of the webmg-ops demo site",
    },
    "webmg-demo-db": {
        "Section": "database",
        "Depends": "postgresql",
        "Description": "demo database of the webmg-ops rehearsal lab\n"
        " Seeds a 'demo' PostgreSQL database with a bookings table.",
    },
}


def _source(name: str) -> bytes:
    return resources.files("webmg_ops.lab.demoapp").joinpath(name).read_bytes()


def sources_key() -> str:
    """Return a short hash of the demo packages' sources and build recipe."""
    digest = hashlib.sha256(str(BUILD_VERSION).encode())
    for package in sorted(PACKAGE_FILES):
        for source, _, _ in PACKAGE_FILES[package]:
            digest.update(source.encode() + _source(source))
        for source, _ in MAINTAINER_SCRIPTS.get(package, ()):
            digest.update(source.encode() + _source(source))
    digest.update(json.dumps([vars(r) for r in DEMO_RELEASES], sort_keys=True).encode())
    digest.update(json.dumps(HEALTH_QUERIES, sort_keys=True).encode())
    return digest.hexdigest()[:12]


def control_text(release: DemoRelease, installed_size_kib: int) -> str:
    """Given a release and its installed size, return its DEBIAN/control file."""
    fields = {
        "Package": release.package,
        "Version": release.version,
        "Architecture": "all",
        "Maintainer": MAINTAINER,
        "Installed-Size": str(installed_size_kib),
        "Priority": "optional",
        **CONTROL_FIELDS[release.package],
    }
    return "".join(f"{name}: {value}\n" for name, value in fields.items())


def _stage(release: DemoRelease, root: Path) -> None:
    size = 0
    for source, target, mode in PACKAGE_FILES[release.package]:
        content = _source(source).replace(b"@VERSION@", release.version.encode())
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
        size += len(content)
    if release.package == "webmg-demo-app":
        info = {"version": release.version, "health_query": HEALTH_QUERIES[release.version]}
        path = root / "usr/share/webmg-demo-app/release.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, indent=2) + "\n")
    debian = root / "DEBIAN"
    debian.mkdir()
    for source, script in MAINTAINER_SCRIPTS.get(release.package, ()):
        (debian / script).write_bytes(_source(source))
        (debian / script).chmod(0o755)
    (debian / "control").write_text(control_text(release, 1 + size // 1024))
    for directory in [root, *root.rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o755)


def build_demo_packages(out_dir: Path) -> dict[DemoRelease, Path]:
    """Given a folder, build every demo release into it and return their paths.

    Raise ``Failed`` if dpkg-deb fails.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    built: dict[DemoRelease, Path] = {}
    for release in DEMO_RELEASES:
        with tempfile.TemporaryDirectory(prefix="webmg-demo-") as staging:
            root = Path(staging) / "root"
            root.mkdir()
            _stage(release, root)
            target = out_dir / release.filename
            execute.run(
                ["dpkg-deb", "--root-owner-group", "--build", str(root), str(target)],
                env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            )
        built[release] = target
    return built


def copy_releases(built: dict[DemoRelease, Path], suite: str, target_dir: Path) -> list[Path]:
    """Given built releases, copy those of one suite into a folder and return their paths."""
    target_dir.mkdir(parents=True, exist_ok=True)
    copies = []
    for release, path in built.items():
        if release.suite == suite:
            copies.append(Path(shutil.copy2(path, target_dir / path.name)))
    return copies
