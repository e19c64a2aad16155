"""hakeeper as an AgentX subagent of a real snmpd: the VRRPV3-MIB answers what the kernel shows,
follows a failover, and a new master is announced by a notification through snmpd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyasn1.codec.ber import encoder
from pyasn1.type.univ import ObjectIdentifier

from hakeeper.snmp.mib import INSTANCE_STATE_CHANGE, INSTANCE_TABLE, NAME_MAX, name_index
from hakeeper.snmp.vrrp_mibs import (
    V2_OPER_ENTRY,
    V2_OPER_STATE,
    V2_STATS_ENTRY,
    V2_TRAP_AUTH_FAILURE,
    V3_NEW_MASTER,
    V3_OPER_ENTRY,
    V3_OPER_PRIORITY,
    V3_OPER_STATUS,
    V3_PROTO_ERROR,
    V3_STATS_ENTRY,
    V3_STATS_PROTO_ERR_REASON,
)
from tests.lab.adverts import send_adverts
from tests.lab.configs import keepalived_conf, vrrp_instance
from tests.lab.daemons import start_daemon, wait_for
from tests.lab.lab import Lab
from tests.unit.test_agentx_snmpd import Snmpd
from tests.unit.test_mib import hakeeper_mib_path

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
V2_OPER_STATE_OID = ".".join(map(str, (*V2_OPER_ENTRY, V2_OPER_STATE)))
V2_AUTH_FAILURES_OID = ".".join(map(str, (*V2_STATS_ENTRY, 4)))  # vrrpStatsAuthFailures
MASTER, INITIALIZE = 3, 1  # vrrpv3OperationsStatus (RFC 6527)


@pytest.fixture
def trap_sink() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    yield s
    s.close()


@pytest.fixture
def snmpd(tmp_path: Path, trap_sink: socket.socket) -> Iterator[Snmpd]:
    master = Snmpd(tmp_path, trap_sink.getsockname()[1])
    master.start()
    try:
        yield master
    finally:
        master.stop()


def column(snmpd: Snmpd, col: int, entry: tuple[int, ...] = V3_OPER_ENTRY) -> list[int]:
    oid = ".".join(map(str, (*entry, col)))
    out = snmpd.cli("snmpwalk", "-Oqv", oid)
    if out.returncode != 0 or "No Such Object" in out.stdout:  # no subagent serves it (now)
        return []
    return [int(v) for v in out.stdout.split()]


def traps(sink: socket.socket, within: float) -> list[bytes]:
    got, end = [], time.monotonic() + within
    while time.monotonic() < end:
        try:
            got.append(sink.recv(65536))
        except TimeoutError:
            continue
    return got


def test_vrrpv3_mib_follows_the_instance_and_announces_a_new_master(
    lab: Lab, snmpd: Snmpd, trap_sink: socket.socket
) -> None:
    r1, r2 = lab.add_nodes("r1", "r2")
    extra = f"    enable_snmp_rfcv3\n    enable_traps\n    snmp_socket unix:{snmpd.socket}\n"
    d1 = start_daemon(
        r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150), global_extra=extra), ".conf"
    )
    start_daemon(r2, "hakeeper", keepalived_conf(vrrp_instance(priority=100)), ".conf")
    assert r1.wait_vip(VIP, within=5), d1.log_text()
    assert wait_for(lambda: column(snmpd, V3_OPER_STATUS) == [MASTER], within=10), d1.log_text()
    assert column(snmpd, V3_OPER_PRIORITY) == [150]
    new_master = encoder.encode(ObjectIdentifier(V3_NEW_MASTER))

    # r1 loses its link: FAULT is `initialize` in the MIB; r2 holds the VIP
    lab.cut(r1)
    assert r2.wait_vip(VIP, within=2)
    assert wait_for(lambda: column(snmpd, V3_OPER_STATUS) == [INITIALIZE], within=3)
    traps(trap_sink, 0.3)  # what came before (snmpd's own, the first mastership)

    # the link returns: r1 preempts, the MIB says master and snmpd relays vrrpv3NewMaster
    lab.restore(r1)
    assert r1.wait_vip(VIP, within=3)
    assert wait_for(lambda: column(snmpd, V3_OPER_STATUS) == [MASTER], within=3)
    assert any(new_master in packet for packet in traps(trap_sink, 2.0)), d1.log_text()


def test_protocol_errors_set_the_reason_and_are_notified_once_a_second(
    lab: Lab, snmpd: Snmpd, trap_sink: socket.socket
) -> None:
    """Bad adverts from a neighbour: vrrpv3StatisticsProtoErrReason names the last error and
    snmpd relays vrrpv3ProtoError, one per second however many packets come."""
    r1, r2 = lab.add_nodes("r1", "r2")
    extra = f"    enable_snmp_rfcv3\n    enable_traps\n    snmp_socket unix:{snmpd.socket}\n"
    d1 = start_daemon(
        r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150), global_extra=extra), ".conf"
    )
    assert r1.wait_vip(VIP, within=5), d1.log_text()
    assert wait_for(lambda: column(snmpd, V3_OPER_STATUS) == [MASTER], within=10), d1.log_text()
    assert column(snmpd, V3_STATS_PROTO_ERR_REASON, V3_STATS_ENTRY) == [0]  # noError
    traps(trap_sink, 0.5)  # snmpd's own and the first mastership
    proto_error = encoder.encode(ObjectIdentifier(V3_PROTO_ERROR))

    send_adverts(r2, VIP, ("ttl",) * 5)
    ttl_error, checksum_error = 1, 3
    reason = lambda: column(snmpd, V3_STATS_PROTO_ERR_REASON, V3_STATS_ENTRY)  # noqa: E731
    assert wait_for(lambda: reason() == [ttl_error], within=3), d1.log_text()
    assert sum(proto_error in p for p in traps(trap_sink, 0.8)) == 1

    time.sleep(0.3)  # past the one-second limit since the first
    send_adverts(r2, VIP, ("checksum",))
    assert wait_for(lambda: reason() == [checksum_error], within=3)
    assert sum(proto_error in p for p in traps(trap_sink, 1.0)) == 1
    assert d1.instance("VI_1")["stats"]["ip_ttl_err"] == 5
    assert d1.state()["counters"]["snmp_notifications_suppressed"] == 4
    assert d1.instance("VI_1")["state"] == "MASTER"


def test_a_wrong_password_is_an_auth_failure_notification(
    lab: Lab, snmpd: Snmpd, trap_sink: socket.socket
) -> None:
    """VRRPv2 with PASS authentication: adverts with another password are dropped, counted in
    VRRP-MIB's vrrpStatsAuthFailures and announced by vrrpTrapAuthFailure through snmpd."""
    r1, r2 = lab.add_nodes("r1", "r2")
    extra = f"    enable_snmp_rfcv2\n    enable_traps\n    snmp_socket unix:{snmpd.socket}\n"
    v2 = {"version": 2, "advert_int": 1}
    conf = keepalived_conf(
        vrrp_instance(priority=150, auth_pass="secret", **v2), global_extra=extra
    )
    d1 = start_daemon(r1, "hakeeper", conf, ".conf")
    assert wait_for(
        lambda: snmpd.cli("snmpwalk", "-Oqv", V2_OPER_STATE_OID).stdout.split() != [], 5
    )
    traps(trap_sink, 0.3)
    peer = vrrp_instance(priority=200, auth_pass="wrong", state="MASTER", **v2)
    d2 = start_daemon(r2, "hakeeper", keepalived_conf(peer), ".conf")
    auth_failure = encoder.encode(ObjectIdentifier(V2_TRAP_AUTH_FAILURE))
    # r2 hears no valid master (r1's adverts fail its check too), takes over after its
    # master-down interval (~3.2 s at 1 s adverts) and its adverts reach r1
    assert wait_for(lambda: any(auth_failure in p for p in traps(trap_sink, 0.2)), 8), (
        d1.log_text() + d2.log_text()
    )
    assert d1.instance("VI_1")["stats"]["auth_failure"] >= 1
    out = snmpd.cli("snmpwalk", "-Oqv", V2_AUTH_FAILURES_OID)
    assert int(out.stdout.split()[0]) == d1.instance("VI_1")["stats"]["auth_failure"]


