"""A new client's folder: ``client new`` writes what taking on a client starts from.

``inventories/<client>/`` gets a commented contract from its sector's preset
(a prospect unless a level is given), an inventory with the contract's groups
and no host yet, the connection variables, a fresh ed25519 key pair for the
client's hosts and an encrypted vault holding a new restic password. Every
value the agency must replace is a safe default that validates, with a
comment saying what to put there.

All of it is written into a hidden folder beside the client's, renamed into
place at the end: a refusal or a failure leaves nothing behind.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from webmg_ops.ansible.connection import CLIENT_KEY_FILE
from webmg_ops.ansible.vault import CLIENT_VAULT_FILE, RESTIC_PASSWORD_VARIABLE, encrypt_values
from webmg_ops.config.clients import CONTRACT_FILE
from webmg_ops.config.contract import Level, Sector, is_client_name
from webmg_ops.config.policy import SECTOR_PRESETS, describe_freeze_dates, describe_value
from webmg_ops.errors import BadInput, EnvironmentProblem
from webmg_ops.remote.keys import generate_key_pair, write_private

#: The inventory file of a new client.
INVENTORY_FILE = "hosts.yml"
#: The connection variables of a new client, relative to its folder.
CONNECTION_FILE = Path("group_vars") / "all" / "main.yml"
#: The account the engine logs in as on every host, with passwordless sudo.
MAINTENANCE_ACCOUNT = "webmg"
#: The inventory groups the contract's defaults name (restore check: web; databases: db).
GROUPS = ("web", "db")
#: Bytes of randomness in the generated restic password (43 URL-safe characters).
RESTIC_PASSWORD_BYTES = 32


@dataclass(frozen=True)
class NewClient:
    """A client folder just written: where, which files (relative to it), the public key."""

    name: str
    folder: Path
    files: tuple[Path, ...]
    public_key: str
    level: Level | None


def display_name_of(name: str) -> str:
    """Given a client name (a slug), return the display name guessed from it."""
    return " ".join(word.capitalize() for word in name.split("-"))


def _comment_out(text: str) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in text.splitlines())


def _preset_lines(sector: Sector) -> str:
    preset = SECTOR_PRESETS[sector]
    lines = [
        f"#   {setting}: {describe_value(value, setting)}"
        for setting, value in preset.settings.items()
    ]
    lines += [
        f"#   freeze {freeze.name!r}: {describe_freeze_dates(freeze)}\n#     ({freeze.reason})"
        for freeze in preset.freezes
    ]
    return "\n".join(lines) + "\n"


def _sector_examples(sector: Sector, name: str) -> tuple[str, str]:
    """Return the health check's extra lines and the backup's extra lines for a sector."""
    check = ""
    backup = ""
    if sector is Sector.HOTEL:
        check = (
            "#     # The hotel preset checks the page's weight on every probe: its budget in kB.\n"
            "#     page_weight_kb: 1500\n"
        )
    if sector is Sector.NGO:
        backup = (
            "  # The NGO preset reads the donor export back from each backup: replace with\n"
            "  # the export your accounting reads (inside one of the paths above).\n"
            "  # donor_export:\n"
            f"  #   path: /var/lib/{name}/exports/donors.csv\n"
            "  #   host_group: web\n"
            "  #   min_rows: 1\n"
            "  #   max_age: 2d\n"
        )
    return check, backup


def contract_text(name: str, sector: Sector, level: Level | None) -> str:
    """Given a client name, its sector and level (None: a prospect), return the text of
    its new ``client.yml``: commented, valid, every value to replace marked so.
    """
    display = display_name_of(name)
    owner = f"business_owner:\n  name: Business owner of {display}\n  email: owner@{name}.example\n"
    window = (
        "windows:\n"
        "  - name: weekly\n"
        "    weekdays: [tue]\n"
        '    start: "22:00"\n'
        "    duration: 2h\n"
        "    timezone: UTC\n"
    )
    if level is None:
        level_block = (
            "# No level yet: a prospect, for which only check and diagnose run. When the\n"
            "# diagnostic has recommended a level and the client has chosen, add it here\n"
            "# (stability-security, continuous-evolution or institutional-sla):\n"
            "# level: stability-security\n"
        )
        owner_block = (
            "# Who arbitrates business priorities and accepts changes. A prospect may lack one\n"
            "# (the diagnostic then says it is not a fit yet); a level needs one. Uncomment\n"
            "# and replace with the client's owner:\n" + _comment_out(owner)
        )
        window_block = (
            "# When changes may run, in the client's time zone (a level needs one at least).\n"
            "# Uncomment and replace with the slot agreed with the client:\n" + _comment_out(window)
        )
    else:
        level_block = (
            "# The service level bought: `webmg-ops policy "
            f"{name}` shows what it implies.\n"
            f"level: {level.value}\n"
        )
        owner_block = (
            "# Who arbitrates business priorities and accepts changes: replace with the\n"
            "# client's owner (the .example address reaches nobody).\n" + owner
        )
        window_block = (
            "# When changes may run: replace with the slot agreed with the client, in its\n"
            "# IANA time zone (Europe/Vienna); a run outside every window is refused.\n" + window
        )
    check_extra, backup_extra = _sector_examples(sector, name)
    return (
        f"# {display}: the contract of a new client, written by `webmg-ops client new`.\n"
        "# Each value said to be replaced is a safe default that validates: replace it\n"
        "# with what the client agreed. `webmg-ops schema --markdown` (the README's\n"
        "# contract reference) describes every field.\n"
        f"name: {name}\n"
        "# The name shown in run logs and reports: replace with the client's own spelling.\n"
        f"display_name: {display}\n"
        "# The language of the client's reports: en or fr.\n"
        "language: en\n"
        f"sector: {sector.value}\n"
        f"# The {sector.value} preset adds to every level (`webmg-ops policy {name}`\n"
        "# shows the effective values and where each comes from):\n"
        f"{_preset_lines(sector)}"
        f"{level_block}"
        f"{owner_block}"
        "# People told about maintenance, each with an email or a phone: replace with\n"
        "# the client's contacts.\n"
        "contacts:\n"
        "  - role: technical contact\n"
        f"    name: Technical contact of {display}\n"
        f"    email: it@{name}.example\n"
        "# The escalation path for incidents, in order; each step is contacted when the\n"
        "# previous one is silent for its `after`. Replace with the client's people:\n"
        "# escalation:\n"
        "#   - role: technical contact\n"
        f"#     name: Technical contact of {display}\n"
        '#     phone: "+00 000 000 000"\n'
        "#     after: 4h\n"
        f"{window_block}"
        "# When the client's business is open: SLA clocks run in these hours. Replace the\n"
        "# time zone with the client's (Europe/Vienna) and add its country (ISO code, AT)\n"
        "# so that its public holidays do not count.\n"
        "business_hours:\n"
        "  weekdays: [mon, tue, wed, thu, fri]\n"
        '  start: "09:00"\n'
        '  end: "18:00"\n'
        "  timezone: UTC\n"
        "# Periods without changes, added to the sector's above, for example:\n"
        "#   - name: christmas\n"
        "#     start: 2026-12-20\n"
        "#     end: 2027-01-06\n"
        "#     yearly: true\n"
        "#     reason: holiday season\n"
        "freezes: []\n"
        "# What the agency maintains, and what stays with the client: replace with the\n"
        "# systems agreed (website, database, backups; e-mail, payment provider).\n"
        "scope:\n"
        "  included: []\n"
        "  excluded: []\n"
        "# HTTP checks of the client's services, probed by the monitor, for example:\n"
        "#   - name: website\n"
        f"#     url: https://www.{name}.example/health\n"
        "#     max_latency_ms: 1000\n"
        f"{check_extra}"
        "health_checks: []\n"
        "# What each backup holds and where it goes. Without a repository no backup\n"
        "# runs: add the client's repository on the agency's backup target (replace\n"
        "# BACKUP-TARGET with its address) or in an S3 bucket (its keys in the vault).\n"
        "# Its restic password is already in the vault (group_vars/all/vault.yml).\n"
        "backup:\n"
        "  paths: [/etc]\n"
        "  # databases:\n"
        "  #   - name: replace with the database's name\n"
        "  #     engine: postgresql\n"
        "  #     host_group: db\n"
        f"  # repository: sftp:restic-{name}@BACKUP-TARGET:/srv/restic/{name}\n"
        f"{backup_extra}"
        "# The scoping questionnaire, read by `webmg-ops diagnose`: answer each with true\n"
        "# or false after the scoping call; an empty answer reads as to clarify.\n"
        "fit:\n"
        "  in_production:\n"
        "  business_dependency:\n"
        "  availability_requirements:\n"
        "  sensitive_data:\n"
        "  evolution_required:\n"
        "  stabilized:\n"
        "  experimental:\n"
        "  governance_accepted:\n"
        '  notes: ""\n'
    )


def inventory_text(name: str) -> str:
    """Given a client name, return its new ``hosts.yml``: the contract's groups, no host,
    a commented example of one.
    """
    groups = "".join(
        f"    {group}:\n"
        "      hosts:\n"
        f"        # {name}-{group}1:\n"
        f"        #   ansible_host: 203.0.113.{10 * (index + 1)}\n"
        for index, group in enumerate(GROUPS)
    )
    return (
        f"# {display_name_of(name)}'s hosts: an ordinary Ansible inventory. `validate`\n"
        "# refuses it until it lists a host: add each server under its group (replace\n"
        "# the commented examples with the client's names and addresses), validate,\n"
        f"# then bootstrap them with the client's login (webmg-ops bootstrap {name}).\n"
        "all:\n"
        "  children:\n"
        f"{groups}"
    )


def connection_text(name: str) -> str:
    """Given a client name, return its new ``group_vars/all/main.yml``."""
    return (
        "# Connection: the maintenance account. It must exist on every host with the\n"
        f"# agency's key for {name} (ssh/id_ed25519.pub) in its authorized_keys and\n"
        "# passwordless sudo. The engine adds the trust settings itself: that key, offered\n"
        "# alone, and the host keys enrolled in known_hosts, strictly checked.\n"
        f"ansible_user: {MAINTENANCE_ACCOUNT}\n"
        "ansible_become: true\n"
        "# Hardening accepts SSH only from the agency's management networks: before the\n"
        "# first harden, set them (replace with your networks), for example:\n"
        "# hardening_management_networks:\n"
        "#   - 192.0.2.0/24\n"
    )


def _check_new(inventories: Path, name: str) -> Path:
    """Return the folder of a new client, or raise BadInput saying why it cannot be made."""
    if not is_client_name(name):
        raise BadInput(
            f"invalid client name {name!r}: use lowercase letters, digits and hyphens, "
            "starting with a letter or digit"
        )
    if not inventories.is_dir():
        raise BadInput(f"inventories folder {inventories} does not exist")
    folder = inventories / name
    if folder.exists() or folder.is_symlink():
        raise BadInput(f"{folder} already exists: a new client needs a name of its own")
    return folder


def _write(folder: Path, relative: Path, text: str) -> Path:
    write_private(folder / relative, text)
    return relative


def scaffold_client(
    inventories: Path, name: str, sector: Sector, level: Level | None, vault_password: bytes
) -> NewClient:
    """Given the inventories folder, a new client's name, sector, level (None: a prospect)
    and the vault password, write the client's folder and return what was written.

    Raise BadInput, having written nothing, if the name is not a safe slug, the
    inventories folder is missing, anything exists at the client's name, or the vault
    password is empty; EnvironmentProblem, having kept nothing, if a file cannot be
    written.
    """
    folder = _check_new(inventories, name)
    if not vault_password:
        raise BadInput("the vault password file is empty: a client's vault needs a password")
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".new", dir=inventories))
    except OSError as error:
        raise EnvironmentProblem(f"cannot write in {inventories}: {error.strerror}") from None
    try:
        files = [
            _write(building, Path(INVENTORY_FILE), inventory_text(name)),
            _write(building, CONNECTION_FILE, connection_text(name)),
        ]
        vault = encrypt_values(
            {RESTIC_PASSWORD_VARIABLE: secrets.token_urlsafe(RESTIC_PASSWORD_BYTES)},
            vault_password,
        )
        write_private(building / CLIENT_VAULT_FILE, vault)
        files.append(CLIENT_VAULT_FILE)
        public_key = generate_key_pair(building / CLIENT_KEY_FILE, f"webmg-ops-{name}")
        files += [CLIENT_KEY_FILE, CLIENT_KEY_FILE.with_name(CLIENT_KEY_FILE.name + ".pub")]
        # The contract last: until it is there, no command takes the folder for a client.
        files.append(_write(building, Path(CONTRACT_FILE), contract_text(name, sector, level)))
        if folder.exists() or folder.is_symlink():
            raise BadInput(f"{folder} appeared while it was being written: nothing was kept")
        building.rename(folder)
    except OSError as error:
        shutil.rmtree(building, ignore_errors=True)
        raise EnvironmentProblem(
            f"cannot write {folder}: {error.strerror or error}; nothing was kept"
        ) from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return NewClient(
        name=name, folder=folder, files=tuple(files), public_key=public_key, level=level
    )
