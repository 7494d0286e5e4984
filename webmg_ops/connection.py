"""How the controller reaches each host of a client, as Ansible would.

Connection settings come from the client's inventory and ``group_vars``
through Ansible's own variable manager (templated, vault-aware), so the
orchestrator's own SSH checks use exactly the user, key and address that
the playbooks will use. The client's enrolled host keys live in
``inventories/<client>/known_hosts``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.errors import BadInput
from webmg_ops.inventory import find_inventory_file

KNOWN_HOSTS_FILE = "known_hosts"


@dataclass(frozen=True)
class Connection:
    """How to open an SSH session to one host."""

    host: str
    address: str
    port: int
    user: str
    key_file: Path | None
    known_hosts: Path


@dataclass(frozen=True)
class InventoryVariables:
    """A client's hosts with their variables (raw) and connection settings."""

    connections: Mapping[str, Connection]
    variables: Mapping[str, Mapping[str, Any]]


def known_hosts_path(client_dir: Path) -> Path:
    """Given a client folder, return the file holding its enrolled host keys."""
    return client_dir / KNOWN_HOSTS_FILE


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # Ansible prints parser warnings on stderr; callers report errors themselves.
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def read_inventory_variables(
    client_dir: Path, vault_password: bytes | None = None
) -> InventoryVariables:
    """Given a client folder (and the vault password, if its vars are encrypted), return its
    hosts' variables and connection settings.

    Raise BadInput if the inventory or its variables cannot be read (a vault
    file without a password among them).
    """
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    inventory_file = find_inventory_file(client_dir)
    loader = DataLoader()
    if vault_password is not None:
        loader.set_vault_secrets([("default", VaultSecret(vault_password))])
    connections: dict[str, Connection] = {}
    variables: dict[str, Mapping[str, Any]] = {}
    try:
        with _quiet():
            inventory = InventoryManager(loader=loader, sources=[str(inventory_file)])
            manager = VariableManager(loader=loader, inventory=inventory)
            for host in inventory.get_hosts():
                host_vars = manager.get_vars(host=host, include_hostvars=False)
                templar = Templar(loader=loader, variables=host_vars)

                def value(
                    name: str, default: Any, templar: Any = templar, v: Any = host_vars
                ) -> Any:
                    return templar.template(v[name]) if name in v else default

                key = value("ansible_ssh_private_key_file", None) or value(
                    "ansible_private_key_file", None
                )
                connections[host.name] = Connection(
                    host=host.name,
                    address=str(value("ansible_host", host.name)),
                    port=int(value("ansible_port", 22)),
                    user=str(value("ansible_user", "root")),
                    key_file=Path(str(key)) if key else None,
                    known_hosts=known_hosts_path(client_dir),
                )
                variables[host.name] = host_vars
    except AnsibleError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadInput(f"{client_dir}: cannot read inventory variables: {first}") from error
    return InventoryVariables(connections=connections, variables=variables)
