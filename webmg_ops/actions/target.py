"""The ``target`` action: the agency's backup target, prepared for every client.

The backup target is the agency's own infrastructure, in the agency's own
folder (:data:`webmg_ops.config.clients.AGENCY`), and only that folder's runs reach
it: a client's run never does, since its variables and firewall would then
decide over every client's backups. This action plans, from data the
controller trusts, what ``playbooks/target.yml`` writes there for each
client whose ``backup.repository`` names one of the agency's targets:

- the client's account (``restic-<client>``) and folder
  (``<backup_target_root>/<client>``), checked against the contract;
- each client host's key: its SSH host key (ed25519) from the client's
  enrolled ``known_hosts``, which the host also uses to back up (its
  private half never leaves the host), forced on the target to rclone's
  append-only restic server on that host's own folder;
- the client's controller key (the public half of ``ssh/id_ed25519``),
  forced to SFTP, for retention, checks, drills and offsite copies.

A client that cannot be planned safely (its folder does not validate, its
repository names another account or folder, its key is missing) is left
out and named as a residual risk; the others are prepared all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webmg_ops.actions.base import Action, ActionOutcome, RunContext, ungoverned_vars
from webmg_ops.ansible.runner import PlaybookResult
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import AGENCY, TARGET_GROUP, list_client_names, load_client
from webmg_ops.config.repository_location import SftpLocation, parse_repository_location
from webmg_ops.errors import BadInput, WebmgError
from webmg_ops.remote.keys import public_key_text
from webmg_ops.remote.preflight import HostPreflight
from webmg_ops.remote.ssh import known_host_keys
from webmg_ops.runs.records import ResidualRisk, RunRequest

if TYPE_CHECKING:
    from webmg_ops.config.clients import Client

PLAYBOOK = "target.yml"

#: The folder holding every client's repository folder on a target (the role's default).
TARGET_ROOT = "/srv/restic"
#: Each client's account on a target is this prefix and the client's name.
ACCOUNT_PREFIX = "restic-"
#: The only host key type a host backs up with.
KEY_TYPE = "ssh-ed25519"

#: Extra vars the plan sets; a run may not set them itself.
GOVERNED_VARS = frozenset({"backup_target_clients", "backup_target_root"})


@dataclass(frozen=True)
class PlannedHost:
    """One client host allowed on the target: its name and public key (type and base64)."""

    name: str
    key: str


@dataclass(frozen=True)
class PlannedClient:
    """One client prepared on one target host of the agency."""

    client: str
    target: str
    account: str
    path: str
    controller_key: str
    hosts: tuple[PlannedHost, ...]


@dataclass(frozen=True)
class Left:
    """A client, or one of its hosts, left out of the plan, and why."""

    client: str
    host: str | None
    reason: str


@dataclass(frozen=True)
class TargetPlan:
    """What the target run prepares, and what it leaves out."""

    clients: tuple[PlannedClient, ...]
    left_out: tuple[Left, ...]


def public_key_of(private_key: Path) -> str:
    """Given an OpenSSH private key file (no passphrase), return its public half as
    ``type base64``. Raise BadInput if it is missing or not such a key.
    """
    try:
        return public_key_text(private_key)
    except (OSError, ValueError, TypeError) as error:
        raise BadInput(f"{private_key}: not a readable OpenSSH private key ({error})") from None


def host_key_of(known_hosts: Path, address: str, port: int) -> str | None:
    """Given an enrolled known_hosts, a host's address and SSH port, return its ed25519 host
    key as ``type base64`` (None if it has none there; hashed entries are read too).
    """
    key = known_host_keys(known_hosts, address, port).get(KEY_TYPE)
    return None if key is None else f"{KEY_TYPE} {key}"


def _plan_client(
    inventories: Path, name: str, targets: Mapping[str, str]
) -> tuple[PlannedClient | None, list[Left]]:
    """Given the inventories, a client's name and the agency's targets (address -> host
    name), return the client's plan (None if it is not on a target or cannot be planned)
    and what was left out.
    """
    try:
        client = load_client(inventories, name)
    except WebmgError as error:
        first = str(error).splitlines()[0]
        return None, [Left(name, None, f"its folder does not validate: {first}")]
    text = client.contract.backup.repository
    try:
        location = parse_repository_location(text) if text else None
    except ValueError as error:
        return None, [Left(name, None, str(error))]
    if not isinstance(location, SftpLocation) or location.host not in targets:
        return None, []
    account, path = f"{ACCOUNT_PREFIX}{name}", f"{TARGET_ROOT}/{name}"
    if location.user != account or location.path.rstrip("/") != path:
        return None, [
            Left(name, None, f"its repository must read sftp:{account}@{location.host}:{path}")
        ]
    try:
        controller_key = public_key_of(client.folder / "ssh" / "id_ed25519")
    except BadInput as error:
        return None, [Left(name, None, f"no controller key: {error}")]
    left: list[Left] = []
    hosts: list[PlannedHost] = []
    known_hosts = client.folder / "known_hosts"
    for host in client.hosts:
        key = host_key_of(known_hosts, host.address, host.port) if known_hosts.is_file() else None
        if key is None:
            left.append(Left(name, host.name, f"no enrolled {KEY_TYPE} host key in {known_hosts}"))
            continue
        hosts.append(PlannedHost(host.name, key))
    planned = PlannedClient(
        client=name,
        target=targets[location.host],
        account=account,
        path=path,
        controller_key=controller_key,
        hosts=tuple(hosts),
    )
    return planned, left


def plan_target(agency: Client) -> TargetPlan:
    """Given the agency's loaded folder, return what its target run prepares: every other
    client whose repository is on one of the agency's backup targets.
    """
    targets = {host.address: host.name for host in agency.hosts if TARGET_GROUP in host.groups}
    inventories = agency.folder.parent
    clients: list[PlannedClient] = []
    left: list[Left] = []
    for name in list_client_names(inventories):
        if name == AGENCY:
            continue
        planned, skipped = _plan_client(inventories, name, targets)
        left.extend(skipped)
        if planned is not None:
            clients.append(planned)
    return TargetPlan(clients=tuple(clients), left_out=tuple(left))


def _only_the_agency(client: Client, hosts: Sequence[str]) -> None:
    if client.name != AGENCY:
        raise BadInput(
            f"{client.name}: the backup target is the agency's own infrastructure; it is "
            f"prepared from the agency's folder: webmg-ops run {AGENCY} target"
        )
    groups = {host.name: host.groups for host in client.hosts}
    others = [host for host in hosts if TARGET_GROUP not in groups.get(host, ())]
    if others:
        raise BadInput(f"{', '.join(others)}: not in the {TARGET_GROUP} group")


def make_extra_vars(
    client: Client, hosts: Sequence[str], request: RunRequest, *, vault: Vault | None = None
) -> dict[str, Any]:
    """Given the agency, the run's hosts and the request, return the play's extra vars.

    Raise BadInput for any folder but the agency's, a host outside the target
    group, or a request that sets what the plan decides.
    """
    requested = ungoverned_vars(request, GOVERNED_VARS)
    _only_the_agency(client, hosts)
    plan = plan_target(client)
    return {
        **requested,
        "backup_target_root": TARGET_ROOT,
        "backup_target_clients": [asdict(planned) for planned in plan.clients],
    }


def before_play(context: RunContext, hosts: tuple[str, ...]) -> TargetPlan:
    """Given the run (the agency's) and its hosts, return the plan."""
    return plan_target(context.client)


def make_outcome(
    result: PlaybookResult, preflight: Mapping[str, HostPreflight], before: TargetPlan
) -> ActionOutcome:
    """Given the play's result, preflight and the plan, return what was prepared: each
    client's account, folder and hosts; what was left out is a residual risk.
    """
    prepared = {
        planned.client: {
            "target": planned.target,
            "account": planned.account,
            "path": planned.path,
            "hosts": [host.name for host in planned.hosts],
        }
        for planned in before.clients
    }
    risks = tuple(
        ResidualRisk(
            item.host,
            f"{item.client} not prepared on the backup target"
            if item.host is None
            else f"{item.client}: host not allowed on the backup target",
            item.reason,
        )
        for item in before.left_out
    )
    hosts = sum(len(planned.hosts) for planned in before.clients)
    return ActionOutcome(
        evidence={"clients": prepared, "left_out": [asdict(item) for item in before.left_out]},
        residual_risks=risks,
        next_steps=(
            ("Fix what was left out (enrol the hosts, correct the contract), then run again.",)
            if risks
            else ()
        ),
        summary=(
            f"{len(prepared)} client(s), {hosts} host(s) prepared on the backup target"
            + (f"; {len(risks)} left out" if risks else "")
        ),
    )


ACTION = Action(
    "target",
    PLAYBOOK,
    make_outcome=make_outcome,
    make_extra_vars=make_extra_vars,
    before_play=before_play,
)
