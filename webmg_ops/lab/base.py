"""The lab's base root file system: Debian bookworm built once with mmdebstrap.

The base is cached as a zstd tarball under the build cache, named by the
hash of its recipe (suite, package lists, build steps), and rebuilt only
when that changes. The Debian packages it was built from (plus those of the
database layer and a few packages the hosts may install later) are kept
beside it: the lab's apt repository serves them, since the lab network
cannot reach Debian's mirrors. The build uses the controller's own apt
sources (so a site's mirror or proxy is honoured), or mmdebstrap's default
when the controller has none for bookworm.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.lab import execute, network
from webmg_ops.lab.paths import LabPaths

SUITE = "bookworm"
DEBIAN_CODENAMES = (SUITE, f"{SUITE}-updates", f"{SUITE}-security")

#: Installed in every host.
BASE_PACKAGES: tuple[str, ...] = (
    "ca-certificates",
    "cron",
    "curl",
    "dbus",
    "iproute2",
    "locales",
    "nftables",
    "openssh-server",
    "openssh-sftp-server",
    "procps",
    "python3",
    "python3-apt",
    "restic",
    "sqlite3",
    "sudo",
    "systemd-sysv",
    "tzdata",
    "unattended-upgrades",
)

#: Installed only in the database hosts' layer.
DB_PACKAGES: tuple[str, ...] = ("postgresql",)

#: Not installed; served by the lab repository so roles can install them.
AVAILABLE_PACKAGES: tuple[str, ...] = (
    # The hardening baseline's packages (roles/hardening).
    "acct",
    "aide",
    # aide's aideinit and daily timer (a Recommends of aide, which the build leaves out).
    "aide-common",
    "apt-listchanges",
    "auditd",
    "debsums",
    "fail2ban",
    "libpam-pwquality",
    "libpam-tmpdir",
    "logrotate",
    "needrestart",
    "python3-systemd",
    "rkhunter",
    "sysstat",
    # The backup target's append-only restic server (rclone serve restic).
    "rclone",
    "rsyslog",
)

#: Bumped whenever the build steps below change, so that caches are rebuilt.
RECIPE_VERSION = 2

MAINTENANCE_USER = "webmg"
LAB_SOURCES_FILE = Path("etc/apt/sources.list.d/webmg-lab.sources")
LAB_KEYRING_FILE = Path("etc/apt/keyrings/webmg-lab.asc")

SUDOERS_TEXT = f"""\
# Maintenance account of the webmg-ops rehearsal lab.
{MAINTENANCE_USER} ALL=(ALL:ALL) NOPASSWD: ALL
"""

SSHD_LAB_TEXT = """\
# Rehearsal lab: each host has only an ed25519 host key (its own, kept across resets).
HostKey /etc/ssh/ssh_host_ed25519_key
"""

RESOLV_CONF_TEXT = """\
# The lab network has no DNS server: lab hosts are named in /etc/hosts.
options timeout:1 attempts:1
"""


@dataclass(frozen=True)
class BaseImage:
    """A built base: its recipe key, tarball and the Debian packages it came from."""

    key: str
    tarball: Path
    debs_dir: Path


def recipe_key() -> str:
    """Return the short hash that names the base built from the current recipe."""
    recipe = {
        "suite": SUITE,
        "base": sorted(BASE_PACKAGES),
        "db": sorted(DB_PACKAGES),
        "available": sorted(AVAILABLE_PACKAGES),
        "version": RECIPE_VERSION,
        "repo": network.REPO_URL,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def cached_base(paths: LabPaths) -> BaseImage:
    """Given the lab's paths, return where the base of the current recipe is cached."""
    key = recipe_key()
    return BaseImage(
        key=key,
        tarball=paths.cache_dir / f"base-{SUITE}-{key}.tar.zst",
        debs_dir=paths.cache_dir / f"debs-{SUITE}-{key}",
    )


def is_cached(image: BaseImage) -> bool:
    """Given a base image, return whether its tarball and packages are complete."""
    return image.tarball.is_file() and (image.debs_dir / ".complete").is_file()


