"""Host enrolment: trust a host's SSH key only after a person (or a script) confirms it.

``webmg-ops enroll`` reads each host's ed25519 host key, shows its SHA256
fingerprint, and stores it in the client's known_hosts once confirmed
interactively or by ``--accept SHA256:...``. Each enrolment and each key
change is its own ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.ansible.connection import known_hosts_path, read_inventory_variables
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.remote.ssh import (
    Unreachable,
    add_known_host,
    fingerprint,
    load_known_key,
    scan_host_key,
)
from webmg_ops.service.records import host_key_recorder
from webmg_ops.settings import Settings

#: Asked for each new or changed key: (host, address, fingerprint, changed) -> store it?
Confirm = Callable[[str, str, str, bool], bool]


@dataclass(frozen=True)
class EnrolResult:
    """What enrolment did for one host."""

    host: str
    address: str
    fingerprint: str
    status: str
    stored: bool
    previous: str | None = None

    def document(self) -> dict[str, Any]:
        """Return the result as a JSON-ready document."""
        return {
            "host": self.host,
            "address": self.address,
            "fingerprint": self.fingerprint,
            "previous": self.previous,
            "status": self.status,
            "stored": self.stored,
        }


def enrol_hosts(
    settings: Settings,
    client_name: str,
    hosts: Iterable[str],
    *,
    accepted: set[str],
    confirm: Confirm | None,
    vault_password_file: Path | None = None,
) -> list[EnrolResult]:
    """Given a client, hosts (all when none), accepted fingerprints, a confirmation
    callback and the vault password file (the inventory's variables may be encrypted),
    enrol each host's key and return what happened per host.

    Raise BadInput for an unknown client or host, a malformed fingerprint, or
    encrypted variables without their password.
    """
    client = load_client(settings.inventories, client_name)
    for value in accepted:
        if not value.startswith("SHA256:"):
            raise BadInput(f"--accept {value!r} is not a SHA256 fingerprint (SHA256:...)")
    connections = read_inventory_variables(client.folder, Vault(vault_password_file)).connections
    chosen = list(hosts) or sorted(connections)
    unknown = [host for host in chosen if host not in connections]
    if unknown:
        raise BadInput(f"{client.name} has no host {', '.join(unknown)}")
    known_hosts = known_hosts_path(client.folder)
    results: list[EnrolResult] = []
    with host_key_recorder(settings) as record:
        for host in chosen:
            connection = connections[host]
            try:
                key = scan_host_key(connection.address, connection.port)
            except Unreachable as error:
                results.append(
                    EnrolResult(host, connection.address, "", f"unreachable: {error}", False)
                )
                continue
            print_ = fingerprint(key)
            known = load_known_key(known_hosts, connection.address, connection.port)
            previous = fingerprint(known) if known is not None else None
            if previous == print_:
                results.append(
                    EnrolResult(
                        host, connection.address, print_, "already enrolled", False, previous
                    )
                )
                continue
            changed = previous is not None
            agreed = print_ in accepted or (
                confirm is not None and confirm(host, connection.address, print_, changed)
            )
            if not agreed:
                status = "changed key not accepted" if changed else "not accepted"
                results.append(
                    EnrolResult(host, connection.address, print_, status, False, previous)
                )
                continue
            add_known_host(known_hosts, connection.address, connection.port, key)
            record(
                client.name,
                {
                    "host": host,
                    "address": connection.address,
                    "key_type": key.get_name(),
                    "fingerprint": print_,
                    "previous_fingerprint": previous,
                },
                changed,
            )
            status = "key changed, re-enrolled" if changed else "enrolled"
            results.append(EnrolResult(host, connection.address, print_, status, True, previous))
    return results


def snapshot_known_hosts(settings: Settings) -> dict[str, dict[str, str]]:
    """Given the settings, return each client's enrolled keys: client -> name -> key text."""
    found: dict[str, dict[str, str]] = {}
    if not settings.inventories.is_dir():
        return found
    for folder in sorted(settings.inventories.iterdir()):
        known_hosts = known_hosts_path(folder)
        if not known_hosts.is_file():
            continue
        keys: dict[str, str] = {}
        for line in known_hosts.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and not line.startswith("#"):
                keys[parts[0]] = f"{parts[1]} {parts[2]}"
        found[folder.name] = keys
    return found
