"""Helpers of the lab tests: the running lab and the ways tests reach it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from support.capability import missing
from webmg_ops.lab import environment
from webmg_ops.ledger import Entry, open_ledger
from webmg_ops.remote.ssh import openssh_argv
from webmg_ops.settings import Settings

COMMAND_TIMEOUT_SECONDS = 180


def require_lab_capabilities() -> None:
    """Fail (or skip, with the opt-out set) unless this process can run the lab."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the rehearsal lab needs root")
    absent = environment.missing_tools()
    if absent:
        problems.append(f"missing tools: {', '.join(sorted(absent))} (make setup)")
    if problems:
        missing("; ".join(problems))


class Lab:
    """A running lab and the ways tests reach it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inventories = root / "inventories"
        self.lab_dir = root / "lab"
        self.control_dir = root / "ssh-control"
        self.env = {
            **os.environ,
            "WEBMG_INVENTORIES": str(self.inventories),
            "WEBMG_LAB_DIR": str(self.lab_dir),
            "WEBMG_VAR": str(root / "var"),
            # Written by `lab up`: it decrypts the lab clients' group_vars/all/vault.yml.
            "WEBMG_VAULT_PASSWORD_FILE": str(self.lab_dir / "vault-password"),
            "COLUMNS": "200",
        }

    def cli(
        self,
        *args: str,
        timeout: float = COMMAND_TIMEOUT_SECONDS,
        input: str | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``webmg-ops ARGS`` on the test lab (INPUT on its standard input, and
        EXTRA_ENV over the lab's environment, if given) and return how it went."""
        return subprocess.run(
            [sys.executable, "-m", "webmg_ops.cli.main", *args],
            input=input,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @property
    def settings(self) -> Settings:
        """Return the settings of the lab's inventories, ledger and var folder."""
        var_dir = self.root / "var"
        return Settings(
            inventories=self.inventories,
            ledger_url=f"sqlite:///{var_dir / 'ledger.db'}",
            var_dir=var_dir,
        )

    def inventories_apart(self, folder: Path) -> Path:
        """Copy the lab's inventories into FOLDER and return the copy, each offsite target
        under a key prefix named for FOLDER.

        A test whose runs record into a ledger of its own uses the copy: its checkpoints
        are then published apart from the lab ledger's, which ``ledger verify
        --against-published`` would otherwise take for a rewritten history.
        """
        copy = folder / "inventories"
        shutil.copytree(self.inventories, copy)
        for contract in copy.glob("*/client.yml"):
            document = yaml.safe_load(contract.read_text())
            offsite = (document.get("backup") or {}).get("offsite")
            if offsite is not None:
                offsite["prefix"] = f"{offsite.get('prefix', '')}apart-{folder.name}/"
                contract.write_text(yaml.safe_dump(document, sort_keys=False))
        return copy

    def entries(self, kind: str | None = None, client: str | None = None) -> list[Entry]:
        """Return the ledger entries of the lab's ledger (optionally of one kind and client)."""
        with open_ledger(self.settings.ledger_url, create=False, missing_ok=True) as ledger:
            return list(ledger.entries(client=client, kinds=(kind,) if kind else None))

    def diagnosed(self, client: str) -> None:
        """Make sure CLIENT has a diagnostic on record (changes wait for one): run a real
        ``diagnose`` the first time a test needs it.
        """
        recorded = any(
            entry.payload.get("action") == "diagnose"
            and entry.payload.get("outcome") == "succeeded"
            for entry in self.entries("run-finished", client)
        )
        if not recorded:
            done = self.cli("diagnose", client, "--reason", "scoping before changes", "--json")
            assert done.returncode == 0, done.stderr

    def status(self) -> dict[str, Any]:
        """Return ``lab status --json``."""
        done = self.cli("lab", "status", "--json")
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def host(self, name: str) -> dict[str, Any]:
        """Return one host's entry of ``lab status --json``."""
        return next(host for host in self.status()["hosts"] if host["name"] == name)

    def ssh_argv(self, address: str, command: str, user: str = "webmg") -> list[str]:
        """Return the real ssh's argv running COMMAND on a host, host keys checked strictly."""
        return [
            *openssh_argv(
                self.lab_dir / "identity" / "id_ed25519",
                self.lab_dir / "known_hosts",
                f"{user}@{address}",
                options=("ConnectTimeout=10",),
            ),
            command,
        ]

    def ssh(
        self, address: str, command: str, user: str = "webmg"
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on a host with the real ssh, checking host keys strictly."""
        return subprocess.run(
            self.ssh_argv(address, command, user),
            capture_output=True,
            # A forced command may answer in binary (the backup target's HTTP/2 server):
            # undecodable bytes must not fail the test that provokes them.
            text=True,
            errors="replace",
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )

    def reset(self, name: str) -> None:
        """Reset a host a test changed: bare again, same identity."""
        done = self.cli("lab", "reset", name)
        assert done.returncode == 0, done.stderr

    @contextmanager
    def resetting(self, *names: str) -> Iterator[None]:
        """Within the block a test may change the hosts NAMES: they are reset afterwards,
        whatever happens, so that no failure leaks into the next test."""
        try:
            yield
        finally:
            for name in names:
                self.reset(name)

    def ansible_env(self) -> dict[str, str]:
        """Return the environment for Ansible, with its SSH masters under the test's folder."""
        self.control_dir.mkdir(exist_ok=True)
        return {
            **self.env,
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir),
            # The lab clients' group_vars/all/vault.yml is encrypted with the lab's password.
            "ANSIBLE_VAULT_PASSWORD_FILE": self.env["WEBMG_VAULT_PASSWORD_FILE"],
        }

    def end_ssh_masters(self) -> None:
        """End the ControlPersist ssh masters that Ansible left (they outlive its run)."""
        if not self.control_dir.is_dir():
            return
        for socket in self.control_dir.iterdir():
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "lab-host"],
                capture_output=True,
                timeout=30,
                check=False,
            )


@contextlib.contextmanager
def edited_contract(
    inventories: Path, client: str, change: Callable[[dict[str, Any]], None]
) -> Iterator[Path]:
    """Within the block, the client's contract carries ``change``; restored afterwards."""
    file = inventories / client / "client.yml"
    original = file.read_text()
    data = yaml.safe_load(original)
    change(data)
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        yield file
    finally:
        file.write_text(original)


@contextlib.contextmanager
def edited_file(file: Path, text: str) -> Iterator[Path]:
    """Within the block, FILE holds TEXT; its original content (or absence) comes back."""
    original = file.read_text() if file.exists() else None
    file.write_text(text)
    try:
        yield file
    finally:
        if original is None:
            file.unlink()
        else:
            file.write_text(original)
