"""What a harden run refuses before it touches a host or writes anything: a client
without the agency's management networks, and a client's run aimed at the
shared backup target. Real inventory folders, the real command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from webmg_ops.errors import ExitCode

CLIENT = "alpenhof"
#: Addresses outside the rehearsal lab (TEST-NET-3): a real client's hosts.
REAL_HOSTS = {"alpenhof-web1": "203.0.113.11", "alpenhof-db1": "203.0.113.12"}


def management_file(inventories: Path) -> Path:
    return inventories / CLIENT / "group_vars" / "all" / "management.yml"


def as_real_client(inventories: Path) -> None:
    """Move the client's own hosts out of the lab range (the backup target stays)."""
    file = inventories / CLIENT / "hosts.yml"
    data = yaml.safe_load(file.read_text())
    for group in ("web", "db"):
        for name, host in data["all"]["children"][group]["hosts"].items():
            host["ansible_host"] = REAL_HOSTS[name]
    file.write_text(yaml.safe_dump(data))


def assert_nothing_written(done: Any, tmp_path: Path, *words: str) -> None:
    assert done.code == ExitCode.BAD_INPUT, done
    assert done.err.strip().startswith("Error: "), done
    message = " ".join(done.err.split())
    assert "Traceback" not in done.err
    for word in words:
        assert word in message, done
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_client_without_management_networks_is_refused_before_anything(
    cli: Callable[..., Any], inventories: Path, tmp_path: Path, command: str
) -> None:
    management_file(inventories).unlink()
    as_real_client(inventories)
    done = cli(command, CLIENT, "harden", "--reason", "baseline")
    assert_nothing_written(done, tmp_path, "hardening_management_networks", "not set")


def test_the_lab_range_is_refused_as_the_management_network_of_a_real_client(
    cli: Callable[..., Any], inventories: Path, tmp_path: Path
) -> None:
    as_real_client(inventories)
    assert "198.18.0.0/24" in management_file(inventories).read_text()
    done = cli("run", CLIENT, "harden", "--reason", "baseline")
    assert_nothing_written(done, tmp_path, "hardening_management_networks", "198.18.0.0/24")


@pytest.mark.parametrize(
    ("networks", "word"),
    [("[]", "not set"), ("[not-a-network]", "CIDR"), ("'203.0.113.0/24'", "list")],
)
def test_bad_management_networks_are_refused(
    cli: Callable[..., Any], inventories: Path, tmp_path: Path, networks: str, word: str
) -> None:
    management_file(inventories).write_text(f"hardening_management_networks: {networks}\n")
    done = cli("run", CLIENT, "harden", "--reason", "baseline")
    assert_nothing_written(done, tmp_path, "hardening_management_networks", word)


def test_a_real_client_with_its_own_management_networks_gets_past_the_check(
    cli: Callable[..., Any], inventories: Path
) -> None:
    as_real_client(inventories)
    management_file(inventories).write_text("hardening_management_networks: [203.0.113.0/24]\n")
    done = cli("plan", CLIENT, "harden")
    # The plan may still be refused by the client's window (exit 3), never as bad input.
    assert done.code in (ExitCode.OK, ExitCode.REFUSED), done
    assert "alpenhof-web1" in done.err + done.out


def test_the_plan_hardens_the_clients_own_hosts_only(cli: Callable[..., Any]) -> None:
    done = cli("plan", CLIENT, "harden", "--json")
    assert done.code in (ExitCode.OK, ExitCode.REFUSED), done
    plan = json.loads(done.out or done.err)
    assert plan["batches"] == [["alpenhof-db1", "alpenhof-web1"]]


def test_a_limit_naming_the_backup_target_is_refused(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    # The target is the agency's: it is in no client's inventory, so no client run reaches it.
    done = cli("run", CLIENT, "harden", "--limit", "backup1", "--reason", "baseline")
    assert done.code == ExitCode.BAD_INPUT, done
    assert "Error: --limit 'backup1' matches no host of alpenhof" in done.err
    assert "Traceback" not in done.err
    assert not (tmp_path / "var").exists()


def test_the_agency_hardens_its_backup_target_from_its_own_folder() -> None:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    root = Path(__file__).resolve().parents[2]
    (play,) = yaml.safe_load((root / "playbooks" / "harden.yml").read_text())
    for folder, expected in ((CLIENT, {"alpenhof-web1", "alpenhof-db1"}), ("agency", {"backup1"})):
        inventory = InventoryManager(
            loader=DataLoader(), sources=[str(root / "inventories" / folder / "hosts.yml")]
        )
        assert {host.name for host in inventory.get_hosts(pattern=play["hosts"])} == expected
