"""`track_interface`: up/down of tracked interfaces, fed by the link monitor's events.

An interface is up as keepalived judges it (IFF_UP and IFF_RUNNING; net/linkmon.py decides).
An interface never reported is unknown (None) and, like a script that has not run yet,
adds nothing: keepalived refuses to track an interface that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping


class InterfaceStates:
    """The last known up/down of every interface the link monitor reported."""

    def __init__(self, initial: Mapping[str, bool] | None = None) -> None:
        self._up: dict[str, bool] = dict(initial or {})

    def on_link(self, ifname: str, up: bool) -> bool:
        """Record an event; True if it changed what we knew."""
        changed = self._up.get(ifname) != up
        self._up[ifname] = up
        return changed

    def is_up(self, ifname: str) -> bool | None:
        return self._up.get(ifname)

    def snapshot(self) -> dict[str, bool]:
        return dict(self._up)


__all__ = ["InterfaceStates"]
