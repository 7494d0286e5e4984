"""``lab down`` removes exactly what the lab made, and a second ``down`` is harmless.

Runs after every other lab test (see ``conftest.pytest_collection_modifyitems``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.lab import Lab

from webmg_ops.lab import mounts, network
from webmg_ops.lab.state import HostRuntime, LabState, ProcessRecord, is_running

pytestmark = pytest.mark.lab


def _all_net_namespaces() -> set[str]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.add(str((entry / "ns/net").readlink()))
            except OSError:
                continue
    return found


def test_down_leaves_nothing_of_the_lab(lab: Lab) -> None:
    recorded = LabState.model_validate_json((lab.lab_dir / "state.json").read_text())
    processes: list[ProcessRecord] = list(recorded.services.values())
    namespaces: set[str] = set()
    veths: set[str] = set()
    for name, host in recorded.hosts.items():
        runtime_file = lab.lab_dir / "hosts" / name / "runtime.json"
        runtime = HostRuntime.model_validate_json(runtime_file.read_text())
        processes += [p for p in (host.supervisor, runtime.nspawn, runtime.leader) if p]
        namespaces.update(host.netns + ([runtime.netns] if runtime.netns else []))
        veths.update(host.veths + ([runtime.veth] if runtime.veth else []))
    assert processes and namespaces and veths
    cgroup_dirs = [Path(folder) for host in recorded.hosts.values() for folder in host.cgroups]

    first = lab.cli("lab", "down")
    assert first.returncode == 0, first.stderr

    assert not [p for p in processes if is_running(p)]
    assert not namespaces & _all_net_namespaces()
    assert not [veth for veth in veths if network.find_link(veth)]
    assert network.find_link(network.BRIDGE_NAME) is None
    assert not mounts.mounts_under(lab.lab_dir)
    assert not [folder for folder in cgroup_dirs if folder.exists()]
    assert not (lab.lab_dir / "state.json").exists()
    assert not any(
        entry.startswith("vb-") for entry in (p.name for p in Path("/sys/class/net").iterdir())
    )
    # Identity is kept, so known_hosts stays valid across down and up.
    assert (lab.lab_dir / "identity" / "id_ed25519").is_file()
    assert (lab.lab_dir / "known_hosts").is_file()

    second = lab.cli("lab", "down")
    assert second.returncode == 0, second.stderr
    status = lab.cli("lab", "status", "--json")
    assert json.loads(status.stdout)["up"] is False
