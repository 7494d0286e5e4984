"""How the controller reaches each host of a client, as Ansible would.

Connection settings come from the client's inventory and ``group_vars``
through Ansible's own variable manager (vault-aware, never templated: a
client's variables hold no template, see :mod:`webmg_ops.ansible.inventory`), so the
orchestrator's own SSH checks use exactly the user and address that the
playbooks will use. The trust settings are the engine's, never the
client's: the client's enrolled host keys in ``inventories/<client>/known_hosts``,
strictly checked, and the agency's key for the client,
``inventories/<client>/ssh/id_ed25519``, offered alone (IdentitiesOnly).
:func:`ansible_trust_environment` hands them to every Ansible process.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.ansible.inventory import (
    STATIC_INVENTORY_PLUGINS,
    find_inventory_file,
    static_inventory,
    vault_problems,
)
from webmg_ops.ansible.vault import Vault
from webmg_ops.errors import BadInput
from webmg_ops.yamlsource import SourceProblem

KNOWN_HOSTS_FILE = "known_hosts"
#: The agency's SSH key for a client, inside the client's folder.
CLIENT_KEY_FILE = Path("ssh") / "id_ed25519"


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


def client_key_path(client_dir: Path) -> Path:
    """Given a client folder, return the agency's SSH key for that client."""
    return client_dir / CLIENT_KEY_FILE


def trusted_ssh_options(client_dir: Path) -> tuple[str, ...]:
    """Given a client folder, return the OpenSSH ``-o`` settings every connection to its
    hosts carries: host keys checked strictly against the client's known_hosts only (no
    other file, none added, none updated by the host) and the client's key offered alone
    (no agent key, no default key) when it exists.
    """
    known_hosts = known_hosts_path(client_dir).absolute()
    key = client_key_path(client_dir).absolute()
    return (
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={known_hosts}",
        f"GlobalKnownHostsFile={known_hosts}",
        "UpdateHostKeys=no",
        *((f"IdentityFile={key}",) if key.is_file() else ()),
    )


def _ssh_args(options: tuple[str, ...]) -> str:
    return " ".join(f"-o {shlex.quote(option)}" for option in options)


def project_ssh_args(ansible_cfg: Path) -> str:
    """Given the project's ansible.cfg, return its ``ssh_args`` (connection reuse, timeouts)."""
    parser = configparser.RawConfigParser()
    parser.read(ansible_cfg, encoding="utf-8")
    return parser.get("ssh_connection", "ssh_args", fallback="").strip()


def ansible_trust_environment(client_dir: Path, project_cfg: Path) -> dict[str, str]:
    """Given a client folder and the project's ansible.cfg, return the environment every
    Ansible process for that client gets last, over any ansible.cfg.

    Environment variables beat ansible.cfg: the engine's ssh options come first on
    OpenSSH's command line (where the first value of an option wins), host-key checking
    stays on, only static inventories are read, and no other ssh options are added. The
    inventory variables that would beat these are refused (:mod:`webmg_ops.ansible.inventory`).
    """
    trusted = _ssh_args(trusted_ssh_options(client_dir))
    key = client_key_path(client_dir).absolute()
    environment = {
        "ANSIBLE_INVENTORY_ENABLED": ",".join(STATIC_INVENTORY_PLUGINS),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": f"{project_ssh_args(project_cfg)} {trusted}".strip(),
        # testinfra reads these, not ssh_args, from the environment.
        "ANSIBLE_SSH_COMMON_ARGS": trusted,
        "ANSIBLE_SSH_EXTRA_ARGS": "",
        "ANSIBLE_SCP_EXTRA_ARGS": "",
        "ANSIBLE_SFTP_EXTRA_ARGS": "",
    }
    if key.is_file():
        environment["ANSIBLE_PRIVATE_KEY_FILE"] = str(key)
    return environment


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # Ansible prints parser warnings on stderr; callers report errors themselves.
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _refuse(problems: list[SourceProblem]) -> None:
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise BadInput(f"{len(problems)} refused in the client's vault:\n{lines}")


def _forget_found_variable_files() -> None:
    """Make the next read see the variable files as they are now.

    Ansible's ``host_group_vars`` plugin keeps, for the life of the process, the list of
    files it found in each ``group_vars``/``host_vars`` folder: a file added since would be
    missed, and one removed since looked for in vain ("Unable to retrieve file contents").
    """
    from ansible.plugins.vars import host_group_vars

    found: dict[str, list[str]] | None = getattr(host_group_vars, "FOUND", None)
    if found is not None:
        found.clear()


def read_inventory_variables(client_dir: Path, vault: Vault | None = None) -> InventoryVariables:
    """Given a client folder (and the command's vault, if its vars are encrypted), return its
    hosts' variables and connection settings.

    Values are read as written, never templated. Raise BadInput if the inventory or its
    variables cannot be read (a vault file without a password among them), or if a
    vault-encrypted variable breaks the rules of a client's variables.
    """
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret
    from ansible.vars.manager import VariableManager

    inventory_file = find_inventory_file(client_dir)
    _forget_found_variable_files()
    loader = DataLoader()
    vault = vault or Vault(None)
    if vault.password is not None:
        loader.set_vault_secrets([("default", VaultSecret(vault.password))])
    _refuse(vault_problems(client_dir, vault))
    connections: dict[str, Connection] = {}
    variables: dict[str, Mapping[str, Any]] = {}
    key = client_key_path(client_dir)
    try:
        with _quiet():
            inventory = static_inventory(inventory_file, loader)
            manager = VariableManager(loader=loader, inventory=inventory)
            for host in inventory.get_hosts():
                host_vars = manager.get_vars(host=host, include_hostvars=False)
                connections[host.name] = Connection(
                    host=host.name,
                    address=str(host_vars.get("ansible_host", host.name)),
                    port=int(host_vars.get("ansible_port", 22)),
                    user=str(host_vars.get("ansible_user", "root")),
                    key_file=key if key.is_file() else None,
                    known_hosts=known_hosts_path(client_dir),
                )
                variables[host.name] = host_vars
    except AnsibleError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadInput(f"{client_dir}: cannot read inventory variables: {first}") from error
    return InventoryVariables(connections=connections, variables=variables)
