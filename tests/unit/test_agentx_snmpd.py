"""The subagent against a real net-snmp snmpd as AgentX master, asked by the real net-snmp
command-line tools: every value type, walks that end cleanly at the end of the subtree,
GetBulk, Sets with their errors, a notification out to a trap sink, and snmpd restarted
under the subagent's feet. snmpd runs in a temp dir with its own config and socket; every
process is ended by its PID."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.session import MibView, Registration
from hakeeper.snmp.agentx.transport import Subagent
from tests.unit.agentxhelp import sample_view

T = TypeVar("T")
ROOT = (1, 3, 6, 1, 3, 9999)  # experimental(3): ours to play in
R = ".1.3.6.1.3.9999"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Snmpd:
    """snmpd as AgentX master on a private unix socket and a 127.0.0.1 UDP port."""

    def __init__(self, tmp: Path, trap_port: int) -> None:
        self.tmp = tmp
        self.socket = tmp / "agentx"
        self.port = free_udp_port()
        (tmp / "persist").mkdir()
        (tmp / "snmpd.conf").write_text(
            "master agentx\n"
            f"agentXSocket unix:{self.socket}\n"
            "agentXPerms 0600 0700\n"
            "agentXTimeout 2\n"
            "rocommunity public 127.0.0.1\n"
            "rwcommunity private 127.0.0.1\n"
            f"trap2sink 127.0.0.1:{trap_port} public\n"
        )
        # No host config, no host MIBs, no writes to the host's persistent dir.
        self.env = {
            **os.environ,
            "SNMPCONFPATH": str(tmp),
            "SNMP_PERSISTENT_DIR": str(tmp / "persist"),
            "MIBS": "",
            "MIBDIRS": str(tmp),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.tmp / f"snmpd-{self.starts}.log"  # snmpd truncates its log file
        self.proc = subprocess.Popen(
            [
                "snmpd",
                "-f",
                "-Lf",
                str(log),
                "-I",
                "-smux",  # no SMUX: port 199 may be taken and is not ours
                "-C",
                "-c",
                str(self.tmp / "snmpd.conf"),
                "-x",
                f"unix:{self.socket}",
                f"udp:127.0.0.1:{self.port}",
            ],
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        # snmpd logs its version once it listens; asking earlier costs a client timeout.
        wait_for(
            lambda: log.exists() and "NET-SNMP version" in log.read_text(), what="snmpd to start"
        )
        assert self.answers(), log.read_text()

    def answers(self) -> bool:
        return self.cli("snmpget", "1.3.6.1.2.1.1.3.0").returncode == 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def cli(
        self,
        tool: str,
        *args: str,
        community: str = "public",
        mibs: tuple[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """`mibs`: (search path, modules) to load, so names go in and come out; numeric
        OIDs otherwise."""
        names = ["-On"] if mibs is None else ["-M", mibs[0], "-m", mibs[1]]
        cmd = [tool, "-v2c", "-c", community, *names, "-t", "3", "-r", "0"]
        cmd += [f"127.0.0.1:{self.port}", *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=15)

    def lines(self, tool: str, *args: str, community: str = "public") -> list[str]:
        out = self.cli(tool, *args, community=community)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()


def wait_for(cond: Callable[[], bool], timeout: float = 8.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class LoopThread:
    """The subagent on its own event loop in a thread, as the daemon would run it."""

    def __init__(self, agent: Subagent) -> None:
        self.agent = agent
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.loop.run_until_complete(self.agent.run())
        self.loop.close()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(run)
        return fut.result(5)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.agent.close)
            self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def trap_sink() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()


@contextlib.contextmanager
def serving(
    tmp: Path,
    view: MibView,
    registrations: Sequence[Registration],
    trap_port: int | None = None,
    **subagent: Any,
) -> Iterator[tuple[Snmpd, LoopThread]]:
    """A real snmpd in `tmp` and `view` registered with it as a subagent on its own loop
    thread; both ended (snmpd by PID) whatever happens."""
    snmpd = Snmpd(tmp, trap_port if trap_port is not None else free_udp_port())
    agent_thread = None
    try:
        snmpd.start()
        agent = Subagent(view, registrations, address=f"unix:{snmpd.socket}", **subagent)
        agent_thread = LoopThread(agent)
        wait_for(lambda: agent.ready, what="subagent registration")
        yield snmpd, agent_thread
    finally:
        if agent_thread is not None:
            agent_thread.stop()
        snmpd.stop()


def _lab(tmp: Path, trap_port: int) -> Iterator[tuple[Snmpd, LoopThread]]:
    with serving(
        tmp,
        sample_view(ROOT),
        [Registration(ROOT)],
        trap_port,
        subagent_id=ROOT,
        description="hakeeper test subagent",
    ) as served:
        yield served


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Snmpd, LoopThread]]:
    # The trap port of the module lab goes nowhere; the notify test has its own lab.
    yield from _lab(tmp_path_factory.mktemp("snmpd"), free_udp_port())


@pytest.fixture
def own_lab(tmp_path: Path, trap_sink: socket.socket) -> Iterator[tuple[Snmpd, LoopThread]]:
    yield from _lab(tmp_path, trap_sink.getsockname()[1])


EXPECTED_WALK = [
    f'{R}.1.0 = STRING: "hakeeper"',
    f"{R}.2.0 = INTEGER: -5",
    f"{R}.3.0 = OID: .1.3.6.1.4.1",
    f"{R}.4.0 = IpAddress: 192.0.2.7",
    f"{R}.5.0 = Counter32: 4000000000",
    f"{R}.6.0 = Gauge32: 42",
    f"{R}.7.0 = Timeticks: (12345) 0:02:03.45",
    f"{R}.8.0 = OPAQUE: 01 02 ",
    f"{R}.9.0 = Counter64: 1099511627777",
    f"{R}.10.1.1 = INTEGER: 100",
    f"{R}.10.1.2 = INTEGER: 200",
    f'{R}.10.2.1 = STRING: "VI_1"',
    f'{R}.10.2.2 = STRING: "VI_2"',
]


def test_get_every_value_type(lab: tuple[Snmpd, LoopThread]) -> None:
    snmpd, _ = lab
    oids = [f"{R}.{i}.0" for i in range(1, 10)]
    assert snmpd.lines("snmpget", *oids) == EXPECTED_WALK[:9]


def test_get_missing_object_and_instance(lab: tuple[Snmpd, LoopThread]) -> None:
    snmpd, _ = lab
    assert snmpd.lines("snmpget", f"{R}.10.1.9", f"{R}.77.0") == [
        f"{R}.10.1.9 = No Such Instance currently exists at this OID",
        f"{R}.77.0 = No Such Object available on this agent at this OID",
    ]


def test_walk_and_bulkwalk_stop_cleanly_at_the_end_of_the_subtree(
    lab: tuple[Snmpd, LoopThread],
) -> None:
    snmpd, _ = lab
    assert snmpd.lines("snmpwalk", R) == EXPECTED_WALK
    assert snmpd.lines("snmpbulkwalk", "-Cr5", R) == EXPECTED_WALK
    assert snmpd.lines("snmpwalk", f"{R}.10.2") == EXPECTED_WALK[-2:]


def test_get_next_past_our_last_object_leaves_the_subtree(lab: tuple[Snmpd, LoopThread]) -> None:
    snmpd, _ = lab
    [line] = snmpd.lines("snmpgetnext", f"{R}.10.2.2")
    name = line.split(" = ")[0]
    assert not name.startswith(R + "."), line  # snmpd moved on to its own objects
    [line] = snmpd.lines("snmpgetnext", f"{R}.9")
    assert line == EXPECTED_WALK[8]  # from a prefix to the first object under it


def test_bulkget_with_non_repeaters(lab: tuple[Snmpd, LoopThread]) -> None:
    snmpd, _ = lab
    lines = snmpd.lines("snmpbulkget", "-Cn1", "-Cr3", f"{R}.1", f"{R}.10.1")
    assert lines == [EXPECTED_WALK[0], *EXPECTED_WALK[9:12]]


def test_set_and_its_errors(lab: tuple[Snmpd, LoopThread]) -> None:
    snmpd, agent = lab
    assert snmpd.lines("snmpset", f"{R}.10.1.1", "i", "150", community="private") == [
        f"{R}.10.1.1 = INTEGER: 150"
    ]
    assert snmpd.lines("snmpget", f"{R}.10.1.1") == [f"{R}.10.1.1 = INTEGER: 150"]
    cases = [
        ((f"{R}.10.1.1", "s", "high"), "wrongType"),
        ((f"{R}.10.1.1", "i", "300"), "wrongValue"),
        ((f"{R}.1.0", "s", "x"), "notWritable"),
        # Atomic: the first varbind is fine, the second is not, neither is applied.
        ((f"{R}.10.1.2", "i", "9", f"{R}.10.1.1", "s", "x"), "wrongType"),
    ]
    for args, error in cases:
        out = snmpd.cli("snmpset", *args, community="private")
        assert out.returncode != 0
        assert f"Reason: {error}" in out.stderr, out.stderr
    assert snmpd.lines("snmpget", f"{R}.10.1.1", f"{R}.10.1.2") == [
        f"{R}.10.1.1 = INTEGER: 150",
        f"{R}.10.1.2 = INTEGER: 200",
    ]
    # The read-only community never reaches us.
    out = snmpd.cli("snmpset", f"{R}.10.1.1", "i", "1")
    assert out.returncode != 0 and "noAccess" in out.stderr
    assert agent.agent.stats.view_errors == 0


def test_notification_reaches_the_trap_sink(
    own_lab: tuple[Snmpd, LoopThread], trap_sink: socket.socket
) -> None:
    _, agent = own_lab
    trap = (*ROOT, 0, 1)
    vb = p.VarBind((*ROOT, 10, 2, 1), p.OctetString(b"VI_1 went MASTER"))
    deadline = time.monotonic() + 5
    data = b""
    # snmpd sends its own coldStart trap at start; read until ours comes by.
    while time.monotonic() < deadline and b"VI_1 went MASTER" not in data:
        if agent.call(agent.agent.notify, trap, [vb]) is not True:
            raise AssertionError("notify dropped")
        data = trap_sink.recv(65536)
    assert b"VI_1 went MASTER" in data
    # BER of 1.3.6.1.3.9999.0.1 (9999 = 0x4e*128 + 0x0f): the snmpTrapOID.0 value
    assert bytes([0x2B, 6, 1, 3, 0xCE, 0x0F, 0, 1]) in data
    assert agent.agent.stats.notifications_sent >= 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_subagent_comes_back_after_snmpd_restarts(
    own_lab: tuple[Snmpd, LoopThread], sig: int
) -> None:
    snmpd, agent = own_lab
    snmpd.stop(sig)
    wait_for(lambda: not agent.agent.ready, what="the subagent to notice")
    snmpd.start()  # same socket path; a SIGKILLed snmpd left its socket file behind
    wait_for(lambda: agent.agent.ready, timeout=5.0, what="re-registration")
    assert snmpd.lines("snmpget", f"{R}.6.0") == [f"{R}.6.0 = Gauge32: 42"]
    stats = agent.agent.stats
    assert (stats.connects, stats.disconnects) == (2, 1)
    assert stats.parse_errors == stats.protocol_errors == 0