def test_a_reload_that_changes_snmp_settings_remakes_snmp_and_leaves_vrrp_alone(
    lab: Lab, snmpd: Snmpd
) -> None:
    r1 = lab.add_node("r1")
    socket_line = f"    snmp_socket unix:{snmpd.socket}\n"
    v3_only = keepalived_conf(
        vrrp_instance(priority=150), global_extra="    enable_snmp_rfcv3\n" + socket_line
    )
    d1 = start_daemon(r1, "hakeeper", v3_only, ".conf")
    assert r1.wait_vip(VIP, within=5), d1.log_text()
    assert wait_for(lambda: column(snmpd, V3_OPER_STATUS) == [MASTER], within=10), d1.log_text()
    state = instance_oid("hakeeperInstanceState")
    assert "No Such Object" in snmpd.cli("snmpget", state).stdout  # HAKEEPER-MIB not asked for
    since = d1.instance("VI_1")["last_transition"]

    # enable_snmp_vrrp by reload: HAKEEPER-MIB appears beside VRRPV3-MIB
    extra = "    enable_snmp_vrrp\n    enable_snmp_rfcv3\n" + socket_line
    d1.config.write_text(keepalived_conf(vrrp_instance(priority=150), global_extra=extra))
    d1.reload()
    master = str(INSTANCE_TABLE.column("hakeeperInstanceState").number("MASTER"))
    got = lambda: snmpd.cli("snmpget", "-Oqv", state).stdout.strip()  # noqa: E731
    assert wait_for(lambda: got() == master, within=5), d1.log_text()
    assert column(snmpd, V3_OPER_STATUS) == [MASTER]
    assert "enable_snmp_vrrp" in d1.log_text() and "SNMP restarts" in d1.log_text()

    # no SNMP at all: the subagent leaves snmpd
    d1.config.write_text(keepalived_conf(vrrp_instance(priority=150)))
    d1.reload()
    assert wait_for(lambda: column(snmpd, V3_OPER_STATUS) == [], within=5), d1.log_text()
    assert d1.instance("VI_1")["last_transition"] == since  # VRRP never moved
    assert d1.instance("VI_1")["state"] == "MASTER" and VIP in r1.addresses()


