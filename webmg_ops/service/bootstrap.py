"""Bootstrap: the first contact with a client's servers, from the credentials it gave.

``webmg-ops bootstrap CLIENT [HOST...] --user U --key FILE|--ask-pass`` does
per host what enrolment does (reads the host key, shows its fingerprint, goes
on only once it is accepted), then logs in with the client's credentials,
makes the maintenance account (:mod:`webmg_ops.remote.first_contact`), checks
that the account logs in with the client's key and uses sudo, and only then
trusts the host key in the client's known_hosts. Each bootstrap is recorded
(``host-bootstrapped``, with the enrolment's own entry for a new or changed
key); so is one that changed a host and then failed.

The login's host key is checked against the key just accepted (a throwaway
known_hosts holding it alone): a host that changes its key between the
scan and the login is refused before the credentials are sent.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from webmg_ops.ansible.connection import (
    Connection,
    client_key_path,
    read_inventory_variables,
)
from webmg_ops.ansible.vault import Vault
from webmg_ops.config.clients import load_client
from webmg_ops.errors import BadInput
from webmg_ops.remote.first_contact import (
    ACCOUNT_NAME,
    SUDOERS_DIR,
    FirstContactFailed,
    Login,
    Prepared,
    check_ready,
    prepare_account,
)
from webmg_ops.remote.keys import public_key_text
from webmg_ops.remote.session import host_session
from webmg_ops.remote.ssh import (
    HostKeyProblem,
    Unreachable,
    add_known_host,
    fingerprint,
    load_known_key,
    scan_host_key,
)
from webmg_ops.service.enrol import Confirm
from webmg_ops.service.records import HostRecorder, host_recorder
from webmg_ops.settings import Settings

#: The statuses of a host whose bootstrap did not go through.
NOT_ACCEPTED = "not accepted"
CHANGED_NOT_ACCEPTED = "changed key not accepted"


@dataclass(frozen=True)
class BootstrapResult:
    """What bootstrap did for one host."""

    host: str
    address: str
    fingerprint: str
    status: str
    done: bool
    prepared: Prepared | None = None

    @property
    def refused(self) -> bool:
        """Return whether the host was left alone because its key was not accepted."""
        return self.status in (NOT_ACCEPTED, CHANGED_NOT_ACCEPTED)

    def document(self) -> dict[str, Any]:
        """Return the result as a JSON-ready document."""
        return {
            "host": self.host,
            "address": self.address,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "done": self.done,
            "changed": None if self.prepared is None else self.prepared.changed,
        }


def check_login(login: Login) -> None:
    """Given the client's credentials, raise BadInput unless they name a user and exactly
    one way to log in (a readable key file or a password)."""
    if not ACCOUNT_NAME.fullmatch(login.user):
        raise BadInput(f"--user {login.user!r} is not a user name")
    if (login.key_file is None) == (login.password is None):
        raise BadInput("give the login's key (--key FILE) or its password (--ask-pass), not both")
    if login.key_file is not None and not login.key_file.is_file():
        raise BadInput(f"--key {login.key_file}: no such file")


def _client_key_body(client_dir: Path) -> str:
    key = client_key_path(client_dir)
    try:
        return public_key_text(key).split()[1]
    except FileNotFoundError:
        raise BadInput(
            f"{key} is missing: the client's key is made by webmg-ops client new"
        ) from None
    except (OSError, ValueError, TypeError) as error:
        raise BadInput(f"{key} is not a usable ed25519 private key: {error}") from None


def bootstrap_hosts(
    settings: Settings,
    client_name: str,
    hosts: Iterable[str],
    *,
    login: Login,
    accepted: set[str],
    confirm: Confirm | None,
    vault_password_file: Path | None = None,
) -> list[BootstrapResult]:
    """Given a client, hosts (all when none), the credentials the client gave, accepted
    fingerprints and a confirmation callback, bootstrap each host; return what happened
    per host.

    Raise BadInput (nothing done) for an unknown client or host, a malformed fingerprint
    or login, a missing client key, or an inventory whose maintenance account is root
    or not a user name; EnvironmentProblem if the ledger cannot be opened.
    """
    check_login(login)
    for value in accepted:
        if not value.startswith("SHA256:"):
            raise BadInput(f"--accept {value!r} is not a SHA256 fingerprint (SHA256:...)")
    client = load_client(settings.inventories, client_name)
    connections = read_inventory_variables(client.folder, Vault(vault_password_file)).connections
    chosen = list(hosts) or sorted(connections)
    unknown = [host for host in chosen if host not in connections]
    if unknown:
        raise BadInput(f"{client.name} has no host {', '.join(unknown)}")
    for host in chosen:
        account = connections[host].user
        if account == "root" or not ACCOUNT_NAME.fullmatch(account):
            raise BadInput(
                f"{host}: the maintenance account (ansible_user) is {account!r}: "
                "name an account of its own, such as webmg"
            )
    body = _client_key_body(client.folder)
    results: list[BootstrapResult] = []
    with host_recorder(settings) as record:
        for host in chosen:
            results.append(
                _bootstrap_one(
                    client.name, connections[host], login, body, accepted, confirm, record
                )
            )
    return results


def _bootstrap_one(
    client: str,
    connection: Connection,
    login: Login,
    body: str,
    accepted: set[str],
    confirm: Confirm | None,
    record: HostRecorder,
) -> BootstrapResult:
    host, address = connection.host, connection.address
    try:
        key = scan_host_key(address, connection.port)
    except Unreachable as error:
        return BootstrapResult(host, address, "", f"unreachable: {error}", False)
    shown = fingerprint(key)
    known = load_known_key(connection.known_hosts, address, connection.port)
    previous = fingerprint(known) if known is not None else None
    changed = previous is not None and previous != shown
    if previous != shown and not (
        shown in accepted or (confirm is not None and confirm(host, address, shown, changed))
    ):
        return BootstrapResult(
            host, address, shown, CHANGED_NOT_ACCEPTED if changed else NOT_ACCEPTED, False
        )
    payload: dict[str, Any] = {
        "host": host,
        "address": address,
        "login_user": login.user,
        "login_method": login.method,
        "account": connection.user,
        "sudoers": f"{SUDOERS_DIR}/{connection.user}",
        "fingerprint": shown,
    }
    with tempfile.TemporaryDirectory(prefix="webmg-bootstrap-") as folder:
        # The key just accepted, alone: the login goes on only with the host that showed it.
        accepted_hosts = Path(folder) / "known_hosts"
        add_known_host(accepted_hosts, address, connection.port, key)
        prepared: Prepared | None = None
        sent = False  # whether the script reached the host (it may have changed it, even failing)
        try:
            as_login = replace(
                connection, user=login.user, key_file=login.key_file, known_hosts=accepted_hosts
            )
            with host_session(as_login, password=login.password) as session:
                sent = True
                prepared = prepare_account(session, login, connection.user, body)
            with host_session(replace(connection, known_hosts=accepted_hosts)) as session:
                check_ready(session)
        except (FirstContactFailed, HostKeyProblem, Unreachable) as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            if sent and (prepared is None or prepared.changed):
                # The host may have been changed: that is on record though the account does
                # not work (what changed is unknown when the script itself failed).
                changes = _changes(prepared) if prepared is not None else {}
                record(client, {**payload, **changes, "outcome": "failed", "reason": reason},
                       None, False)  # fmt: skip
            return BootstrapResult(host, address, shown, f"failed: {reason}", False, prepared)
    enrolment = None if previous == shown else {
        "host": host,
        "address": address,
        "key_type": key.get_name(),
        "fingerprint": shown,
        "previous_fingerprint": previous,
    }  # fmt: skip
    # Recorded before the key is trusted: a ledger that fails leaves no key trusted unrecorded.
    record(client, {**payload, **_changes(prepared), "outcome": "succeeded"}, enrolment, changed)
    if enrolment is not None:
        add_known_host(connection.known_hosts, address, connection.port, key)
    status = "bootstrapped" if prepared.changed else "already bootstrapped"
    return BootstrapResult(host, address, shown, status, True, prepared)


def _changes(prepared: Prepared) -> dict[str, bool]:
    return {
        "account_created": prepared.account_created,
        "key_added": prepared.key_added,
        "sudoers_installed": prepared.sudoers_installed,
        "sudo_installed": prepared.sudo_installed,
    }
