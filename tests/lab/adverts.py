"""Hand-made VRRPv3 adverts sent from a lab node: the malformed packets a daemon must count,
report and survive."""

from __future__ import annotations

import sys

from tests.lab.lab import Node

# what is wrong with the packet: "short" (cut off before its last address bytes),
# "checksum" (one checksum byte flipped), "ttl" (TTL 1 instead of 255), "" (nothing)
FAULTS = ("", "short", "checksum", "ttl")


def send_adverts(
    node: Node, vip: str, faults: tuple[str, ...], vrid: int = 51, priority: int = 200
) -> None:
    """One VRRPv3 advert to 224.0.0.18 from `node` per entry of `faults`, in order."""
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise ValueError(f"unknown faults {unknown}")
    script = f"""
import socket
from ipaddress import IPv4Address
from hakeeper.vrrp.packet import Advert, encode
src, dst = IPv4Address("{node.ipv4}"), IPv4Address("224.0.0.18")
good = encode(Advert(3, {vrid}, {priority}, 10, (IPv4Address("{vip}"),)), src, dst)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
for fault in {list(faults)!r}:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1 if fault == "ttl" else 255)
    packet = {{
        "short": good[:-2],
        "checksum": good[:6] + bytes([good[6] ^ 0xFF]) + good[7:],
    }}.get(fault, good)
    s.sendto(packet, (str(dst), 0))
"""
    node.run([sys.executable, "-c", script])
