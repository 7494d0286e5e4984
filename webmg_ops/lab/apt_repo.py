"""The lab's apt repository: Debian's packages and the demo packages, signed, over HTTP.

Three suites mirror Debian's metadata, so that security-only upgrades and
unattended-upgrades' default origin patterns behave as they do against
Debian: ``bookworm`` (Label Debian, Suite stable) holds every Debian package
the base was built from plus the demo packages' installed versions;
``bookworm-security`` (Label Debian-Security, Suite stable-security) holds
the good update of the demo site; ``bookworm-updates`` (Suite
stable-updates) holds the broken one and the tools' update. The archive is
signed by a lab key generated once; hosts trust it through ``signed-by``.
It is built with dpkg-scanpackages and apt-ftparchive and served by a small
``http.server`` bound to the bridge address only.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.errors import Failed
from webmg_ops.lab import demo_packages, execute, network
from webmg_ops.lab.base import BaseImage
from webmg_ops.lab.paths import LabPaths

COMPONENT = "main"
KEY_USER_ID = "webmg-ops lab archive <archive@webmg-ops.invalid>"


@dataclass(frozen=True)
class SuiteMetadata:
    """The Release fields of one suite, as Debian sets them."""

    codename: str
    suite: str
    label: str
    pool: str


SUITES: tuple[SuiteMetadata, ...] = (
    SuiteMetadata("bookworm", "stable", "Debian", "main"),
    SuiteMetadata("bookworm-security", "stable-security", "Debian-Security", "security"),
    SuiteMetadata("bookworm-updates", "stable-updates", "Debian", "updates"),
)
ORIGIN = "Debian"


@dataclass(frozen=True)
class ArchiveKey:
    """The lab's archive signing key: its secret and public halves and fingerprint."""

    secret_file: Path
    public_file: Path
    fingerprint: str


def archive_dir(paths: LabPaths) -> Path:
    """Given the lab's paths, return the archive's root (served as ``/debian``)."""
    return paths.repo_dir / "debian"


@contextlib.contextmanager
def _gnupg_home() -> Iterator[Path]:
    # A short temporary home keeps gpg-agent's socket path within limits;
    # the agent it starts is ended before the home is removed.
    with tempfile.TemporaryDirectory(prefix="webmg-gpg-") as home:
        Path(home).chmod(0o700)
        try:
            yield Path(home)
        finally:
            execute.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)


def _gpg(home: Path, *arguments: str) -> list[str]:
    return ["gpg", "--batch", "--quiet", "--homedir", str(home), *arguments]


def ensure_archive_key(paths: LabPaths) -> ArchiveKey:
    """Given the lab's paths, return the archive key, generating it the first time."""
    secret = paths.identity_dir / "archive-key.sec.asc"
    public = paths.identity_dir / "archive-key.asc"
    fingerprint_file = paths.identity_dir / "archive-key.fingerprint"
    if not (secret.is_file() and public.is_file() and fingerprint_file.is_file()):
        paths.identity_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _gnupg_home() as home:
            execute.run(
                _gpg(
                    home,
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                    "--quick-generate-key",
                    KEY_USER_ID,
                    "ed25519",
                    "sign",
                    "never",
                )
            )
            listing = execute.output(_gpg(home, "--with-colons", "--list-secret-keys"))
            fingerprint = next(
                line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
            )
            secret_text = execute.output(_gpg(home, "--armor", "--export-secret-keys", fingerprint))
            public_text = execute.output(_gpg(home, "--armor", "--export", fingerprint))
        secret.touch(mode=0o600)
        secret.write_text(secret_text)
        public.write_text(public_text)
        fingerprint_file.write_text(fingerprint + "\n")
    return ArchiveKey(secret, public, fingerprint_file.read_text().strip())


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_packages(archive: Path, meta: SuiteMetadata, architecture: str) -> None:
    packages = execute.output(
        ["dpkg-scanpackages", "--multiversion", f"pool/{meta.pool}", "/dev/null"], cwd=archive
    )
    binary = archive / "dists" / meta.codename / COMPONENT / f"binary-{architecture}"
    binary.mkdir(parents=True, exist_ok=True)
    (binary / "Packages").write_text(packages)
    (binary / "Packages.gz").write_bytes(gzip.compress(packages.encode(), mtime=0))


