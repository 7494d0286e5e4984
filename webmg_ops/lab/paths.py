"""Where the lab keeps its files: the lab directory and the build cache.

The lab directory (``<var>/lab`` or ``WEBMG_LAB_DIR``) holds the lab's
identity (keys kept across ``down``/``up``), its runtime state and the hosts'
overlays; the cache (``$XDG_CACHE_HOME/webmg-ops/lab``) holds the root file
system tarballs and the Debian packages they were built from, shared by
every lab on the machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.settings import Settings


@dataclass(frozen=True)
class LabPaths:
    """Absolute paths of one lab's files."""

    lab_dir: Path
    cache_dir: Path

    @property
    def state_file(self) -> Path:
        """The JSON record of everything the running lab made."""
        return self.lab_dir / "state.json"

    @property
    def lock_file(self) -> Path:
        """Held while a command changes the lab."""
        return self.lab_dir / "lock"

    @property
    def identity_dir(self) -> Path:
        """Keys that outlive ``down``: the lab's SSH and archive keys, host keys."""
        return self.lab_dir / "identity"

    @property
    def ssh_key(self) -> Path:
        """The lab's private SSH key (ed25519)."""
        return self.identity_dir / "id_ed25519"

    @property
    def signing_key(self) -> Path:
        """The lab's ledger signing key (Ed25519; its public half beside it, ``.pub``)."""
        return self.identity_dir / "ledger-signing.key"

    @property
    def known_hosts(self) -> Path:
        """Every lab host's ed25519 host key, keyed by its address."""
        return self.lab_dir / "known_hosts"

    @property
    def vault_password(self) -> Path:
        """The lab's Ansible Vault password (lab clients' ``group_vars/all/vault.yml``)."""
        return self.lab_dir / "vault-password"

    @property
    def s3_credentials(self) -> Path:
        """The S3 endpoint's generated credentials (AWS shared credentials format)."""
        return self.identity_dir / "s3-credentials"

    @property
    def layers_dir(self) -> Path:
        """Extracted root file system layers, shared by the hosts."""
        return self.lab_dir / "layers"

    @property
    def repo_dir(self) -> Path:
        """The local apt repository served to the hosts."""
        return self.lab_dir / "repo"

    @property
    def s3_data_dir(self) -> Path:
        """The S3 endpoint's buckets, as plain directories."""
        return self.lab_dir / "s3"

    @property
    def logs_dir(self) -> Path:
        """Logs of the lab's services and of the hosts' consoles."""
        return self.lab_dir / "logs"

    @property
    def hosts_dir(self) -> Path:
        """One folder per host: its overlay's upper, work and merged directories."""
        return self.lab_dir / "hosts"

    def host_identity_dir(self, name: str) -> Path:
        """Given a host name, return the folder of its host key and machine id."""
        return self.identity_dir / "hosts" / name

    def host_dir(self, name: str) -> Path:
        """Given a host name, return the folder of its overlay and runtime files."""
        return self.hosts_dir / name


def default_cache_dir() -> Path:
    """Return the lab's build cache, under ``XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).absolute() / "webmg-ops" / "lab"


def resolve_lab_paths(settings: Settings) -> LabPaths:
    """Given the settings in force, return the lab's paths (``WEBMG_LAB_DIR`` wins)."""
    lab_dir = os.environ.get("WEBMG_LAB_DIR") or str(settings.var_dir / "lab")
    return LabPaths(lab_dir=Path(lab_dir).absolute(), cache_dir=default_cache_dir())
