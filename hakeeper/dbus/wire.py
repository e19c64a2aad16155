"""Two things dbus-fast's writer does not do for a daemon with a thousand objects.

1. Big replies in slices. GetManagedObjects of 1000 instances is ~1.3 MB: built and marshalled
   in one go it holds the event loop ~50 ms, and adverts due meanwhile go out late. Here the
   array is built and marshalled a slice of elements at a time, yielding to the loop between
   slices, and the slices are joined into the one reply the D-Bus wire format expects.
2. A full socket. dbus-fast 5.2 treats EAGAIN from send() as a lost connection (inherited from
   python-dbus-next, issue #153): a burst of signals or a big reply to a slow reader then drops
   the connection. The writer's socket is wrapped so EAGAIN means "nothing sent yet": the
   writer keeps the rest and waits until the socket is writable, which it already knows how
   to do for a partial send.

Both reach into dbus-fast's aio writer (`bus._writer`); if its shape changes, `supported()`
says so and the service falls back to plain replies.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from dbus_fast import Message
from dbus_fast._private.marshaller import Marshaller
from dbus_fast.aio import MessageBus

SLICE = 20  # elements per slice: a few ms of building and marshalling at most
_ARRAY_HEAD = 8  # u32 length, then padding to the 8-byte alignment of structs/dict entries


class _EagainSafeSocket:
    """send()/sendmsg() report 0 bytes instead of raising when the socket is full."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def send(self, data: Any) -> int:
        try:
            return int(self._sock.send(data))
        except BlockingIOError:
            return 0

    def sendmsg(self, buffers: Any, ancdata: Any = ()) -> int:
        try:
            return int(self._sock.sendmsg(buffers, ancdata))
        except BlockingIOError:
            return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def supported(bus: MessageBus) -> bool:
    writer = getattr(bus, "_writer", None)
    return writer is not None and hasattr(writer, "sock") and hasattr(writer, "schedule_write")


def tolerate_full_socket(bus: MessageBus) -> None:
    if supported(bus) and not isinstance(bus._writer.sock, _EagainSafeSocket):
        bus._writer.sock = _EagainSafeSocket(bus._writer.sock)


def slices(elements: Iterable[Any], size: int = SLICE) -> Iterator[list[Any]]:
    """Lists of `size` elements, each built only when it is its turn (lazily)."""
    it = iter(elements)
    while piece := list(itertools.islice(it, size)):
        yield piece


async def marshal_array(signature: str, pieces: Iterable[list[Any]], as_dict: bool) -> bytes:
    """The wire bytes of one array argument (signature `a(...)` or `a{...}`), built and
    marshalled one piece at a time with the loop free in between (dict pairs when `as_dict`).
    Struct and dict-entry elements are 8-aligned, so pieces marshalled on their own keep their
    inner layout when each starts at an 8-aligned offset of the joined array."""
    assert signature[:2] in ("a(", "a{"), signature
    elements = bytearray()
    for built in pieces:
        if built:
            body = [dict(built)] if as_dict else [built]
            chunk = Marshaller(signature, body).marshall()
            elements += b"\0" * (-len(elements) % 8)
            elements += chunk[_ARRAY_HEAD:]
        await asyncio.sleep(0)  # adverts due now go first
    return struct.pack("<I", len(elements)) + b"\0" * (_ARRAY_HEAD - 4) + bytes(elements)


class _Raw:
    """Already marshalled bytes, in the shape dbus-fast's writer takes a message in."""

    unix_fds = None

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _marshall(self, negotiate_unix_fd: bool) -> bytes:
        return self.data


def send_array_reply(bus: MessageBus, call: Message, signature: str, array: bytes) -> None:
    """Reply to `call` with one array argument already marshalled by marshal_array."""
    empty: Any = {} if signature.startswith("a{") else []
    head = Message.new_method_return(call, signature, [empty])
    head.serial = bus.next_serial()
    raw = bytearray(head._marshall(False))
    # the empty array is the last 8 bytes; the body length sits at offset 4 (little endian)
    del raw[-_ARRAY_HEAD:]
    raw[4:8] = struct.pack("<I", len(array))
    bus._writer.schedule_write(_Raw(bytes(raw) + array))
