"""What the kernel table should hold, from config and live server state (sans-IO).

keepalived's rules (check/ipwrapper.c), kept here in one place:
- a real server is alive when every one of its checkers is up;
- quorum: the summed weight of the alive servers; it is lost when that sum drops below
  `quorum - hysteresis` (or to zero) and regained at `quorum + hysteresis`;
- while quorum is lost and a sorry server exists, the sorry server alone takes traffic
  (alive servers leave the pool); otherwise alive servers are in the pool with their weight;
- a dead server leaves the pool, or stays at weight 0 with inhibit_on_failure (so existing
  connections are kept); a sorry server with sorry_server_inhibit stays at weight 0 when idle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hakeeper.config.lvs_model import (
    RealServer,
    VirtualServer,
    VirtualServerGroup,
    effective_inhibit,
    effective_method,
    prefix_length,
)
from hakeeper.lvs.table import Dest, DestKey, Entry, Service, ServiceKey, Table
from hakeeper.state import RealServerState, VirtualServerState

MAX_WEIGHT = 65535  # IPVS weights are unsigned 16 bits in ipvsadm's range
FULL_MASK = {4: "255.255.255.255", 6: "128"}  # IPv6 granularity is a prefix length


@dataclass(frozen=True, slots=True)
class QuorumChange:
    up: bool
    weight_sum: int
    threshold: int


def alive_weight(vs: VirtualServerState) -> int:
    return sum(max(0, rs.weight) for rs in vs.real_servers.values() if rs.alive and rs.enabled)


def initial_quorum(vs: VirtualServerState) -> bool:
    """keepalived's set_quorum_states: up at start when the sum reaches quorum+hysteresis."""
    c = vs.config
    return alive_weight(vs) >= c.quorum + c.hysteresis


def update_quorum(vs: VirtualServerState) -> QuorumChange | None:
    """Apply the hysteresis rule; returns the change when the quorum state flips."""
    c = vs.config
    total = alive_weight(vs)
    threshold = c.quorum + (-c.hysteresis if vs.quorum_up else c.hysteresis)
    if not vs.quorum_up and total >= threshold:
        vs.quorum_up = True
        return QuorumChange(True, total, threshold)
    if vs.quorum_up and (total == 0 or total < threshold):
        vs.quorum_up = False
        return QuorumChange(False, total, threshold)
    return None


def service_keys(vs: VirtualServer, groups: Mapping[str, VirtualServerGroup]) -> list[ServiceKey]:
    """The kernel services one virtual_server stands for (a group: one per address/fwmark)."""
    if vs.fwmark is not None:
        return [ServiceKey(vs.family, vs.protocol, fwmark=vs.fwmark)]
    if vs.group is None:
        assert vs.address is not None and vs.port is not None
        return [ServiceKey(vs.family, vs.protocol, str(vs.address), vs.port)]
    keys: list[ServiceKey] = []
    for entry in groups[vs.group].entries:
        if entry.fwmark is not None:
            keys.append(ServiceKey(vs.family, vs.protocol, fwmark=entry.fwmark))
            continue
        for addr in entry.addresses():
            if addr.version == vs.family:
                keys.append(ServiceKey(vs.family, vs.protocol, str(addr), entry.port or 0))
    return keys


def _service(vs: VirtualServer, key: ServiceKey) -> Service:
    netmask = None
    g = vs.persistence_granularity
    if g is not None:
        netmask = str(g) if g.version == 4 else str(prefix_length(g))
    elif vs.persistence_timeout is not None:
        netmask = FULL_MASK[vs.family]  # IPVS' default granularity: the whole address
    return Service(
        key=key,
        sched=vs.lvs_sched,
        flags=tuple(sorted(vs.sched_flags)),
        persistence_timeout=vs.persistence_timeout,
        netmask=netmask,
    )


def _dest(vs: VirtualServer, rs: RealServer, weight: int) -> Dest:
    return Dest(
        key=DestKey(str(rs.address), rs.port or 0),
        method=effective_method(vs, rs),
        weight=max(0, min(MAX_WEIGHT, weight)),
        u_threshold=rs.uthreshold,
        l_threshold=rs.lthreshold,
    )


def pool(vs: VirtualServerState) -> list[tuple[RealServerState, int]]:
    """The servers in the table and the weight each gets; also marks `in_pool`/`sorry_active`."""
    c = vs.config
    use_sorry = vs.sorry_server is not None and not vs.quorum_up
    vs.sorry_active = use_sorry
    out: list[tuple[RealServerState, int]] = []
    for rs in vs.real_servers.values():
        if rs.alive and not use_sorry:
            out.append((rs, rs.weight if rs.enabled else 0))
        elif effective_inhibit(c, rs.config):  # dead, or pushed out by the sorry server
            out.append((rs, 0))
    if vs.sorry_server is not None:
        if use_sorry:
            out.append((vs.sorry_server, vs.sorry_server.weight))
        elif c.sorry_server_inhibit:
            out.append((vs.sorry_server, 0))
    members = {id(rs): w for rs, w in out}
    for rs in (*vs.real_servers.values(), *([vs.sorry_server] if vs.sorry_server else [])):
        w = members.get(id(rs))
        rs.pool_weight = w
        rs.in_pool = bool(w)
    return out


def desired_table(
    servers: Iterable[VirtualServerState], groups: Mapping[str, VirtualServerGroup]
) -> Table:
    table: Table = {}
    for vs in servers:
        members = pool(vs)
        for key in service_keys(vs.config, groups):
            dests: dict[DestKey, Dest] = {}
            for rs, weight in members:
                dest = _dest(vs.config, rs.config, weight)
                if dest.key not in dests:  # a sorry server equal to a real server: once
                    dests[dest.key] = dest
            table[key] = Entry(_service(vs.config, key), dests)
    return table
