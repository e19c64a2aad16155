"""The runtime model as Prometheus metrics, read at scrape time (no copy of any state).

Names where a metric means the same thing as in the widely used keepalived exporters, so
dashboards and alerts written for keepalived keep working:

- VRRP: keepalived-exporter v1.7.1 (github mehdy/keepalived-exporter, formerly
  cafebazaar/keepalived-exporter; older releases used names like keepalived_advert_sent):
  `keepalived_up`; `keepalived_vrrp_state` and `keepalived_vrrp_excluded_state` (labels iname,
  intf, vrid, ip_address; one series per VIP, the state as the value: keepalived's numbers
  INIT 0, BACKUP 1, MASTER 2, FAULT 3, and keepalived's STOP 98); the
  advertisement, master and error counters (`keepalived_advertisements_sent_total`...,
  labels iname, intf, vrid); `keepalived_gratuitous_arp_delay_total` (the configured
  garp_master_delay, a "total" only by that exporter's naming); `keepalived_script_status`
  (label name: GOOD 1, BAD 0).
- LVS: gen2brain/keepalived_exporter v0.7.1: `keepalived_lvs_vip_*` (labels addr, proto) and
  `keepalived_lvs_rs_*` (labels vip, addr, proto) for in/out packets, in/out bytes and
  connections. addr is IP:PORT, proto the IP protocol number, as that exporter reads them
  from IPVS.

Deliberate differences:
- No state label on the counters (cafebazaar's v1.2.0 had one; v1.7.1 has none): a
  transition would start new series and break rate().
- `keepalived_script_status` is left out while a script is INIT or DISABLED (the exporter
  skips statuses it does not know); `keepalived_script_state` (running/idle) is not served.
- LVS metrics are untyped: that exporter's names have no `_total`, which prometheus-client
  would add to a counter. A fwmark service's addr is `fwmark:N` (IPVS gives no address),
  a virtual_server_group's is `group:NAME` (its services' figures summed, as the model
  keeps them). The nftables backend counts new connections only: its packet and byte
  counters stay 0.
- The exporter's own check script (`keepalived_exporter_check_script_status`) has no
  meaning here.

hakeeper's own metrics carry the `hakeeper_` prefix (listed in README.md): priorities,
last transition time, trackers, sync groups, real server and checker results, notification
queue depth, daemon counters. Their label for an instance is `iname`, as the exporter's, never
`instance` (Prometheus's own target label).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from hakeeper import __version__
from hakeeper.state import InstanceState, RealServerState, Runtime, VirtualServerState

# keepalived's own state numbers (vrrp.h), as its data file and the exporter show them
STATE_NUMBER = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3, "STOP": 98}
PROTO_NUMBER = {"TCP": 6, "UDP": 17, "SCTP": 132}

# (exporter name, InstanceStats field, help)
VRRP_COUNTERS = (
    ("keepalived_advertisements_received", "advert_rcvd", "Advertisements received"),
    ("keepalived_advertisements_sent", "advert_sent", "Advertisements sent"),
    ("keepalived_become_master", "become_master", "Became master"),
    ("keepalived_release_master", "release_master", "Released master"),
    ("keepalived_packet_length_errors", "packet_len_err", "Packet length errors"),
    ("keepalived_advertisements_interval_errors", "advert_interval_err",
     "Advertisement interval errors"),
    ("keepalived_ip_ttl_errors", "ip_ttl_err", "TTL errors"),
    ("keepalived_invalid_type_received", "invalid_type_rcvd", "Invalid type errors"),
    ("keepalived_address_list_errors", "addr_list_err", "Address list errors"),
    ("keepalived_authentication_invalid", "invalid_authtype", "Authentication invalid"),
    ("keepalived_authentication_mismatch", "authtype_mismatch", "Authentication mismatch"),
    ("keepalived_authentication_failure", "auth_failure", "Authentication failure"),
    ("keepalived_priority_zero_received", "pri_zero_rcvd", "Priority zero received"),
    ("keepalived_priority_zero_sent", "pri_zero_sent", "Priority zero sent"),
    # counters keepalived keeps and that exporter does not serve
    ("hakeeper_vrrp_version_errors", "version_err", "Adverts dropped: another VRRP version"),
    ("hakeeper_vrrp_checksum_errors", "checksum_err", "Adverts dropped: bad checksum"),
    ("hakeeper_vrrp_vrid_errors", "vrid_err", "Adverts dropped: another VRID"),
)  # fmt: skip

# (name suffix, model counter, help) for keepalived_lvs_vip_* and keepalived_lvs_rs_*
LVS_COUNTERS = (
    ("in_packets", "inpkts", "in packets"),
    ("out_packets", "outpkts", "out packets"),
    ("in_bytes", "inbytes", "in bytes"),
    ("out_bytes", "outbytes", "out bytes"),
    ("conn", "conns", "connections"),
)

HEALTHY = frozenset({"GOOD", "UP", "OK"})  # a tracker's states that count as up

VRRP_LABELS = ["iname", "intf", "vrid"]
VIP_LABELS = ["iname", "intf", "vrid", "ip_address"]
TRACKER_LABELS = ["iname", "kind", "name"]
VS_LABELS = ["virtual_server"]
RS_LABELS = ["virtual_server", "real_server"]
CHECKER_LABELS = ["virtual_server", "real_server", "index", "kind"]


def _intf(view: InstanceState) -> str:
    return view.config.vmac_interface or view.config.interface


def _vs_addr(vs: VirtualServerState) -> str:
    c = vs.config
    if c.group is not None:
        return f"group:{c.group}"
    if c.fwmark is not None:
        return f"fwmark:{c.fwmark}"
    return _host_port(str(c.address), c.port or 0)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


STAT_FIELDS = tuple(field for _, field, _ in VRRP_COUNTERS)
LVS_KEYS = tuple(key for _, key, _ in LVS_COUNTERS)


@dataclass(slots=True)
class Snapshot:
    """The model's values for one scrape, as plain tuples: read on the event loop (cheap),
    turned into metric families and text elsewhere (the costly part)."""

    router_id: str = ""
    started: float = 0.0
    reloads: int = 0
    global_counters: dict[str, int] = field(default_factory=dict)
    queue_depth: int | None = None
    notify_dropped: int | None = None
    instances: list[tuple[Any, ...]] = field(default_factory=list)
    groups: list[tuple[str, int]] = field(default_factory=list)
    virtual_servers: list[tuple[Any, ...]] = field(default_factory=list)


def _read_instance(view: InstanceState) -> tuple[Any, ...]:
    c = view.config
    intf = _intf(view)
    trackers = view.trackers() if view.trackers is not None else ()
    return (
        c.name,
        intf,
        str(c.virtual_router_id),
        STATE_NUMBER.get(view.state, 0),
        [(v.dev or intf, str(v.address)) for v in c.virtual_ipaddress],
        [(v.dev or intf, str(v.address)) for v in c.virtual_ipaddress_excluded],
        c.garp_master_delay,
        [getattr(view.stats, f) for f in STAT_FIELDS],
        view.effective_priority,
        view.base_priority,
        c.priority,
        view.last_transition,
        view.vips_present,
        view.maintenance,
        [(t.kind, t.name, t.state, t.contribution) for t in trackers],
    )


def _read_vs(vs: VirtualServerState) -> tuple[Any, ...]:
    servers: list[RealServerState] = list(vs.real_servers.values())
    if vs.sorry_server is not None:
        servers.append(vs.sorry_server)
    rows = []
    for rs in servers:
        rc = rs.config
        rows.append((
            rc.name,
            _host_port(str(rc.address), rc.port or 0),
            [rs.counters.get(k, 0) for k in LVS_KEYS],
            rs.alive,
            rs.enabled,
            rs.in_pool,
            rs.weight,
            rs.checks() if rs.checks is not None else [],
        ))  # fmt: skip
    return (
        vs.name,
        _vs_addr(vs),
        str(PROTO_NUMBER.get(vs.config.protocol, 0)),
        [vs.counters.get(k, 0) for k in LVS_KEYS],
        vs.quorum_up,
        vs.sorry_active,
        rows,
    )


class ModelCollector(Collector):
    """A prometheus-client collector over one daemon's Runtime (and its notifier's queues).

    collect() reads the model and builds fresh families in one go (tests, a registry).
    The daemon's endpoint splits it: read_parts() on the event loop, a few objects at a
    time, then families() and the text in a worker thread (see hakeeper.metrics.server)."""

    def __init__(
        self,
        runtime: Runtime,
        queue_depth: Callable[[], int] | None = None,
        notify_dropped: Callable[[], int] | None = None,
    ) -> None:
        self.runtime = runtime
        self.queue_depth = queue_depth
        self.notify_dropped = notify_dropped

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the model; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        snap = Snapshot()
        for _ in self.read_parts(snap):
            pass
        return families(snap)

    def read_parts(self, snap: Snapshot, chunk: int = 100) -> Iterator[None]:
        """Fill `snap` from the model, pausing (yielding) after every `chunk` objects so the
        caller can let the event loop run between two parts."""
        rt = self.runtime
        snap.router_id, snap.started, snap.reloads = rt.router_id, rt.started, rt.reloads
        snap.global_counters = dict(rt.global_counters)
        if self.queue_depth is not None:
            snap.queue_depth = self.queue_depth()
        if self.notify_dropped is not None:
            snap.notify_dropped = self.notify_dropped()
        snap.groups = [(g.config.name, STATE_NUMBER.get(g.state, 0)) for g in rt.groups.values()]
        for i, view in enumerate(list(rt.instances.values()), 1):
            snap.instances.append(_read_instance(view))
            if i % chunk == 0:
                yield
        for i, vs in enumerate(list(rt.virtual_servers.values()), 1):
            snap.virtual_servers.append(_read_vs(vs))
            if i % max(1, chunk // 10) == 0:  # a virtual server holds many real servers
                yield


def families(snap: Snapshot) -> Iterator[Metric]:
    """The metric families of one snapshot (pure: touches nothing but `snap`)."""
    yield from _daemon(snap)
    yield from _vrrp(snap)
    yield from _lvs(snap)


def _daemon(snap: Snapshot) -> Iterator[Metric]:
    yield GaugeMetricFamily("keepalived_up", "Status", value=1)
    info = GaugeMetricFamily(
        "hakeeper_info", "hakeeper version and router_id", labels=["version", "router_id"]
    )
    info.add_metric([__version__, snap.router_id], 1)
    yield info
    yield GaugeMetricFamily(
        "hakeeper_start_time_seconds", "When the daemon started (Unix time)", value=snap.started
    )
    yield CounterMetricFamily("hakeeper_reloads", "Successful reloads", value=snap.reloads)
    events = CounterMetricFamily(
        "hakeeper_global_events",
        "Daemon-wide counters (vrid_err, reload_failed, lvs_apply_errors, dbus_*...)",
        labels=["event"],
    )
    for name, value in sorted(snap.global_counters.items()):
        events.add_metric([name], value)
    yield events
    if snap.queue_depth is not None:
        yield GaugeMetricFamily(
            "hakeeper_notify_queue_depth",
            "Notifications (scripts, mail) waiting or running",
            value=snap.queue_depth,
        )
    if snap.notify_dropped is not None:
        yield CounterMetricFamily(
            "hakeeper_notify_dropped",
            "Notifications dropped from full queues, FIFO lines without a reader",
            value=snap.notify_dropped,
        )


INSTANCE_GAUGES = (
    ("effective_priority", "Priority in elections now (0: FAULT)"),
    ("base_priority", "Priority elections start from (config or SetPriority)"),
    ("config_priority", "Configured priority"),
    ("last_transition_timestamp_seconds", "Unix time of the last state change"),
    ("vips_present", "1 while this node holds the VIPs"),
    ("maintenance", "1 while out of elections by an operator's order"),
)


def _vrrp(snap: Snapshot) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "keepalived_vrrp_state",
        "State of vrrp (INIT 0, BACKUP 1, MASTER 2, FAULT 3, STOP 98)",
        labels=VIP_LABELS,
    )
    excluded = GaugeMetricFamily(
        "keepalived_vrrp_excluded_state", "State of vrrp with excluded VIP", labels=VIP_LABELS
    )
    garp = CounterMetricFamily(
        "keepalived_gratuitous_arp_delay", "Gratuitous ARP delay", labels=VRRP_LABELS
    )
    counters = [CounterMetricFamily(n, t, labels=VRRP_LABELS) for n, _, t in VRRP_COUNTERS]
    gauges = [
        GaugeMetricFamily(f"hakeeper_vrrp_{n}", t, labels=["iname"]) for n, t in INSTANCE_GAUGES
    ]
    script = GaugeMetricFamily(
        "keepalived_script_status", "Tracker Script Status (GOOD 1, BAD 0)", labels=["name"]
    )
    t_up = GaugeMetricFamily(
        "hakeeper_tracker_up",
        "1 while a tracker is healthy (script GOOD, interface UP, file OK, process UP)",
        labels=TRACKER_LABELS,
    )
    t_delta = GaugeMetricFamily(
        "hakeeper_tracker_priority_delta",
        "What a tracker adds to the instance's priority now (0 while it faults it)",
        labels=TRACKER_LABELS,
    )
    t_fault = GaugeMetricFamily(
        "hakeeper_tracker_faulting", "1 while a tracker puts its instance in FAULT",
        labels=TRACKER_LABELS,
    )  # fmt: skip
    scripts: dict[str, str] = {}
    for row in snap.instances:
        (name, intf, vrid, number, vips, excl, garp_delay, stats,
         effective, base, configured, last, present, maint, trackers) = row  # fmt: skip
        for dev, addr in vips:
            state.add_metric([name, dev, vrid, addr], number)
        if not vips:  # as the exporter: one series even without VIPs
            state.add_metric([name, intf, vrid, ""], number)
        for dev, addr in excl:
            excluded.add_metric([name, dev, vrid, addr], number)
        labels = [name, intf, vrid]
        garp.add_metric(labels, garp_delay)
        for family, value in zip(counters, stats, strict=True):
            family.add_metric(labels, value)
        values = (effective, base, configured, last, int(present), int(maint))
        for family, value in zip(gauges, values, strict=True):
            if value is not None:  # no transition yet: no timestamp
                family.add_metric([name], value)
        for kind, tname, tstate, contribution in trackers:
            tl = [name, kind, tname]
            t_up.add_metric(tl, int(tstate in HEALTHY))
            t_delta.add_metric(tl, contribution or 0)
            t_fault.add_metric(tl, int(contribution is None))
            if kind == "script":
                scripts[tname] = tstate
    for tname, tstate in sorted(scripts.items()):
        if tstate in ("GOOD", "BAD"):
            script.add_metric([tname], int(tstate == "GOOD"))
    group = GaugeMetricFamily(
        "hakeeper_vrrp_sync_group_state",
        "State of a vrrp_sync_group (INIT 0, BACKUP 1, MASTER 2, FAULT 3, STOP 98)",
        labels=["group"],
    )
    for gname, number in snap.groups:
        group.add_metric([gname], number)
    yield from (state, excluded, garp, *counters, *gauges, script, t_up, t_delta, t_fault, group)


RS_GAUGES = (
    ("alive", "1 while every checker of the real server is up"),
    ("enabled", "0 while drained by an operator"),
    ("in_pool", "1 while in the kernel table with a weight above zero"),
    ("weight", "The weight the real server gets when in the pool"),
)


def _lvs(snap: Snapshot) -> Iterator[Metric]:
    vip = [
        UnknownMetricFamily(f"keepalived_lvs_vip_{s}", f"VIP {t}", labels=["addr", "proto"])
        for s, _, t in LVS_COUNTERS
    ]
    rsf = [
        UnknownMetricFamily(f"keepalived_lvs_rs_{s}", f"RS {t}", labels=["vip", "addr", "proto"])
        for s, _, t in LVS_COUNTERS
    ]
    quorum = GaugeMetricFamily(
        "hakeeper_lvs_vs_quorum_up", "1 while the virtual server has quorum", labels=VS_LABELS
    )
    sorry = GaugeMetricFamily(
        "hakeeper_lvs_vs_sorry_server_active", "1 while the sorry server serves", labels=VS_LABELS
    )
    rs_g = [GaugeMetricFamily(f"hakeeper_lvs_rs_{n}", t, labels=RS_LABELS) for n, t in RS_GAUGES]
    ck_up = GaugeMetricFamily(
        "hakeeper_lvs_checker_up", "1 while the checker passes", labels=CHECKER_LABELS
    )
    ck_runs = CounterMetricFamily(
        "hakeeper_lvs_checker_checks", "Checks run", labels=CHECKER_LABELS
    )
    ck_fail = CounterMetricFamily(
        "hakeeper_lvs_checker_failures", "Checks failed", labels=CHECKER_LABELS
    )
    ck_dur = GaugeMetricFamily(
        "hakeeper_lvs_checker_last_duration_seconds", "How long the last check took",
        labels=CHECKER_LABELS,
    )  # fmt: skip
    for vs_name, addr, proto, counts, quorum_up, sorry_active, rows in snap.virtual_servers:
        for family, value in zip(vip, counts, strict=True):
            family.add_metric([addr, proto], value)
        quorum.add_metric([vs_name], int(quorum_up))
        sorry.add_metric([vs_name], int(sorry_active))
        for rs_name, raddr, rcounts, alive, enabled, in_pool, weight, checks in rows:
            for family, value in zip(rsf, rcounts, strict=True):
                family.add_metric([addr, raddr, proto], value)
            labels = [vs_name, rs_name]
            for family, value in zip(rs_g, (alive, enabled, in_pool, weight), strict=True):
                family.add_metric(labels, int(value))
            for check in checks:
                cl = [vs_name, rs_name, str(check["index"]), str(check["kind"])]
                ck_up.add_metric(cl, int(bool(check.get("up"))))
                ck_runs.add_metric(cl, check.get("checks") or 0)
                ck_fail.add_metric(cl, check.get("failures") or 0)
                if check.get("last_duration") is not None:
                    ck_dur.add_metric(cl, check["last_duration"])
    yield from (*vip, *rsf, quorum, sorry, *rs_g, ck_up, ck_runs, ck_fail, ck_dur)
