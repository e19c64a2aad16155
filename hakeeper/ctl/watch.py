"""`hakeeperctl watch`: hakeeper's signals as a stream of transitions.

Instances and sync groups say `StateChanged(old, new, reason)` themselves; real servers
(up/down, drained) and virtual servers (quorum) only send PropertiesChanged, which may carry
values that did not change, so their last known state is seeded from the List* calls and an
event is a value that differs from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dbus_fast import Message, MessageType

from hakeeper.ctl.client import BUS_DRIVER, EXIT_NOT_RUNNING, Client, CtlError
from hakeeper.ctl.render import rs_state
from hakeeper.dbus.names import (
    BUS_NAME,
    GROUP_IFACE,
    INSTANCE_IFACE,
    MANAGER_IFACE,
    OBJECT_MANAGER_IFACE,
    PROPERTIES_IFACE,
    ROOT_PATH,
    RS_IFACE,
    VS_IFACE,
    unescape_label,
)

MATCH_HAKEEPER = f"type='signal',sender='{BUS_NAME}',path_namespace='{ROOT_PATH}'"
MATCH_OWNER = (
    f"type='signal',sender='{BUS_DRIVER}',interface='{BUS_DRIVER}',"
    f"member='NameOwnerChanged',arg0='{BUS_NAME}'"
)

Event = dict[str, Any]


def _label(path: str, index: int) -> str:
    return unescape_label(path.split("/")[index])


def _event(now: float, kind: str, path: str, old: str, new: str, reason: str) -> Event:
    vs = name = ""
    if kind == "real_server":
        vs, name = _label(path, -3), _label(path, -1)
    elif kind != "reload":
        name = _label(path, -1)
    return {
        "Time": now, "Kind": kind, "Name": name, "VirtualServerName": vs,
        "Old": old, "New": new, "Reason": reason, "Path": path,
    }  # fmt: skip


def _quorum(up: bool) -> str:
    return "UP" if up else "DOWN"


class Watcher:
    """Signals in, events out; `owner` is hakeeper's unique bus name (signals from anyone
    else are ignored)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.rs: dict[str, tuple[bool, bool]] = {}  # path -> (Alive, Enabled)
        self.vs: dict[str, bool] = {}  # path -> QuorumUp

    def seed(self, vs_rows: list[dict[str, Any]], rs_rows: list[dict[str, Any]]) -> None:
        self.vs = {r["Path"]: r["QuorumUp"] for r in vs_rows}
        self.rs = {r["Path"]: (r["Alive"], r["Enabled"]) for r in rs_rows}

    def on_signal(
        self, sender: str, path: str, interface: str, member: str, body: list[Any], now: float
    ) -> list[Event]:
        if interface == BUS_DRIVER and member == "NameOwnerChanged":
            if body[0] == BUS_NAME and not body[2]:
                raise CtlError("hakeeper stopped", EXIT_NOT_RUNNING)
            return []
        if sender != self.owner:
            return []
        if member == "StateChanged" and interface in (INSTANCE_IFACE, GROUP_IFACE):
            kind = "instance" if interface == INSTANCE_IFACE else "group"
            old, new, reason = body
            return [_event(now, kind, path, old, new, reason)]
        if interface == MANAGER_IFACE and member == "Reloaded":
            return [_event(now, "reload", path, "", "", "; ".join(body[0]))]
        if interface == PROPERTIES_IFACE and member == "PropertiesChanged":
            changed = {k: getattr(v, "value", v) for k, v in body[1].items()}
            return self._changed(path, body[0], changed, now)
        if interface == OBJECT_MANAGER_IFACE and member == "InterfacesAdded":
            for iface, props in body[1].items():
                # a server a reload added: known from now on, no event for being born
                self._changed(
                    path, iface, {k: getattr(v, "value", v) for k, v in props.items()}, now
                )
            return []
        if interface == OBJECT_MANAGER_IFACE and member == "InterfacesRemoved":
            self.rs.pop(body[0], None)
            self.vs.pop(body[0], None)
        return []

    def _changed(
        self, path: str, interface: str, changed: dict[str, Any], now: float
    ) -> list[Event]:
        if interface == RS_IFACE and ("Alive" in changed or "Enabled" in changed):
            known = self.rs.get(path)
            alive, enabled = known if known is not None else (True, True)
            new = (changed.get("Alive", alive), changed.get("Enabled", enabled))
            self.rs[path] = new
            if known is None or new == known:
                return []
            old_s, new_s = rs_state(*known), rs_state(*new)
            return [_event(now, "real_server", path, old_s, new_s, changed.get("LastDetail", ""))]
        if interface == VS_IFACE and "QuorumUp" in changed:
            was, up = self.vs.get(path), bool(changed["QuorumUp"])
            self.vs[path] = up
            if was is None or was == up:
                return []
            reason = "quorum regained" if up else "quorum lost"
            return [_event(now, "virtual_server", path, _quorum(was), _quorum(up), reason)]
        return []


async def watch(
    client: Client, emit: Callable[[Event], None], count: int | None, clock: Callable[[], float]
) -> None:
    """Emit events until `count` of them (None: until interrupted or hakeeper stops)."""
    queue: asyncio.Queue[Message | None] = asyncio.Queue()

    def on_message(msg: Message) -> None:
        if msg.message_type is MessageType.SIGNAL:
            queue.put_nowait(msg)

    client.bus.add_message_handler(on_message)
    # a bus that goes away ends the wait too
    lost = asyncio.ensure_future(client.bus.wait_for_disconnect())
    lost.add_done_callback(lambda _: queue.put_nowait(None))
    # one connection handles its messages in order: both rules are in place before the
    # List calls reach hakeeper, so nothing between the seed and the stream is lost
    _, _, owner, vs_rows, rs_rows = await asyncio.gather(
        client.add_match(MATCH_HAKEEPER),
        client.add_match(MATCH_OWNER),
        client.name_owner(),
        client.list_virtual_servers(),
        client.list_real_servers(),
    )
    watcher = Watcher(owner)
    watcher.seed(vs_rows, rs_rows)
    seen = 0
    while count is None or seen < count:
        msg = await queue.get()
        if msg is None:
            raise CtlError(f"lost the connection to {client.where}", EXIT_NOT_RUNNING)
        body = list(msg.body)
        for event in watcher.on_signal(
            msg.sender or "", msg.path or "", msg.interface or "", msg.member or "", body, clock()
        ):
            emit(event)
            seen += 1
            if count is not None and seen >= count:
                break
    lost.cancel()
