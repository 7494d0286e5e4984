"""Parts of the lab that need no root: inventories, topology, environment checks, records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from webmg_ops.ansible.inventory import InventoryHost, is_lab_address, read_inventory_hosts
from webmg_ops.errors import BadInput, EnvironmentProblem, ExitCode
from webmg_ops.lab import control, environment, keys, topology
from webmg_ops.lab.state import is_running, record_process
from webmg_ops.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_reads_a_yaml_inventory_with_ansible(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    web:\n      hosts:\n        w1:\n"
        "          ansible_host: 198.18.0.9\n          ansible_user: deploy\n"
        "    db:\n      hosts:\n        w1:\n        d1:\n          ansible_port: 2222\n"
    )
    assert read_inventory_hosts(tmp_path) == [
        InventoryHost(name="d1", address="d1", port=2222, user=None, groups=("db",)),
        InventoryHost(
            name="w1", address="198.18.0.9", port=22, user="deploy", groups=("db", "web")
        ),
    ]


def test_reads_an_ini_inventory(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nw1 ansible_host=198.18.0.9\nlone\n")
    hosts = read_inventory_hosts(tmp_path)
    assert [(h.name, h.address, h.groups) for h in hosts] == [
        ("lone", "lone", ("web",)),
        ("w1", "198.18.0.9", ("web",)),
    ]


def test_a_missing_or_malformed_inventory_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no inventory file"):
        read_inventory_hosts(tmp_path)
    (tmp_path / "hosts.yml").write_text("all: [unbalanced\n")
    with pytest.raises(BadInput, match=r"hosts\.yml"):
        read_inventory_hosts(tmp_path)


def test_lab_addresses_are_the_lab_range_only() -> None:
    assert is_lab_address("198.18.0.5")
    assert not is_lab_address("198.18.1.5")
    assert not is_lab_address("not-an-address")


def test_the_demo_hosts_are_made_once_with_roles_from_their_groups() -> None:
    hosts = topology.lab_hosts(REPO / "inventories")
    names = [host.name for host in hosts]
    assert len(names) == len(set(names))
    # The backup target is the agency's alone: no client's inventory names it.
    shared = next(host for host in hosts if host.name == "backup1")
    assert shared.role == "plain" and shared.clients == ("agency",)
    assert {host.role for host in hosts} == {"web", "db", "plain"}


def test_one_name_at_two_addresses_is_bad_input(tmp_path: Path) -> None:
    for client, address in (("a", "198.18.0.5"), ("b", "198.18.0.6")):
        (tmp_path / client).mkdir()
        (tmp_path / client / "hosts.yml").write_text(
            f"all:\n  hosts:\n    backup1:\n      ansible_host: {address}\n"
        )
    with pytest.raises(BadInput, match="backup1"):
        topology.lab_hosts(tmp_path)


def test_not_root_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match="root") as raised:
        environment.check_root(euid=1000)
    assert raised.value.exit_code == ExitCode.ENVIRONMENT
    environment.check_root(euid=0)
    settings = Settings(inventories=REPO / "inventories", ledger_url="", var_dir=Path("var"))
    with pytest.raises(EnvironmentProblem):
        control.bring_up(settings, euid=1000)
    with pytest.raises(EnvironmentProblem):
        control.bring_down(settings, euid=1000)


def test_an_unknown_host_is_bad_input_before_anything_runs() -> None:
    settings = Settings(inventories=REPO / "inventories", ledger_url="", var_dir=Path("var"))
    with pytest.raises(BadInput, match="NO-SUCH-HOST"):
        control.reset_host(settings, "NO-SUCH-HOST", euid=1000)


def test_known_hosts_lines_key_hosts_by_address(tmp_path: Path) -> None:
    public = keys.generate_key_pair(tmp_path / "key", "root@h1")
    line = keys.known_hosts_line("198.18.0.5", 22, public)
    assert line == " ".join(["198.18.0.5", *public.split()[:2]])
    assert keys.known_hosts_line("198.18.0.5", 2222, public).startswith("[198.18.0.5]:2222 ")
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600


def test_a_process_is_known_by_pid_and_start_time() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        record = record_process(child.pid, "sleeper")
        assert is_running(record)
        assert not is_running(record.model_copy(update={"start_time": record.start_time + 1}))
        child.kill()
        child.wait()
    assert not is_running(record)
    assert is_running(record_process(os.getpid(), "self"))