def controller_debian_sources() -> list[str]:
    """Return the controller's apt sources for Debian bookworm as one-line entries.

    An empty list means the controller has none (mmdebstrap's default is
    then used).
    """
    text = execute.output(
        [
            "apt-get",
            "indextargets",
            "--format",
            "$(REPO_URI)\t$(RELEASE)\t$(COMPONENT)\t$(ORIGIN)\t$(CODENAME)",
            "Identifier: Packages",
        ]
    )
    lines: list[str] = []
    for row in text.splitlines():
        fields = row.split("\t")
        if len(fields) != 5:
            continue
        uri, release, component, origin, codename = fields
        line = f"deb {uri} {release} {component}"
        if origin == "Debian" and codename in DEBIAN_CODENAMES and line not in lines:
            lines.append(line)
    return lines


def controller_proxy_options() -> list[str]:
    """Return ``--aptopt`` options that carry the controller's apt proxies, if any."""
    text = execute.output(
        ["apt-config", "shell", "HTTP", "Acquire::http::Proxy", "HTTPS", "Acquire::https::Proxy"]
    )
    options = []
    for line in text.splitlines():
        name, _, quoted = line.partition("=")
        values = shlex.split(quoted)
        if values and values[0]:
            scheme = {"HTTP": "http", "HTTPS": "https"}[name]
            options.append(f'--aptopt=Acquire::{scheme}::Proxy "{values[0]}";')
    return options


def mmdebstrap_argv(target: Path) -> list[str]:
    """Given an empty target directory, return the mmdebstrap command that builds the base.

    The Debian packages used are left in the target's apt cache, together
    with those of the database layer and the available packages, which a
    hook downloads without installing.
    """
    download_only = shlex.join(
        [
            "apt-get",
            "install",
            "--download-only",
            "--yes",
            "--no-install-recommends",
            *sorted(DB_PACKAGES + AVAILABLE_PACKAGES),
        ]
    )
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
        f"--include={','.join(sorted(BASE_PACKAGES))}",
        "--skip=essential/unlink",
        "--skip=cleanup/apt/cache",
        # mmdebstrap's hooks are shell commands by definition; "$1" is the root.
        f'--customize-hook=chroot "$1" {download_only}',
        *controller_proxy_options(),
        SUITE,
        str(target),
        *controller_debian_sources(),
    ]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def lab_sources_text() -> str:
    """Return the hosts' only apt sources: the lab repository's three suites."""
    return (
        "# The rehearsal lab's own repository: the lab network cannot reach Debian.\n"
        "Types: deb\n"
        f"URIs: {network.REPO_URL}\n"
        f"Suites: {' '.join(DEBIAN_CODENAMES)}\n"
        "Components: main\n"
        f"Signed-By: /{LAB_KEYRING_FILE}\n"
    )


def customize_root(root: Path) -> None:
    """Given a freshly built root, make it a bare lab server.

    Removes the host keys shared by every copy (each host gets its own), adds
    the maintenance account with passwordless sudo, points apt at the lab
    repository only, lets systemd-networkd configure the lab interface and
    leaves apt's daily timers off (they are enabled on demand).
    """
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    execute.run(
        [
            "useradd",
            "--root",
            str(root),
            "--create-home",
            "--shell",
            "/bin/bash",
            "--comment",
            "webmg-ops maintenance",
            "--password",
            "*",
            MAINTENANCE_USER,
        ]
    )
    _write(root / "etc/sudoers.d" / MAINTENANCE_USER, SUDOERS_TEXT, 0o440)
    _write(root / "etc/ssh/sshd_config.d/webmg-lab.conf", SSHD_LAB_TEXT)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    for stale in (root / "etc/apt/sources.list.d").glob("*"):
        stale.unlink()
    _write(root / LAB_SOURCES_FILE, lab_sources_text())
    (root / LAB_KEYRING_FILE).parent.mkdir(parents=True, exist_ok=True)
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    _write(resolv, RESOLV_CONF_TEXT)
    _write(root / "etc/default/locale", "LANG=C.UTF-8\n")
    _write(root / "etc/machine-id", "")
    execute.run(["systemctl", f"--root={root}", "enable", "systemd-networkd.service"])
    # Package versions change only when someone acts: apt's daily timers would upgrade
    # hosts at random times. Unattended-upgrades' own configuration stays Debian's.
    execute.run(
        ["systemctl", f"--root={root}", "disable", "apt-daily.timer", "apt-daily-upgrade.timer"]
    )