def instance_oid(column_name: str, instance: str = "VI_1") -> str:
    oid = (*INSTANCE_TABLE.column_oid(column_name), *name_index(instance, NAME_MAX))
    return ".".join(map(str, oid))


def test_hakeeper_mib_reads_the_model_and_an_snmpset_moves_the_vip(lab: Lab, snmpd: Snmpd) -> None:
    """HAKEEPER-MIB through snmpd: the instance row says what the kernel shows; lowering the
    priority with snmpset (rw community) goes through the control layer and r2 preempts."""
    r1, r2 = lab.add_nodes("r1", "r2")
    extra = f"    enable_snmp_vrrp\n    snmp_socket unix:{snmpd.socket}\n"
    d1 = start_daemon(
        r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150), global_extra=extra), ".conf"
    )
    start_daemon(r2, "hakeeper", keepalived_conf(vrrp_instance(priority=100)), ".conf")
    assert r1.wait_vip(VIP, within=5), d1.log_text()
    state, prio = instance_oid("hakeeperInstanceState"), instance_oid("hakeeperInstancePriority")
    master = INSTANCE_TABLE.column("hakeeperInstanceState").number("MASTER")
    backup = INSTANCE_TABLE.column("hakeeperInstanceState").number("BACKUP")

    def get(oid: str) -> int | None:
        out = snmpd.cli("snmpget", "-Oqv", oid)
        return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else None

    assert wait_for(lambda: get(state) == master, within=10), d1.log_text()
    assert get(prio) == 150
    # with the project's MIB loaded, the net-snmp tools speak names
    mibs = (hakeeper_mib_path(), "HAKEEPER-MIB")
    table = snmpd.cli(
        "snmptable", "-Ci", "-Cf", "|", "HAKEEPER-MIB::hakeeperInstanceTable", mibs=mibs
    )
    assert table.returncode == 0 and table.stderr == "", table.stderr
    header, row = [line.split("|") for line in table.stdout.splitlines()[2:4]]
    cells = dict(zip(header, row, strict=True))
    assert cells["index"] == '"VI_1"'  # -Ci: the row's index, the instance name
    assert cells["hakeeperInstanceState"] == "master"
    assert cells["hakeeperInstancePriority"] == "150"
    assert cells["hakeeperInstanceInterface"] == "eth0"  # a DisplayString
    by_name = snmpd.cli("snmpget", "-Oqv", 'HAKEEPER-MIB::hakeeperInstanceVrid."VI_1"', mibs=mibs)
    assert by_name.stdout.strip() == "51", by_name.stderr
    # a read-only community may not write; the rw one may, as the snmpd policy says
    override = instance_oid("hakeeperInstancePriorityOverride")
    assert snmpd.cli("snmpset", override, "u", "50").returncode != 0
    done = snmpd.cli("snmpset", override, "u", "50", community="private")
    assert done.returncode == 0, done.stderr
    assert r2.wait_vip(VIP, within=2) and r1.wait_no_vip(VIP, within=2)
    assert wait_for(lambda: get(state) == backup and get(prio) == 50, within=2)
    # 0 resets to the configured priority: r1 preempts back
    assert snmpd.cli("snmpset", override, "u", "0", community="private").returncode == 0
    assert r1.wait_vip(VIP, within=3)


