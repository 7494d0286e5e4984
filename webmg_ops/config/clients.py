"""Finding and loading clients: ``inventories/<client>/`` and what it holds.

A client folder holds ``client.yml`` (the contract), an Ansible inventory
(``hosts.yml`` or INI) and ``group_vars/``. Loading validates all of it at
once and reports every problem with its file, line and field.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from webmg_ops.ansible.inventory import (
    InventoryHost,
    client_folder_problems,
    find_inventory_file,
    is_lab_address,
    read_inventory_hosts,
)
from webmg_ops.config.contract import Contract, is_client_name
from webmg_ops.config.contract_cache import ContractCache
from webmg_ops.config.policy import Policy, effective_policy, find_loosenings
from webmg_ops.errors import BadInput
from webmg_ops.yamlsource import (
    SourceProblem,
    YamlSource,
    YamlSourceError,
    parse_yaml_source,
)

CONTRACT_FILE = "client.yml"

#: The folder of the agency's own infrastructure, beside the clients' and run by the same
#: engine: its backup target, which every client's hosts back up into.
AGENCY = "agency"

#: The inventory group of the agency's backup target. Only the agency's folder may name it:
#: a client's run must never reach the target, where its variables and firewall would
#: decide over every client's backups.
TARGET_GROUP = "backup_target"


class ContractInvalid(BadInput):
    """A client's files are invalid; carries every problem found."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        count = len(problems)
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found:\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class Client:
    """A loaded, validated client: its contract, policy and hosts."""

    name: str
    folder: Path
    contract: Contract
    policy: Policy
    hosts: tuple[InventoryHost, ...]

    @property
    def is_lab_only(self) -> bool:
        """Return whether every host of the client is a rehearsal-lab host."""
        return bool(self.hosts) and all(is_lab_address(host.address) for host in self.hosts)


def list_client_names(inventories: Path) -> list[str]:
    """Given the inventories folder, return the names of the clients in it, sorted.

    Raise BadInput if the folder does not exist.
    """
    if not inventories.is_dir():
        raise BadInput(f"inventories folder {inventories} does not exist")
    return sorted(
        entry.name
        for entry in inventories.iterdir()
        if entry.is_dir() and (entry / CONTRACT_FILE).is_file()
    )


def client_folder(inventories: Path, name: str) -> Path:
    """Given the inventories folder and a client name, return the client's folder.

    Raise BadInput if the name is not a safe client name (no ``../``, no
    shell characters) or no such client exists.
    """
    if not is_client_name(name):
        raise BadInput(f"invalid client name {name!r}: use lowercase letters, digits and hyphens")
    folder = inventories / name
    if not (folder / CONTRACT_FILE).is_file():
        known = ", ".join(list_client_names(inventories)) or "none"
        raise BadInput(f"unknown client {name!r} in {inventories} (known: {known})")
    return folder


def client_file(folder: Path, relative: str) -> Path:
    """Given a client's folder and a file the contract names relative to it, return the
    file's resolved path.

    Raise BadInput if the name is absolute or holds ``..``, or the file
    resolves (through symlinks too) outside the client's folder: a contract
    reads only its own client's files.
    """
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts:
        raise BadInput(f"{relative!r} must be relative to the client folder, without '..'")
    resolved = (folder / path).resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise BadInput(f"{folder / path} resolves to {resolved}, outside the client folder")
    return resolved


def _validation_problems(error: ValidationError, source: YamlSource) -> list[SourceProblem]:
    problems = []
    for detail in error.errors():
        path = tuple(part for part in detail["loc"] if isinstance(part, str | int))
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(source.problem(path, message))
    return problems


def _read_contract(folder: Path) -> tuple[Contract | None, YamlSource | None, list[SourceProblem]]:
    file = folder / CONTRACT_FILE
    try:
        source = parse_yaml_source(file.read_text(encoding="utf-8"), file)
    except YamlSourceError as error:
        return None, None, error.problems
    except (OSError, UnicodeDecodeError) as error:
        return None, None, [SourceProblem(file, 1, "", f"cannot read: {error}")]
    if not isinstance(source.data, dict):
        return None, source, [SourceProblem(file, 1, "", "a contract is a YAML mapping")]
    try:
        contract = Contract.model_validate(source.data)
    except ValidationError as error:
        return None, source, _validation_problems(error, source)
    return contract, source, []


def _contract_problems(
    contract: Contract, source: YamlSource, folder: Path, hosts: tuple[InventoryHost, ...]
) -> list[SourceProblem]:
    problems = [
        source.problem(loosening.field_path, loosening.message)
        for loosening in find_loosenings(contract)
    ]
    if contract.name != folder.name:
        problems.append(
            source.problem(
                ("name",), f"{contract.name!r} differs from the folder name {folder.name!r}"
            )
        )
    if contract.level is not None:
        # A prospect may lack these; a contracted level cannot run without them.
        if contract.business_owner is None:
            problems.append(
                source.problem(("level",), "a contract with a level needs a business_owner")
            )
        if not contract.windows:
            problems.append(
                source.problem(("level",), "a contract with a level needs at least one window")
            )
    lab_only = bool(hosts) and all(is_lab_address(host.address) for host in hosts)
    for index, window in enumerate(contract.windows):
        if window.always and not lab_only:
            problems.append(
                source.problem(
                    ("windows", index, "always"),
                    "an always-open window is allowed only when every host is a lab host "
                    "(198.18.0.0/24)",
                )
            )
    approved = contract.updates.approved_versions_file
    if approved is not None:
        problems.extend(_approved_versions_problems(source, folder, approved))
    targets = [host.name for host in hosts if TARGET_GROUP in host.groups]
    if targets and folder.name != AGENCY:
        problems.append(
            SourceProblem(
                find_inventory_file(folder),
                1,
                TARGET_GROUP,
                f"{', '.join(targets)}: the backup target is the agency's own infrastructure; "
                f"list it in the agency's folder ({AGENCY}/hosts.yml), never in a client's "
                "inventory",
            )
        )
    return problems


