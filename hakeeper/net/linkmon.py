"""Link up/down events from the kernel, for asyncio.

A plain NETLINK_ROUTE socket subscribed to RTMGRP_LINK is read with `loop.add_reader`; the
messages are decoded with pyroute2's `ifinfmsg`. Interfaces are judged up as keepalived judges
them (IFF_UP and IFF_RUNNING), and `on_change(ifname, up)` is called only when that judgement
changes, not for every RTM_NEWLINK (the kernel sends many: MTU, promiscuity, statistics...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

log = logging.getLogger(__name__)

RTMGRP_LINK = 0x1
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFF_UP = 0x1
IFF_RUNNING = 0x40
NLMSG_HDR = struct.Struct("=IHHII")
RECV_SIZE = 1 << 16


def _is_up(flags: int) -> bool:
    return flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING


class LinkMonitor:
    """Calls `on_change(ifname, up)` when an interface's up/down judgement changes."""

    def __init__(
        self,
        on_change: Callable[[str, bool], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.on_change = on_change
        self._loop = loop
        self._sock: socket.socket | None = None
        # ifindex -> (name, up): by index, so a rename is seen as the same link
        self.links: dict[int, tuple[str, bool]] = {}

    def start(self) -> None:
        """Subscribe, then take a baseline of every link before reporting changes."""
        if self._sock is not None:
            return
        loop = self._loop or asyncio.get_running_loop()
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            # subscribed before the dump, so a change during the dump is queued, not lost
            s.bind((0, RTMGRP_LINK))
            self._baseline(s)
            s.setblocking(False)
            loop.add_reader(s.fileno(), self._readable)
        except BaseException:
            s.close()
            raise
        self._sock, self._loop = s, loop

    def _baseline(self, s: socket.socket) -> None:
        seq = 1
        # struct ifinfomsg for AF_UNSPEC: family, pad, type, index, flags, change
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
        hdr = NLMSG_HDR.pack(NLMSG_HDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP,
                             seq, 0)  # fmt: skip
        s.settimeout(5.0)
        s.send(hdr + body)
        done = False
        while not done:
            data = s.recv(RECV_SIZE)
            for mtype, mseq, msg in _split(data):
                if mseq == seq and mtype in (NLMSG_DONE, NLMSG_ERROR):
                    done = True
                else:
                    self._update(mtype, msg, report=False)

    def _readable(self) -> None:
        if self._sock is None:
            return
        for _ in range(64):
            try:
                data = self._sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # ENOBUFS: we fell behind and the kernel dropped events; resynchronise
                log.warning("link monitor: %s; re-reading all links", e)
                self._resync()
                return
            for mtype, _seq, msg in _split(data):
                self._update(mtype, msg, report=True)

    def _resync(self) -> None:
        loop = self._loop
        self.close()
        before = dict(self.links)
        self._loop = loop
        self.start()
        for idx, (name, up) in self.links.items():
            if before.get(idx, (name, not up))[1] != up:
                self._report(name, up)

    def _update(self, mtype: int, data: bytes, report: bool) -> None:
        if mtype not in (RTM_NEWLINK, RTM_DELLINK):
            return
        msg = ifinfmsg(data)
        msg.decode()
        idx = msg["index"]
        name = msg.get("ifname")
        if mtype == RTM_DELLINK:
            old = self.links.pop(idx, None)
            if report and old is not None and old[1]:
                self._report(old[0], False)
            return
        if name is None:
            return
        up = _is_up(msg["flags"])
        old = self.links.get(idx)
        self.links[idx] = (name, up)
        # a link that appears already down is no change: it never was up to anyone
        changed = old[1] != up if old is not None else up
        if report and changed:
            self._report(name, up)

    def _report(self, name: str, up: bool) -> None:
        try:
            self.on_change(name, up)
        except Exception:
            log.exception("link monitor: error handling %s %s", name, "up" if up else "down")

    def is_up(self, name: str) -> bool | None:
        for link_name, up in self.links.values():
            if link_name == name:
                return up
        return None

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None


def _split(data: bytes) -> list[tuple[int, int, bytes]]:
    """The netlink messages in one datagram: (type, seq, the whole message)."""
    out = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, mtype, _flags, seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size:
            break
        out.append((mtype, seq, data[offset : offset + length]))
        offset += (length + 3) & ~3
    return out
