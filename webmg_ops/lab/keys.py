"""The lab's SSH identity: its key, each host's ed25519 host key, the known_hosts files.

Keys are kept under the lab's identity folder, across ``reset`` and across
``down``/``up``, so that a known_hosts file written once stays valid. Only
ed25519 keys are made (an RSA key costs seconds per host). Every client
whose hosts are all lab hosts gets a copy of the lab's key
(``ssh/id_ed25519``) and a known_hosts file of its own hosts, which its
``group_vars`` point Ansible at, with strict host key checking.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.lab.paths import LabPaths
from webmg_ops.remote.keys import generate_key_pair, write_private

HOST_KEY_NAME = "ssh_host_ed25519_key"


@dataclass(frozen=True)
class HostIdentity:
    """What a host keeps across resets: its host key pair and machine id."""

    name: str
    private_key: Path
    public_key: str
    machine_id: str


def _read_public(private_path: Path) -> str | None:
    public = private_path.with_name(private_path.name + ".pub")
    if private_path.is_file() and public.is_file():
        return public.read_text().strip()
    return None


def ensure_lab_key(paths: LabPaths) -> str:
    """Given the lab's paths, return the lab's public key line, generating the pair once."""
    return _read_public(paths.ssh_key) or generate_key_pair(paths.ssh_key, "webmg-ops-lab")


def ensure_host_identity(paths: LabPaths, name: str) -> HostIdentity:
    """Given a host name, return its identity, generating it the first time."""
    folder = paths.host_identity_dir(name)
    private = folder / HOST_KEY_NAME
    public = _read_public(private) or generate_key_pair(private, f"root@{name}")
    machine_id_file = folder / "machine-id"
    if not machine_id_file.is_file():
        machine_id_file.write_text(uuid.uuid4().hex + "\n")
    return HostIdentity(
        name=name,
        private_key=private,
        public_key=public,
        machine_id=machine_id_file.read_text().strip(),
    )


def known_hosts_line(address: str, port: int, public_key: str) -> str:
    """Given a host's address, SSH port and public key line, return its known_hosts line."""
    host = address if port == 22 else f"[{address}]:{port}"
    key_type, key_data = public_key.split()[:2]
    return f"{host} {key_type} {key_data}"


def write_known_hosts(path: Path, lines: Iterable[str]) -> None:
    """Given a known_hosts path and lines, write them, sorted and without duplicates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(f"{line}\n" for line in sorted(set(lines))))
    partial.rename(path)


def write_client_files(client_dir: Path, lab_private_key: Path, lines: Iterable[str]) -> None:
    """Given a lab-only client's folder, write its copy of the lab key and its known_hosts."""
    ssh_dir = client_dir / "ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    write_private(ssh_dir / "id_ed25519", lab_private_key.read_bytes())
    write_known_hosts(client_dir / "known_hosts", lines)