def _write_release(archive: Path, meta: SuiteMetadata, architecture: str) -> Path:
    fields = {
        "Origin": ORIGIN,
        "Label": meta.label,
        "Suite": meta.suite,
        "Codename": meta.codename,
        "Architectures": architecture,
        "Components": COMPONENT,
        "Description": f"webmg-ops rehearsal lab: {meta.codename}",
    }
    options = [f"-oAPT::FTPArchive::Release::{name}={value}" for name, value in fields.items()]
    text = execute.output(
        ["apt-ftparchive", *options, "release", f"dists/{meta.codename}"], cwd=archive
    )
    release = archive / "dists" / meta.codename / "Release"
    release.write_text(text)
    return release


def _sign(key: ArchiveKey, releases: list[Path]) -> None:
    with _gnupg_home() as home:
        execute.run(_gpg(home, "--import", str(key.secret_file)))
        for release in releases:
            signer = ["--local-user", key.fingerprint, "--digest-algo", "SHA512", "--yes"]
            inline = str(release.parent / "InRelease")
            detached = str(release.parent / "Release.gpg")
            execute.run(_gpg(home, *signer, "--clearsign", "--output", inline, str(release)))
            execute.run(
                _gpg(home, *signer, "--armor", "--detach-sign", "--output", detached, str(release))
            )


def repo_key(image: BaseImage, key: ArchiveKey) -> str:
    """Given the base image and archive key, return the hash naming the repository's content."""
    recipe = f"{image.key}/{demo_packages.sources_key()}/{key.fingerprint}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def ensure_repository(
    paths: LabPaths, image: BaseImage, key: ArchiveKey, on_step: Callable[[str], None]
) -> Path:
    """Given the base image and archive key, build the signed repository unless current.

    Return the archive's root. Raise ``Failed`` if a build tool fails.
    """
    archive = archive_dir(paths)
    marker = paths.repo_dir / ".built"
    wanted = repo_key(image, key)
    if marker.is_file() and marker.read_text().strip() == wanted:
        return archive
    on_step("Building the lab's apt repository")
    if paths.repo_dir.exists():
        shutil.rmtree(paths.repo_dir)
    archive.mkdir(parents=True)
    architecture = execute.output(["dpkg", "--print-architecture"]).strip()
    main_pool = archive / "pool" / "main"
    main_pool.mkdir(parents=True)
    for deb in sorted(image.debs_dir.glob("*.deb")):
        _link_or_copy(deb, main_pool / deb.name)
    built = demo_packages.build_demo_packages(paths.repo_dir / "build")
    releases = []
    for meta in SUITES:
        demo_packages.copy_releases(built, meta.codename, archive / "pool" / meta.pool)
        _write_packages(archive, meta, architecture)
        releases.append(_write_release(archive, meta, architecture))
    _sign(key, releases)
    shutil.copy2(key.public_file, archive / "webmg-lab-archive.asc")
    shutil.rmtree(paths.repo_dir / "build")
    marker.write_text(wanted + "\n")
    return archive


def repo_server_argv(paths: LabPaths) -> list[str]:
    """Given the lab's paths, return the command that serves the repository."""
    return [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        network.CONTROLLER_ADDRESS,
        "--directory",
        str(paths.repo_dir),
        str(network.REPO_PORT),
    ]


def wait_for_repo_server(timeout: float = 10.0) -> None:
    """Wait until the repository answers. Raise ``Failed`` if it does not in time."""
    if not network.wait_for_port(network.CONTROLLER_ADDRESS, network.REPO_PORT, timeout):
        raise Failed(f"the lab repository did not answer on {network.REPO_URL}")
