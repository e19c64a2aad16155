"""hakeeperctl's side of the bus: one connection, plain method calls, errors as exit codes.

Calls are built by hand (no introspection round trip) with the signatures dbus/README.md
fixes, and carry NO_AUTO_START so a missing daemon is an answer, not an activation attempt.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from dbus_fast import AuthError, InvalidAddressError, Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus

from hakeeper.dbus.names import (
    BUS_NAME,
    ERROR_PREFIX,
    MANAGER_IFACE,
    PROPERTIES_IFACE,
    ROOT_PATH,
)

# exit codes (documented in hakeeperctl(1) and --help)
EXIT_OK = 0
EXIT_FAILED = 1  # the daemon refused or failed
EXIT_USAGE = 2  # bad command line, or a value hakeeper refuses (its InvalidArgs)
EXIT_NOT_RUNNING = 3  # no bus, or nobody owns org.hakeeper.Hakeeper1
EXIT_DENIED = 4  # AccessDenied
EXIT_NOT_FOUND = 5  # no such instance, group or server

DBUS_ERROR = "org.freedesktop.DBus.Error."
BUS_DRIVER = "org.freedesktop.DBus"

_CODES = {
    ERROR_PREFIX + "InvalidArgs": EXIT_USAGE,
    DBUS_ERROR + "ServiceUnknown": EXIT_NOT_RUNNING,
    DBUS_ERROR + "NameHasNoOwner": EXIT_NOT_RUNNING,
    DBUS_ERROR + "Disconnected": EXIT_NOT_RUNNING,
    DBUS_ERROR + "NoServer": EXIT_NOT_RUNNING,
    DBUS_ERROR + "AccessDenied": EXIT_DENIED,
    DBUS_ERROR + "AuthFailed": EXIT_DENIED,
    DBUS_ERROR + "InteractiveAuthorizationRequired": EXIT_DENIED,
    DBUS_ERROR + "UnknownObject": EXIT_NOT_FOUND,
}

DEFAULT_TIMEOUT = 25.0  # libdbus's default reply timeout

# The List* rows, column by column: the keys of `-o json`. Every column but the last few
# named here is also a property of the object, under the same name.
INSTANCE_COLUMNS = (
    "Name", "State", "Interface", "Family", "VRID", "Version", "BasePriority",
    "EffectivePriority", "AdvertInterval", "VirtualAddresses", "MasterAddress", "Preempt",
    "Maintenance", "LastTransition", "LastReason", "Path",
)  # fmt: skip
GROUP_COLUMNS = ("Name", "State", "Members", "LastReason", "Path")
VS_COLUMNS = (
    "Name", "Protocol", "Scheduler", "Method", "Target", "QuorumUp", "SorryServerActive",
    "RealServersAlive", "RealServersTotal", "Connections", "Path",
)  # fmt: skip
RS_COLUMNS = (
    "VirtualServerName", "Name", "Alive", "Enabled", "InPool", "Weight", "PoolWeight",
    "LastDetail", "Connections", "Path",
)  # fmt: skip

# struct-array properties, field by field (JSON objects rather than bare arrays)
STRUCT_FIELDS = {
    "Trackers": (
        "Kind", "Name", "State", "Weight", "Reverse", "HasValue", "Value", "Contribution",
        "ViaGroup",
    ),
    "Checkers": ("Kind", "Up", "Checks", "Failures", "LastDetail"),
}  # fmt: skip


class CtlError(Exception):
    """What hakeeperctl prints (`hakeeperctl: <message>`) and the exit code it returns."""

    def __init__(self, message: str, code: int = EXIT_FAILED, name: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.name = name  # the D-Bus error name, when the daemon or the bus refused a call


def exit_code(error_name: str) -> int:
    return _CODES.get(error_name, EXIT_FAILED)


def bus_address(spec: str) -> tuple[str, str]:
    """(address, what to call it in messages) for --bus system|session|ADDRESS."""
    if spec == "system":
        return (
            os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/run/dbus/system_bus_socket",
            "the system bus",
        )
    if spec == "session":
        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not address:
            runtime = os.environ.get("XDG_RUNTIME_DIR")
            if not runtime or not os.path.exists(f"{runtime}/bus"):
                raise CtlError(
                    "no session bus (DBUS_SESSION_BUS_ADDRESS is not set)", EXIT_NOT_RUNNING
                )
            address = f"unix:path={runtime}/bus"
        return address, "the session bus"
    return spec, f"the bus at {spec}"


def rows(columns: Sequence[str], body: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in body]


def plain(props: dict[str, Any]) -> dict[str, Any]:
    """A GetAll answer as plain values: variants unwrapped, struct arrays as objects."""
    out: dict[str, Any] = {}
    for key, variant in props.items():
        value = getattr(variant, "value", variant)
        fields = STRUCT_FIELDS.get(key)
        if fields is not None:
            value = [dict(zip(fields, item, strict=True)) for item in value]
        out[key] = value
    return out


class Client:
    """One bus connection to hakeeper; `call` raises CtlError with the exit code to use."""

    def __init__(self, bus: MessageBus, where: str, timeout: float) -> None:
        self.bus, self.where, self.timeout = bus, where, timeout

    @classmethod
    async def connect(cls, spec: str, timeout: float = DEFAULT_TIMEOUT) -> Client:
        address, where = bus_address(spec)
        try:
            bus = MessageBus(bus_address=address)
        except InvalidAddressError as e:
            raise CtlError(f"bad bus address {spec!r}: {e}", EXIT_USAGE) from e
        try:
            await asyncio.wait_for(bus.connect(), timeout)
        except PermissionError as e:
            raise CtlError(f"cannot connect to {where}: {e.strerror}", EXIT_DENIED) from e
        except (AuthError, ConnectionResetError, BrokenPipeError, EOFError) as e:
            # the socket accepted us, then the bus refused or hung up during authentication:
            # a bus that does not let this user in (another user's session bus, <deny user>)
            why = str(e) or type(e).__name__
            raise CtlError(
                f"{where} refused the connection for this user ({why})", EXIT_DENIED
            ) from e
        except TimeoutError as e:  # before OSError, of which it is one
            raise CtlError(f"{where} did not answer within {timeout:g}s", EXIT_FAILED) from e
        except OSError as e:
            why = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise CtlError(
                f"hakeeper is not running: cannot connect to {where} ({why})", EXIT_NOT_RUNNING
            ) from e
        return cls(bus, where, timeout)

    def close(self) -> None:
        self.bus.disconnect()

    async def call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        *,
        destination: str = BUS_NAME,
        not_found: str | None = None,
    ) -> list[Any]:
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
            flags=MessageFlag.NO_AUTOSTART,
        )
        try:
            reply = await asyncio.wait_for(self.bus.call(msg), self.timeout)
        except TimeoutError as e:
            raise CtlError(f"hakeeper did not answer {member} within {self.timeout:g}s") from e
        except (OSError, EOFError) as e:
            raise CtlError(f"lost the connection to {self.where}", EXIT_NOT_RUNNING) from e
        if reply.message_type is MessageType.ERROR:
            raise self._error(reply, member, not_found)
        return list(reply.body)

    def _error(self, reply: Message, member: str, not_found: str | None) -> CtlError:
        name = reply.error_name or ""
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else name
        code = exit_code(name)
        if code == EXIT_NOT_RUNNING:
            text = f"hakeeper is not running (nobody owns {BUS_NAME} on {self.where})"
        elif code == EXIT_NOT_FOUND and not_found is not None:
            text = not_found
        elif code == EXIT_DENIED and reply.sender == BUS_DRIVER:
            # the bus policy, not the daemon: its own message is a dump of match rules
            text = f"permission denied: the bus policy does not let you call {member}"
        elif code == EXIT_DENIED and not text.lower().startswith("permission denied"):
            text = f"permission denied: {text}"
        return CtlError(text, code, name)

    # -- the contract's calls ------------------------------------------------------------

    async def get_all(self, path: str, interface: str, not_found: str) -> dict[str, Any]:
        (props,) = await self.call(
            path, PROPERTIES_IFACE, "GetAll", "s", [interface], not_found=not_found
        )
        return plain(props)

    async def manager(self, member: str) -> list[Any]:
        return await self.call(ROOT_PATH, MANAGER_IFACE, member)

    async def list_instances(self) -> list[dict[str, Any]]:
        return rows(INSTANCE_COLUMNS, (await self.manager("ListInstances"))[0])

    async def list_groups(self) -> list[dict[str, Any]]:
        return rows(GROUP_COLUMNS, (await self.manager("ListGroups"))[0])

    async def list_virtual_servers(self) -> list[dict[str, Any]]:
        return rows(VS_COLUMNS, (await self.manager("ListVirtualServers"))[0])

    async def list_real_servers(self) -> list[dict[str, Any]]:
        return rows(RS_COLUMNS, (await self.manager("ListRealServers"))[0])

    async def add_match(self, rule: str) -> None:
        await self.call(
            "/org/freedesktop/DBus", BUS_DRIVER, "AddMatch", "s", [rule], destination=BUS_DRIVER
        )

    async def name_owner(self) -> str:
        (owner,) = await self.call(
            "/org/freedesktop/DBus",
            BUS_DRIVER,
            "GetNameOwner",
            "s",
            [BUS_NAME],
            destination=BUS_DRIVER,
        )
        return str(owner)
