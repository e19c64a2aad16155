"""Bus name, paths, interface and error names of hakeeper's D-Bus API, and the path escaping.

Shared by the daemon (hakeeper.dbus) and the client (hakeeperctl) so both spell them alike.
"""

from __future__ import annotations

from functools import lru_cache

BUS_NAME = "org.hakeeper.Hakeeper1"
ROOT_PATH = "/org/hakeeper/Hakeeper1"
MANAGER_IFACE = "org.hakeeper.Hakeeper1.Manager"
INSTANCE_IFACE = "org.hakeeper.Hakeeper1.Instance"
GROUP_IFACE = "org.hakeeper.Hakeeper1.SyncGroup"
VS_IFACE = "org.hakeeper.Hakeeper1.VirtualServer"
RS_IFACE = "org.hakeeper.Hakeeper1.RealServer"
ERROR_PREFIX = "org.hakeeper.Hakeeper1.Error."

PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"
INTROSPECTABLE_IFACE = "org.freedesktop.DBus.Introspectable"
PEER_IFACE = "org.freedesktop.DBus.Peer"

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


@lru_cache(maxsize=16384)  # every List*/path read escapes every name: do it once each
def escape_label(name: str) -> str:
    """systemd's bus label escaping: a D-Bus path element holds only [A-Za-z0-9_], so every
    other byte, `_` itself and a leading digit become `_xx` (hex); the empty name is `_`."""
    if not name:
        return "_"
    out = []
    for i, b in enumerate(name.encode()):
        if b in _SAFE and not (i == 0 and 0x30 <= b <= 0x39):
            out.append(chr(b))
        else:
            out.append(f"_{b:02x}")
    return "".join(out)


def unescape_label(label: str) -> str:
    """The inverse of escape_label; ValueError for a label it cannot have produced."""
    if label == "_":
        return ""
    out = bytearray()
    i = 0
    while i < len(label):
        c = label[i]
        if c == "_":
            if i + 3 > len(label):
                raise ValueError(f"bad escaped path element {label!r}")
            out.append(int(label[i + 1 : i + 3], 16))
            i += 3
        else:
            out += c.encode()
            i += 1
    return out.decode()


def instance_path(name: str) -> str:
    return f"{ROOT_PATH}/instance/{escape_label(name)}"


def group_path(name: str) -> str:
    return f"{ROOT_PATH}/group/{escape_label(name)}"


def virtual_server_path(name: str) -> str:
    return f"{ROOT_PATH}/virtual_server/{escape_label(name)}"


def real_server_path(vs: str, rs: str) -> str:
    return f"{virtual_server_path(vs)}/real_server/{escape_label(rs)}"
