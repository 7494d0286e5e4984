"""The lab network: a bridge owned by the lab, addresses in 198.18.0.0/24 only.

198.18.0.0/15 is reserved for benchmarking test networks (RFC 2544); the lab
uses its first /24 and nothing else. The bridge carries an alias naming the
lab, so that a bridge left behind by a killed run is recognised as the lab's
own and never confused with something else on the machine.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from typing import Any

from webmg_ops.ansible.inventory import LAB_NETWORK as LAB_NETWORK
from webmg_ops.lab import execute

CONTROLLER_ADDRESS = "198.18.0.1"
BRIDGE_NAME = "webmg-lab0"
BRIDGE_ALIAS = "webmg-ops rehearsal lab"
REPO_PORT = 8080
REPO_URL = f"http://{CONTROLLER_ADDRESS}:{REPO_PORT}/debian"
S3_PORT = 9000
S3_URL = f"http://{CONTROLLER_ADDRESS}:{S3_PORT}"
#: The interface systemd-nspawn gives each host on the bridge, seen from inside.
HOST_INTERFACE = "host0"


def _ip_json(argv: list[str]) -> list[dict[str, Any]]:
    text = execute.output(["ip", "-json", *argv])
    document: list[dict[str, Any]] = json.loads(text) if text.strip() else []
    return document


def find_link(name: str) -> dict[str, Any] | None:
    """Given an interface name (or altname), return its ``ip link`` record, or None."""
    for link in _ip_json(["link", "show"]):
        if link.get("ifname") == name or name in link.get("altnames", []):
            return link
    return None


def bridge_is_ours(link: dict[str, Any]) -> bool:
    """Given an ``ip link`` record, return whether it is the lab's bridge."""
    return link.get("ifname") == BRIDGE_NAME and link.get("ifalias") == BRIDGE_ALIAS


def foreign_uses_of_range() -> list[str]:
    """Return descriptions of what, other than the lab's bridge, uses the lab's range.

    Looks at interface addresses and routes that overlap 198.18.0.0/24.
    """
    uses: list[str] = []
    bridge = find_link(BRIDGE_NAME)
    if bridge is not None and not bridge_is_ours(bridge):
        uses.append(f"an interface named {BRIDGE_NAME} that the lab did not make")
    for link in _ip_json(["-4", "address", "show"]):
        if link.get("ifname") == BRIDGE_NAME:
            continue
        for address in link.get("addr_info", []):
            interface = ipaddress.IPv4Interface(f"{address['local']}/{address['prefixlen']}")
            if interface.network.overlaps(LAB_NETWORK):
                uses.append(f"address {interface} on {link.get('ifname')}")
    for route in _ip_json(["-4", "route", "show", "table", "all"]):
        destination = route.get("dst", "")
        if destination in ("default", "") or route.get("dev") == BRIDGE_NAME:
            continue
        try:
            network = ipaddress.IPv4Network(destination, strict=False)
        except ValueError:
            continue
        if network.overlaps(LAB_NETWORK):
            uses.append(f"route {destination} via {route.get('dev')}")
    return uses


def create_bridge() -> None:
    """Create the lab's bridge with the controller's address, marked as the lab's."""
    execute.run(["ip", "link", "add", "name", BRIDGE_NAME, "type", "bridge"])
    execute.run(["ip", "link", "set", "dev", BRIDGE_NAME, "alias", BRIDGE_ALIAS])
    execute.run(
        [
            "ip",
            "address",
            "add",
            f"{CONTROLLER_ADDRESS}/{LAB_NETWORK.prefixlen}",
            "dev",
            BRIDGE_NAME,
        ]
    )
    execute.run(["ip", "link", "set", "dev", BRIDGE_NAME, "up"])


def delete_bridge() -> bool:
    """Delete the lab's bridge if it exists and is the lab's; return whether it was deleted."""
    link = find_link(BRIDGE_NAME)
    if link is None or not bridge_is_ours(link):
        return False
    execute.run(["ip", "link", "delete", "dev", BRIDGE_NAME])
    return True


def delete_veth(name: str) -> bool:
    """Given a recorded host-side veth name, delete it if it is still on the lab's bridge.

    Return whether it was deleted.
    """
    link = find_link(name)
    if link is None or link.get("master") != BRIDGE_NAME:
        return False
    execute.run(["ip", "link", "delete", "dev", str(link["ifname"])], check=False)
    return True


def host_veth(machine: str) -> str | None:
    """Given a host's machine name, return the name of its veth on the bridge, or None.

    systemd-nspawn names it ``vb-<machine>``, shortened when too long, and
    keeps the full name as an altname.
    """
    link = find_link(f"vb-{machine}")
    return None if link is None else str(link["ifname"])


def bridge_ports() -> list[str]:
    """Return the names of the interfaces attached to the lab's bridge."""
    if find_link(BRIDGE_NAME) is None:
        return []
    return [str(link["ifname"]) for link in _ip_json(["link", "show", "master", BRIDGE_NAME])]


def port_answers(address: str, port: int, timeout: float = 0.5) -> bool:
    """Given an address and TCP port, return whether something accepts connections there."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(address: str, port: int, timeout: float) -> bool:
    """Given an address, TCP port and timeout in seconds, return whether it answered in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(address, port):
            return True
        time.sleep(0.1)
    return False


def read_ssh_banner(address: str, port: int = 22, timeout: float = 1.0) -> str | None:
    """Given an address, return the SSH server's banner line there, or None if none answers."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            banner = connection.recv(256).decode(errors="replace")
    except OSError:
        return None
    return banner.strip() if banner.startswith("SSH-") else None
