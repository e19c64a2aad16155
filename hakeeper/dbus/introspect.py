"""Writes the interface XML files shipped in dbus/ from the objects' own descriptions.

`python -m hakeeper.dbus.introspect dbus/` regenerates them; a unit test checks the shipped
files equal what this prints, so the documentation cannot drift from the daemon.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hakeeper.dbus.compat import CompatInstance, CompatVrrp
from hakeeper.dbus.export import DOCTYPE, Exported, Interface
from hakeeper.dbus.objects import (
    GroupObject,
    InstanceObject,
    ManagerObject,
    RealServerObject,
    VirtualServerObject,
)

CLASSES: tuple[type[Exported], ...] = (
    ManagerObject,
    InstanceObject,
    GroupObject,
    VirtualServerObject,
    RealServerObject,
    CompatVrrp,
    CompatInstance,
)


def interface_files() -> dict[str, str]:
    """File name -> XML text, one file per interface."""
    out: dict[str, str] = {}
    for cls in CLASSES:
        for iface in cls.interfaces:
            out[f"{iface.name}.xml"] = interface_xml(iface)
    return out


def interface_xml(iface: Interface) -> str:
    return f"{DOCTYPE}\n<node>\n{iface.xml()}\n</node>\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "dbus")
    for name, text in interface_files().items():
        (target / name).write_text(text)
        print(target / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
