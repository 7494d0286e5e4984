"""Lab hosts cut off the network for a while: an outage of running hosts, not a reset.

A host's port on the lab's bridge is disabled (the bridge runs no spanning tree,
so a port's state is set by hand): the host keeps running, with everything on
it, its own link up, and nothing reaches it any more. Enabling the port again
brings it back as it was, without the boot and the wiped state of a reset.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from support.lab import Lab
from support.waiting import wait_until
from webmg_ops.lab import network

#: How long a connection attempt waits before a host counts as not answering.
CONNECT_TIMEOUT_SECONDS = 1.0
#: How long a host back on the bridge may take to answer SSH again.
BACK_TIMEOUT_SECONDS = 60


def answers_ssh(address: str) -> bool:
    """Return whether something accepts a TCP connection on ADDRESS's SSH port."""
    try:
        with socket.create_connection((address, 22), timeout=CONNECT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _set_port_state(port: str, state: str) -> None:
    subprocess.run(
        ["bridge", "link", "set", "dev", port, "state", state],
        check=True,
        capture_output=True,
        timeout=30,
    )


@contextmanager
def unreachable(lab: Lab, *names: str) -> Iterator[dict[str, str]]:
    """Within the block, the lab hosts NAMES are cut off the lab's bridge; yield their
    addresses by name. Afterwards, whatever happens, their ports forward again and the
    block ends once each host answers SSH again.
    """
    addresses = {name: str(lab.host(name)["address"]) for name in names}
    ports = {name: network.host_veth(name) for name in names}
    missing = sorted(name for name, port in ports.items() if port is None)
    assert not missing, f"no port on the lab's bridge for {missing}"
    disabled: list[str] = []
    try:
        for port in ports.values():
            assert port is not None
            disabled.append(port)
            _set_port_state(port, "0")  # disabled
        yield addresses
    finally:
        for port in disabled:
            _set_port_state(port, "3")  # forwarding
        back = wait_until(
            lambda: all(answers_ssh(address) for address in addresses.values()),
            BACK_TIMEOUT_SECONDS,
        )
        assert back, f"{', '.join(names)} did not answer SSH again after the outage"
