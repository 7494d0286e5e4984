#!/usr/bin/python3
"""Print the listening TCP and UDP sockets of this host as JSON (read from /proc)."""

import json
import socket
import struct


def address(hex_address: str, family: int) -> str:
    raw = bytes.fromhex(hex_address)
    if family == socket.AF_INET:
        return socket.inet_ntop(family, struct.pack("<I", int(hex_address, 16)))
    words = struct.unpack("<4I", raw)
    return socket.inet_ntop(family, struct.pack(">4I", *words))


def sockets(path: str, protocol: str, family: int) -> list:
    found = []
    try:
        lines = open(path, encoding="ascii").read().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        local, state = fields[1], fields[3]
        # TCP state 0A is LISTEN; an unconnected UDP socket is state 07.
        if (protocol == "tcp" and state != "0A") or (protocol == "udp" and state != "07"):
            continue
        host, port = local.split(":")
        found.append({"protocol": protocol, "address": address(host, family), "port": int(port, 16)})
    return found


ports = []
for file, protocol, family in (
    ("/proc/net/tcp", "tcp", socket.AF_INET),
    ("/proc/net/tcp6", "tcp", socket.AF_INET6),
    ("/proc/net/udp", "udp", socket.AF_INET),
    ("/proc/net/udp6", "udp", socket.AF_INET6),
):
    ports.extend(sockets(file, protocol, family))
unique = {(p["protocol"], p["address"], p["port"]): p for p in ports}
print(json.dumps(sorted(unique.values(), key=lambda p: (p["protocol"], p["port"], p["address"]))))