def take_debs(root: Path, debs_dir: Path) -> None:
    """Given a built root and the cache's package folder, move the apt cache's packages there."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    archives = root / "var/cache/apt/archives"
    for deb in archives.glob("*.deb"):
        shutil.move(deb, debs_dir / deb.name)
    for leftover in archives.iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    (archives / "partial").mkdir(mode=0o700)
    shutil.chown(archives / "partial", user="root")
    for cache in (root / "var/cache/apt").glob("*.bin"):
        cache.unlink()
    (debs_dir / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))


def pack_tree(tree: Path, tarball: Path, *, xattrs: str = "*") -> None:
    """Given a directory, write it as a zstd tarball (atomically), keeping owners and xattrs.

    ``xattrs`` is the pattern of extended attributes kept.
    """
    partial = tarball.with_name(tarball.name + ".partial")
    execute.run(
        [
            "tar",
            "--create",
            "--zstd",
            f"--file={partial}",
            "--numeric-owner",
            "--xattrs",
            f"--xattrs-include={xattrs}",
            "--sort=name",
            f"--directory={tree}",
            ".",
        ]
    )
    partial.rename(tarball)


def unpack_tree(tarball: Path, tree: Path) -> None:
    """Given a tarball made by :func:`pack_tree`, extract it into a new directory (atomically)."""
    partial = tree.with_name(tree.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    execute.run(
        [
            "tar",
            "--extract",
            "--zstd",
            f"--file={tarball}",
            "--numeric-owner",
            "--same-permissions",
            "--xattrs",
            "--xattrs-include=*",
            f"--directory={partial}",
        ]
    )
    partial.rename(tree)


def build_base(paths: LabPaths, on_step: Callable[[str], None]) -> BaseImage:
    """Given the lab's paths, return the base of the current recipe, building it if needed.

    A fresh build also leaves the extracted tree in the lab's layers folder.
    Raise ``Failed`` (naming the build log) if mmdebstrap fails.
    """
    image = cached_base(paths)
    if is_cached(image):
        return image
    on_step(f"Building the base root file system (Debian {SUITE}, about a minute)")
    paths.cache_dir.mkdir(parents=True, exist_ok=True)
    paths.layers_dir.mkdir(parents=True, exist_ok=True)
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    build_dir = paths.layers_dir / f".build-base-{image.key}"
    if build_dir.exists():
        shutil.rmtree(build_dir)
    log = paths.logs_dir / "base-build.log"
    log.write_text("")
    execute.run_streaming(mmdebstrap_argv(build_dir), log_path=log)
    if image.debs_dir.exists():
        shutil.rmtree(image.debs_dir)
    take_debs(build_dir, image.debs_dir)
    customize_root(build_dir)
    on_step("Packing the base into the cache")
    pack_tree(build_dir, image.tarball)
    prune_cache(paths, image)
    extracted = base_tree(paths, image)
    if extracted.exists():
        shutil.rmtree(extracted)
    build_dir.rename(extracted)
    return image


def prune_cache(paths: LabPaths, image: BaseImage) -> None:
    """Given the base just built, remove the cache's bases and packages of older recipes."""
    for entry in paths.cache_dir.glob(f"base-{SUITE}-*.tar.zst"):
        if entry != image.tarball:
            entry.unlink()
    for entry in paths.cache_dir.glob(f"debs-{SUITE}-*"):
        if entry != image.debs_dir and entry.is_dir():
            shutil.rmtree(entry)


def base_tree(paths: LabPaths, image: BaseImage) -> Path:
    """Given a base image, return where the lab keeps it extracted."""
    return paths.layers_dir / f"base-{image.key}"


def ensure_base_tree(paths: LabPaths, image: BaseImage, on_step: Callable[[str], None]) -> Path:
    """Given a cached base image, return its extracted tree, extracting it if needed."""
    tree = base_tree(paths, image)
    if not tree.is_dir():
        on_step("Extracting the base root file system")
        paths.layers_dir.mkdir(parents=True, exist_ok=True)
        unpack_tree(image.tarball, tree)
    return tree
