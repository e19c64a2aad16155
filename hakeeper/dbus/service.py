"""The daemon's D-Bus connection: owns the names, dispatches calls, emits the signals.

Calls are dispatched by the objects' own descriptions (hakeeper.dbus.export), straight from
dbus-fast's low-level message handler: property reads and the List* methods are answered in
the same loop turn; control methods first learn the caller's uid from the bus (cached per
connection) and refuse anyone but root, whatever the bus policy says. Model events mark objects
dirty; one flush per loop turn sends the PropertiesChanged of what really changed and the
ObjectManager's InterfacesAdded/Removed. Nothing here stores the model's state: the last sent
values are kept only to say what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Protocol

from dbus_fast import BusType, Message, MessageType, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus

from hakeeper.control import ControlError
from hakeeper.dbus import wire
from hakeeper.dbus.export import CallError, Exported, Method, node_xml
from hakeeper.dbus.names import (
    ERROR_PREFIX,
    INTROSPECTABLE_IFACE,
    OBJECT_MANAGER_IFACE,
    PEER_IFACE,
    PROPERTIES_IFACE,
)
from hakeeper.state import Event, Runtime

log = logging.getLogger("hakeeper.dbus")

ERR = "org.freedesktop.DBus.Error."
RECONNECT_MIN, RECONNECT_MAX = 1.0, 30.0  # seconds between attempts after losing the bus
UID_CACHE = 256  # unique names are never reused on a bus: a small LRU is always right


class Provider(Protocol):
    """A family of objects under one bus name (hakeeper's own, keepalived's)."""

    bus_name: str
    tree: str  # every object of the family is at or below this path
    object_manager: str | None  # the path serving GetManagedObjects for this family

    def wanted(self, have: dict[str, Exported]) -> dict[str, Exported]: ...
    def touched(self, event: Event) -> list[str]: ...


def bus_for(address: str) -> MessageBus:
    if address == "system":
        return MessageBus(bus_type=BusType.SYSTEM)
    if address == "session":
        return MessageBus(bus_type=BusType.SESSION)
    return MessageBus(bus_address=address)


class DbusService:
    def __init__(self, runtime: Runtime, providers: Iterable[Provider], address: str) -> None:
        self.runtime = runtime
        self.providers = list(providers)
        self.address = address
        self.bus: MessageBus | None = None
        self.objects: dict[str, Exported] = {}
        self._owner: dict[str, Provider] = {}  # path -> the family it belongs to
        self._sent: dict[str, dict[str, Any]] = {}  # path -> last PropertiesChanged values
        self._dirty: set[str] = set()
        self._resync = False
        self._flush_handle: asyncio.Handle | None = None
        self._uids: OrderedDict[str, int] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> bool:
        """Connect and own the names. False (logged once) when there is no bus to use.
        Once connected, a lost connection (the bus daemon restarted) is re-made by itself."""
        try:
            await self._connect()
        except Exception as e:  # no socket, refused, auth failure: D-Bus is simply off
            log.warning("D-Bus is off: cannot connect to the %s bus: %s", self.address, e)
            return False
        self.runtime.subscribe(self._on_event)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        self._hook("started")
        return True

    async def _supervise(self) -> None:
        delay = RECONNECT_MIN
        while True:
            bus = self.bus
            if bus is not None:
                # returns on a clean disconnect, raises (EOFError...) when the bus went away
                with contextlib.suppress(Exception):
                    await bus.wait_for_disconnect()
                if self._stopping:
                    return
                self.bus = None
                log.warning("D-Bus: connection to the %s bus lost; reconnecting", self.address)
                self.runtime.count("dbus_reconnects")
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except Exception as e:
                delay = min(delay * 2, RECONNECT_MAX)
                log.debug("D-Bus: reconnect failed: %s", e)
                continue
            delay = RECONNECT_MIN
            self._hook("started")

    async def _connect(self) -> None:
        bus = await bus_for(self.address).connect()
        wire.tolerate_full_socket(bus)
        self.bus = bus
        self._uids.clear()  # unique names belong to one bus daemon's lifetime
        bus.add_message_handler(self._on_message)
        self._sync_objects(announce=False)
        for name in dict.fromkeys(p.bus_name for p in self.providers):
            try:
                reply = await bus.request_name(name, NameFlag.DO_NOT_QUEUE)
            except Exception as e:
                log.error("D-Bus: cannot own %s: %s", name, e)
                continue
            if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
                log.error("D-Bus: %s is owned by another process; not serving it", name)
            else:
                log.info("D-Bus: serving %s on the %s bus", name, self.address)

    async def stop(self) -> None:
        """Last signals (keepalived's VrrpStopped), then disconnect once they are out."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        bus = self.bus
        if bus is None:
            return
        self._flush()  # the last changes (instances going to STOP) still go out
        self._hook("stopping")
        self.bus = None  # nothing more is sent
        try:  # a round trip: everything sent before it has left
            await asyncio.wait_for(bus.call(_bus_message("GetId", "", [])), 1.0)
        except Exception as e:
            log.debug("D-Bus: no answer before disconnecting: %s", e)
        bus.disconnect()

    def _hook(self, name: str, *args: Any) -> None:
        for provider in self.providers:
            hook = getattr(provider, name, None)
            if hook is not None:
                try:
                    hook(*args, self)
                except Exception:  # a view's bug must not stop the engine
                    log.exception("D-Bus %s hook of %s failed", name, provider.bus_name)

    # -- signals --------------------------------------------------------------------------

    def emit(self, path: str, iface: str, member: str, signature: str, body: list[Any]) -> None:
        self._send(Message.new_signal(path, iface, member, signature, body))

    # -- the model's events ---------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if "added" in event.changed or "removed" in event.changed or event.kind == "global":
            self._resync = True
        for provider in self.providers:
            if getattr(provider, "emits_properties_changed", True):
                self._dirty.update(provider.touched(event))
        self._hook("on_event", event)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self._resync:
            self._resync = False
            self._sync_objects(announce=True)
        dirty, self._dirty = self._dirty, set()
        for path in dirty:
            obj = self.objects.get(path)
            if obj is None or not obj.exists():
                continue
            last = self._sent.setdefault(path, {})
            for iface in obj.interfaces:
                changed = {}
                for p in iface.props:
                    if not p.emits_change:
                        continue
                    value = p.get(obj)
                    if last.get(p.name, _UNSET) != value:
                        last[p.name] = value
                        changed[p.name] = Variant(p.signature, value)
                if changed:
                    self.emit(path, PROPERTIES_IFACE, "PropertiesChanged", "sa{sv}as",
                              [iface.name, changed, []])  # fmt: skip

    def _sync_objects(self, announce: bool) -> None:
        """Export what the model holds now, unexport what it no longer holds."""
        wanted: dict[str, Exported] = {}
        owner: dict[str, Provider] = {}
        for provider in self.providers:
            have = {p: o for p, o in self.objects.items() if self._owner.get(p) is provider}
            for path, obj in provider.wanted(have).items():
                wanted[path] = obj
                owner[path] = provider
        old = self.objects
        gone = [p for p in old if p not in wanted]
        new = [p for p in wanted if p not in old]
        self.objects, self._owner = wanted, owner
        for path in gone:
            self._sent.pop(path, None)
        for path in new:
            obj = wanted[path]
            self._sent[path] = {
                p.name: p.get(obj) for i in obj.interfaces for p in i.props if p.emits_change
            }
        if not announce:
            return
        for path in gone:
            manager = self._manager_of(path)
            if manager is not None:
                names = [i.name for i in old[path].interfaces]
                self.emit(manager, OBJECT_MANAGER_IFACE, "InterfacesRemoved", "oas", [path, names])
        for path in new:
            manager = self._manager_of(path)
            if manager is not None:
                obj = wanted[path]
                self.emit(manager, OBJECT_MANAGER_IFACE, "InterfacesAdded", "oa{sa{sv}}",
                          [path, self._all_props(obj)])  # fmt: skip

    def _manager_of(self, path: str) -> str | None:
        for provider in self.providers:
            root = provider.object_manager
            if root is not None and path.startswith(root + "/"):
                return root
        return None

    # -- dispatch -------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> Message | bool | None:
        if msg.message_type is not MessageType.METHOD_CALL:
            return None
        path, iface = msg.path, msg.interface
        if iface == PEER_IFACE:
            return None  # dbus-fast answers Ping / GetMachineId
        obj = self.objects.get(path)
        if iface == INTROSPECTABLE_IFACE and msg.member == "Introspect":
            children = self._children(path)
            if obj is None and not children:
                return None
            interfaces = obj.interfaces if obj is not None else ()
            extra = self._om_iface(path)
            return Message.new_method_return(
                msg, "s", [node_xml(interfaces, children, object_manager=extra)]
            )
        if obj is None or not obj.exists():
            if obj is None and not self._in_tree(path):
                return None  # not ours: dbus-fast answers it
            return self._error(msg, ERR + "UnknownObject", f"no object at {path}")
        try:
            if iface == PROPERTIES_IFACE:
                return self._properties(msg, obj)
            if iface == OBJECT_MANAGER_IFACE and self._om_iface(path):
                if msg.member == "GetManagedObjects" and msg.signature == "":
                    return self._managed_objects_reply(msg, path)
                raise CallError(ERR + "UnknownMethod", f"{iface}.{msg.member} does not exist")
            return self._method(msg, obj)
        except CallError as e:
            return self._error(msg, e.name, str(e))
        except Exception as e:  # a view's bug: the caller hears of it, the daemon goes on
            log.exception("D-Bus %s.%s on %s failed", iface, msg.member, path)
            return self._error(msg, ERROR_PREFIX + "Failed", f"internal error: {e}")

    def _error(self, msg: Message, name: str, text: str) -> Message:
        self.runtime.count("dbus_denied" if name == ERR + "AccessDenied" else "dbus_bad_call")
        return Message.new_error(msg, name, text)

    def _children(self, path: str) -> list[str]:
        prefix = "/" if path == "/" else path + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in self.objects if p.startswith(prefix)}
        return sorted(names)

    def _in_tree(self, path: str) -> bool:
        return any(path == p.tree or path.startswith(p.tree + "/") for p in self.providers)

    def _om_iface(self, path: str) -> bool:
        return any(p.object_manager == path for p in self.providers)

    def _all_props(self, obj: Exported) -> dict[str, dict[str, Variant]]:
        return {
            i.name: {p.name: Variant(p.signature, p.get(obj), False) for p in i.props}
            for i in obj.interfaces
        }

    def _managed_objects_reply(self, msg: Message, root: str) -> Message | bool:
        prefix = root + "/"
        items = [(p, o) for p, o in self.objects.items() if p.startswith(prefix)]
        # built lazily, a slice at a time, as the reply is marshalled
        entries = ((p, self._all_props(o)) for p, o in items if o.exists())
        sig = "a{oa{sa{sv}}}"
        if self.bus is None or not wire.supported(self.bus):
            return Message.new_method_return(msg, sig, [dict(entries)])
        self._spawn(self._bulk_reply(msg, sig, entries, as_dict=True))
        return True

    async def _bulk_reply(
        self,
        msg: Message,
        sig: str,
        elements: Iterable[Any],
        as_dict: bool,
    ) -> None:
        try:
            array = await wire.marshal_array(sig, wire.slices(elements), as_dict)
        except Exception as e:  # a view's bug: the caller hears of it, the daemon goes on
            log.exception("D-Bus %s.%s on %s failed", msg.interface, msg.member, msg.path)
            self._send(self._error(msg, ERROR_PREFIX + "Failed", f"internal error: {e}"))
            return
        if self.bus is not None and self.bus.connected:
            wire.send_array_reply(self.bus, msg, sig, array)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _properties(self, msg: Message, obj: Exported) -> Message:
        member, sig, body = msg.member, msg.signature, msg.body
        if member == "Get" and sig == "ss":
            iface = obj.iface(body[0])
            prop = iface.prop_by_name.get(body[1]) if iface is not None else None
            if prop is None:
                raise CallError(ERR + "UnknownProperty", f"no property {body[0]}.{body[1]}")
            return Message.new_method_return(msg, "v", [Variant(prop.signature, prop.get(obj))])
        if member == "GetAll" and sig == "s":
            ifaces = obj.interfaces if body[0] == "" else tuple(
                i for i in obj.interfaces if i.name == body[0])  # fmt: skip
            values = {p.name: Variant(p.signature, p.get(obj)) for i in ifaces for p in i.props}
            return Message.new_method_return(msg, "a{sv}", [values])
        if member == "Set" and sig == "ssv":
            iface = obj.iface(body[0])
            if iface is None or body[1] not in iface.prop_by_name:
                raise CallError(ERR + "UnknownProperty", f"no property {body[0]}.{body[1]}")
            raise CallError(
                ERR + "PropertyReadOnly", f"{body[0]}.{body[1]} is read-only; use the methods"
            )
        raise CallError(ERR + "UnknownMethod", f"{PROPERTIES_IFACE}.{member}({sig}) does not exist")

    def _method(self, msg: Message, obj: Exported) -> Message | bool:
        iface = obj.iface(msg.interface) if msg.interface else None
        method: Method | None = None
        if iface is not None:
            method = iface.method_by_name.get(msg.member)
        elif not msg.interface:  # no interface given: the first that has the member
            for i in obj.interfaces:
                method = i.method_by_name.get(msg.member)
                if method is not None:
                    break
        if method is None:
            if msg.interface and iface is None:
                raise CallError(ERR + "UnknownInterface", f"{obj.path} has no {msg.interface}")
            raise CallError(ERR + "UnknownMethod", f"{msg.interface}.{msg.member} does not exist")
        if msg.signature != method.in_signature:
            raise CallError(
                ERR + "InvalidArgs",
                f"{method.name} takes ({method.in_signature}), not ({msg.signature})",
            )
        if not method.control:
            result = method.call(obj, *msg.body)
            if method.bulk and self.bus is not None and wire.supported(self.bus):
                # rows come from a generator: each slice is built when it is marshalled
                self._spawn(self._bulk_reply(msg, method.out_signature, result, as_dict=False))
                return True
            return self._reply(msg, method, list(result) if method.bulk else result)
        self._spawn(self._control_call(msg, obj, method))
        return True  # the reply follows once the caller's uid is known

    async def _control_call(self, msg: Message, obj: Exported, method: Method) -> None:
        assert self.bus is not None
        try:
            uid = await self._uid_of(msg.sender)
            if uid != 0:
                raise CallError(
                    ERR + "AccessDenied", f"{method.name} is for root only (caller uid {uid})"
                )
            if not obj.exists():
                raise CallError(ERR + "UnknownObject", f"no object at {obj.path}")
            result = method.call(obj, *msg.body)
            if inspect.isawaitable(result):
                result = await result
            reply = self._reply(msg, method, result)
        except CallError as e:
            reply = self._error(msg, e.name, str(e))
        except ControlError as e:
            self.runtime.count("dbus_refused")
            reply = Message.new_error(msg, ERROR_PREFIX + e.kind, str(e))
        except Exception as e:  # a bug must not take the daemon down; the caller hears of it
            log.exception("D-Bus %s.%s on %s failed", msg.interface, msg.member, obj.path)
            self.runtime.count("dbus_bad_call")
            reply = Message.new_error(msg, ERROR_PREFIX + "Failed", f"internal error: {e}")
        self._send(reply)

    def _send(self, msg: Message) -> None:
        """Send unless the connection is gone; a send that fails means it just went."""
        bus = self.bus
        if bus is None or not bus.connected:
            return
        try:
            bus.send(msg)
        except OSError as e:
            log.warning("D-Bus: send failed, the connection is lost: %s", e)
            with contextlib.suppress(Exception):
                bus.disconnect()

    @staticmethod
    def _reply(msg: Message, method: Method, result: Any) -> Message:
        out = method.out_signature
        if not method.out_args:
            return Message.new_method_return(msg)
        body = [result] if len(method.out_args) == 1 else list(result)
        return Message.new_method_return(msg, out, body)

    async def _uid_of(self, sender: str | None) -> int:
        if sender is None:
            return -1
        uid = self._uids.get(sender)
        if uid is not None:
            self._uids.move_to_end(sender)
            return uid
        assert self.bus is not None
        reply = await self.bus.call(_bus_message("GetConnectionUnixUser", "s", [sender]))
        if reply.message_type is not MessageType.METHOD_RETURN:
            return -1
        uid = int(reply.body[0])
        self._uids[sender] = uid
        if len(self._uids) > UID_CACHE:
            self._uids.popitem(last=False)
        return uid


_UNSET = object()


def _bus_message(member: str, signature: str, body: list[Any]) -> Message:
    """A call to the bus daemon itself."""
    return Message(
        destination="org.freedesktop.DBus",
        path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus",
        member=member,
        signature=signature,
        body=body,
    )
