"""Role layers: what a web, database or plain host adds over the shared base.

Each role's packages are installed once from the lab repository into an
overlay over the base (inside ``systemd-nspawn``, without network), and the
overlay's upper folder is cached as a tarball named by the hash of its
inputs. Hosts then mount ``<role layer>:<base>`` as their lower layers, so
heavy packages (PostgreSQL) live only under the hosts that need them and
cost nothing per host.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

from webmg_ops.lab import apt_repo, base, cgroups, demo_packages, execute, mounts
from webmg_ops.lab.base import BaseImage
from webmg_ops.lab.paths import LabPaths

#: Packages each role's layer installs (the versions hosts start from).
ROLE_PACKAGES: dict[str, tuple[str, ...]] = {
    "plain": ("webmg-demo-tools=1.0",),
    "web": ("webmg-demo-tools=1.0", "webmg-demo-app=1.0"),
    "db": ("webmg-demo-tools=1.0", "postgresql", "webmg-demo-db=1.0"),
}
#: Commands run in a role's layer after its packages are installed.
ROLE_COMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "db": (("/usr/sbin/webmg-demo-db-seed",),),
}
#: Bumped whenever the way layers are built changes.
LAYER_VERSION = 1

BUILD_MOUNT = "/run/webmg-lab-build"
REPO_MOUNT = "/run/webmg-lab-repo"
#: Keeps maintainer scripts from starting services while a layer is built.
POLICY_RC_D = "#!/bin/sh\n# Building a lab layer: start no service.\nexit 101\n"


def layer_key(role: str, image: BaseImage) -> str:
    """Given a role and the base image, return the hash naming the role's layer."""
    recipe = "/".join(
        [
            image.key,
            demo_packages.sources_key(),
            role,
            *ROLE_PACKAGES[role],
            *(" ".join(command) for command in ROLE_COMMANDS.get(role, ())),
            str(LAYER_VERSION),
        ]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def layer_tree(paths: LabPaths, role: str, image: BaseImage) -> Path:
    """Given a role and the base image, return where the lab keeps the role's layer."""
    return paths.layers_dir / f"{role}-{layer_key(role, image)}"


def layer_tarball(paths: LabPaths, role: str, image: BaseImage) -> Path:
    """Given a role and the base image, return where the cache keeps the role's layer."""
    return paths.cache_dir / f"layer-{role}-{layer_key(role, image)}.tar.zst"


def _build_argv(role: str, merged: Path, repo_dir: Path, conf: Path) -> list[str]:
    return [
        "systemd-nspawn",
        "--quiet",
        f"--machine=webmg-layer-{role}",
        "--register=no",
        "--keep-unit",
        "--as-pid2",
        "--private-network",
        "--resolv-conf=off",
        "--timezone=off",
        f"--directory={merged}",
        f"--bind-ro={repo_dir}:{REPO_MOUNT}",
        f"--bind-ro={conf}:{BUILD_MOUNT}",
        "--setenv=DEBIAN_FRONTEND=noninteractive",
    ]


def _apt_options() -> list[str]:
    return [
        "-o",
        f"Dir::Etc::SourceList={BUILD_MOUNT}/sources.list",
        "-o",
        f"Dir::Etc::SourceParts={BUILD_MOUNT}/parts.d",
    ]


def _tidy(merged: Path) -> None:
    (merged / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    lists = merged / "var/lib/apt/lists"
    for entry in lists.iterdir():
        if entry.is_file() and entry.name != "lock":
            entry.unlink()
    for cache in (merged / "var/cache/apt").glob("*.bin"):
        cache.unlink()


def build_role_layer(
    paths: LabPaths, role: str, image: BaseImage, base_dir: Path, key: apt_repo.ArchiveKey
) -> None:
    """Given a role, the base and the archive key, build and cache the role's layer.

    Raise ``Failed`` if installing its packages fails.
    """
    build = paths.layers_dir / f".build-{role}-{layer_key(role, image)}"
    mounts.remove_tree(build)
    upper, work, merged, conf = (build / part for part in ("upper", "work", "merged", "conf"))
    (conf / "parts.d").mkdir(parents=True)
    (conf / "sources.list").write_text(
        f"deb [signed-by={BUILD_MOUNT}/archive.asc] file:{REPO_MOUNT}/debian {base.SUITE} main\n"
    )
    (conf / "archive.asc").write_bytes(key.public_file.read_bytes())
    mounts.mount_overlay([base_dir], upper, work, merged)
    build_cgroups = cgroups.host_cgroups(f"build-{role}")
    try:
        policy = merged / "usr/sbin/policy-rc.d"
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)
        nspawn = _build_argv(role, merged, paths.repo_dir, conf)
        log = paths.logs_dir / f"layer-{role}.log"
        log.write_text("")
        run = functools.partial(
            execute.run_streaming,
            log_path=log,
            before_exec=functools.partial(cgroups.join, build_cgroups),
        )
        run([*nspawn, "apt-get", *_apt_options(), "update"])
        run(
            [
                *nspawn,
                "apt-get",
                *_apt_options(),
                "install",
                "--yes",
                "--no-install-recommends",
                *ROLE_PACKAGES[role],
            ]
        )
        for command in ROLE_COMMANDS.get(role, ()):
            run([*nspawn, *command])
        _tidy(merged)
    finally:
        mounts.unmount(merged)
        cgroups.remove(build_cgroups)
    # Only whiteouts' opaque marks matter in a lower layer; overlay's other marks would be stale.
    tarball = layer_tarball(paths, role, image)
    base.pack_tree(upper, tarball, xattrs="trusted.overlay.opaque")
    mounts.remove_tree(build)
    for stale in paths.cache_dir.glob(f"layer-{role}-*.tar.zst"):
        if stale != tarball:
            stale.unlink()


def prune_trees(paths: LabPaths, in_use: set[Path]) -> None:
    """Given the layers in use (by the current recipe or by running hosts), remove the others."""
    if not paths.layers_dir.is_dir():
        return
    for tree in paths.layers_dir.iterdir():
        if tree.is_dir() and not tree.name.startswith(".") and tree not in in_use:
            mounts.remove_tree(tree)


def ensure_role_layer(
    paths: LabPaths,
    role: str,
    image: BaseImage,
    base_dir: Path,
    key: apt_repo.ArchiveKey,
    on_step: Callable[[str], None],
) -> Path:
    """Given a role, the base and the archive key, return the role's extracted layer.

    Builds it (once, cached) or extracts it from the cache as needed. Raise
    ``Failed`` if the build fails.
    """
    tree = layer_tree(paths, role, image)
    if tree.is_dir():
        return tree
    if not layer_tarball(paths, role, image).is_file():
        on_step(f"Building the {role} hosts' layer")
        build_role_layer(paths, role, image, base_dir, key)
    on_step(f"Extracting the {role} hosts' layer")
    base.unpack_tree(layer_tarball(paths, role, image), tree)
    return tree