def test_embedded_agent_answers_v2c_and_v3_and_sends_traps(lab: Lab, tmp_path: Path) -> None:
    """No snmpd: hakeeper's own agent on r1's address answers a monitoring host (r2's
    namespace) over v2c and v3 authPriv, refuses a wrong community, and sends
    hakeeperInstanceStateChange to that host's snmptrapd when the instance changes state."""
    r1, r2 = lab.add_nodes("r1", "r2")
    trapd_log = tmp_path / "traps.log"
    (tmp_path / "trapd").mkdir()
    conf = tmp_path / "snmptrapd.conf"
    conf.write_text("authCommunity log traps\n")
    trapd = r2.popen(
        ["snmptrapd", "-f", "-On", "-C", "-c", str(conf), "-Lf", str(trapd_log),
         "-F", r"TRAP %P: %v\n", f"udp:{r2.ipv4}:1162"],
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(tmp_path / "trapd"), "MIBS": ""},
    )  # fmt: skip
    assert wait_for(lambda: trapd_log.exists() and "NET-SNMP" in trapd_log.read_text(), 5)
    block = (
        "    snmp_agent {\n"
        f"        listen {r1.ipv4}:1161\n"
        f"        community monitor ro {r2.ipv4}/32\n"
        "        user ops SHA-256 ops-auth-key AES ops-priv-key ro\n"
        f"        trap_target {r2.ipv4}:1162 community traps\n"
        "    }\n    enable_traps\n"
    )
    d1 = start_daemon(
        r1, "hakeeper", keepalived_conf(vrrp_instance(priority=150), global_extra=block), ".conf"
    )
    assert r1.wait_vip(VIP, within=5), d1.log_text()
    state = instance_oid("hakeeperInstanceState")
    env = {**os.environ, "MIBS": "", "SNMPCONFPATH": str(tmp_path)}
    target = f"{r1.ipv4}:1161"

    def query(*auth: str) -> subprocess.CompletedProcess[str]:
        argv = ["snmpget", *auth, "-On", "-Oqv", "-t", "1", "-r", "0", target, state]
        return r2.run(argv, check=False, env=env)

    master = str(INSTANCE_TABLE.column("hakeeperInstanceState").number("MASTER"))
    assert wait_for(lambda: query("-v2c", "-c", "monitor").stdout.strip() == master, 5)
    v3 = query("-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA-256", "-A", "ops-auth-key",
               "-x", "AES", "-X", "ops-priv-key")  # fmt: skip
    assert v3.returncode == 0 and v3.stdout.strip() == master, v3.stderr
    assert query("-v2c", "-c", "wrong").returncode != 0  # no answer: a timeout

    # r2 comes up with a higher priority: r1 goes BACKUP and tells the monitoring host
    start_daemon(r2, "hakeeper", keepalived_conf(vrrp_instance(priority=200)), ".conf")
    assert r2.wait_vip(VIP, within=3)
    change = ".".join(map(str, INSTANCE_STATE_CHANGE.oid))
    assert wait_for(lambda: change in trapd_log.read_text(), within=5), trapd_log.read_text()
    assert "community traps" in trapd_log.read_text()
    os.kill(trapd.pid, signal.SIGTERM)