def _approved_versions_problems(
    source: YamlSource, folder: Path, approved: str
) -> list[SourceProblem]:
    field = ("updates", "approved_versions_file")
    try:
        file = client_file(folder, approved)
    except BadInput as error:
        return [source.problem(field, error.message)]
    if not file.is_file():
        return [source.problem(field, f"file {folder / approved} not found")]
    return []


def load_client(inventories: Path, name: str) -> Client:
    """Given the inventories folder and a client name, return the validated client.

    Raise BadInput for an unsafe or unknown name, and :class:`ContractInvalid`
    listing every problem (file:line: field: message) of the contract and
    the inventory (one that lists no hosts is a problem).
    """
    folder = client_folder(inventories, name)
    contract, source, problems = _read_contract(folder)
    hosts: tuple[InventoryHost, ...] = ()
    # The client's folder is data: what would run code on the controller is refused first.
    problems.extend(client_folder_problems(folder))
    try:
        hosts = tuple(read_inventory_hosts(folder))
    except BadInput as error:
        problems.append(SourceProblem(folder, 1, "", error.message))
    else:
        if not hosts:
            # Every action runs on the inventory's hosts: without any, a run would
            # "succeed" having maintained nothing, and a drill would prove nothing.
            problems.append(
                SourceProblem(find_inventory_file(folder), 1, "", "the inventory lists no hosts")
            )
    if contract is not None and source is not None:
        problems.extend(_contract_problems(contract, source, folder, hosts))
    if problems or contract is None:
        raise ContractInvalid(problems)
    return Client(
        name=name,
        folder=folder,
        contract=contract,
        policy=effective_policy(contract),
        hosts=hosts,
    )


def load_client_contract(
    inventories: Path, name: str, cache: ContractCache | None = None
) -> Client:
    """Given the inventories folder, a client name and optionally the contract cache,
    return the client as its contract alone makes it: contract and policy, no hosts (the
    inventory is not read).

    For commands that never reach a host and read many clients at once (``tick``,
    ``due``): the contract is parsed without line numbers (a fifth of what
    :func:`load_client` costs), or taken from the cache when it holds the data of exactly
    this file's bytes, and checked against the schema, the level's loosenings, its
    folder's name and a level's owner and windows; on any problem with the cache's data,
    the file is parsed afresh, and on any problem with that, :func:`load_client` is
    called for its full report (file:line: field: message), which it raises. A valid
    contract's data is given to the cache. The checks of the inventory and of the
    folder's files are :func:`load_client`'s, made by ``validate`` and every run.
    """
    folder = client_folder(inventories, name)
    try:
        raw = (folder / CONTRACT_FILE).read_bytes()
    except OSError:
        raw = None
    if raw is not None and cache is not None:
        cached = cache.data(name, raw)
        client = None if cached is None else _contract_alone(folder, cached)
        if client is not None:
            return client
    data: Any = None
    if raw is not None:
        with contextlib.suppress(yaml.YAMLError, ValueError):
            data = yaml.load(raw, Loader=_FAST_LOADER)
    client = None if raw is None else _contract_alone(folder, data)
    if client is None:
        load_client(inventories, name)  # raises, naming every problem
        raise ContractInvalid([SourceProblem(folder / CONTRACT_FILE, 1, "", "invalid")])
    if cache is not None and raw is not None:
        cache.remember(name, raw, data)
    return client


def _contract_alone(folder: Path, data: Any) -> Client | None:
    """Given a client's folder and its contract's parsed data, return the client its
    contract alone makes, or None if the data fails a check of
    :func:`load_client_contract`."""
    try:
        contract = Contract.model_validate(data)
    except (ValidationError, ValueError):
        return None
    if (
        contract.name != folder.name
        or find_loosenings(contract)
        or (
            contract.level is not None and (contract.business_owner is None or not contract.windows)
        )
    ):
        return None
    return Client(
        name=folder.name,
        folder=folder,
        contract=contract,
        policy=effective_policy(contract),
        hosts=(),
    )


#: The C loader where PyYAML has it: the contract alone, without the line numbers
#: of :mod:`webmg_ops.yamlsource` (only a valid contract is read this way).
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


__all__ = [
    "CONTRACT_FILE",
    "Client",
    "ContractInvalid",
    "client_file",
    "client_folder",
    "list_client_names",
    "load_client",
    "load_client_contract",
]
