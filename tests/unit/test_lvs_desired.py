"""The desired LVS table: keepalived's quorum, hysteresis, sorry server and inhibit rules."""

from __future__ import annotations

import ipaddress

import pytest

from hakeeper.config.lvs_model import RealServer, VirtualServer, VirtualServerGroup, VsgEntry
from hakeeper.lvs.desired import desired_table, initial_quorum, service_keys, update_quorum
from hakeeper.lvs.table import DestKey, ServiceKey
from hakeeper.state import RealServerState, VirtualServerState

VIP = ipaddress.ip_address("198.18.0.100")


def rs(host: int, weight: int = 1, **kw: object) -> RealServer:
    return RealServer(ipaddress.ip_address(f"198.18.1.{host}"), 80, weight=weight, **kw)


def vs_state(*servers: RealServer, **kw: object) -> VirtualServerState:
    vs = VirtualServer(address=VIP, port=80, lvs_sched="rr", real_servers=servers, **kw)
    state = VirtualServerState(vs, {s.name: RealServerState(s) for s in servers})
    if vs.sorry_server is not None:
        state.sorry_server = RealServerState(vs.sorry_server, sorry=True)
    state.quorum_up = initial_quorum(state)
    return state


def weights(state: VirtualServerState) -> dict[str, int]:
    (entry,) = desired_table([state], {}).values()
    return {str(k): d.weight for k, d in entry.dests.items()}


def kill(state: VirtualServerState, host: int, alive: bool = False) -> None:
    state.real_servers[f"198.18.1.{host}:80"].alive = alive
    update_quorum(state)


def test_alive_servers_are_in_the_pool_with_their_weight() -> None:
    state = vs_state(rs(10, 1), rs(11, 2), rs(12, 3))
    assert weights(state) == {"198.18.1.10:80": 1, "198.18.1.11:80": 2, "198.18.1.12:80": 3}
    kill(state, 11)
    assert weights(state) == {"198.18.1.10:80": 1, "198.18.1.12:80": 3}
    assert state.real_servers["198.18.1.11:80"].in_pool is False


def test_inhibit_on_failure_keeps_a_dead_server_at_weight_zero() -> None:
    state = vs_state(rs(10), rs(11, 5, inhibit_on_failure=True))
    kill(state, 11)
    assert weights(state) == {"198.18.1.10:80": 1, "198.18.1.11:80": 0}
    state2 = vs_state(rs(10), rs(11), inhibit_on_failure=True)  # the virtual server's default
    kill(state2, 10)
    assert weights(state2) == {"198.18.1.10:80": 0, "198.18.1.11:80": 1}


def test_sorry_server_takes_over_when_all_are_down_and_leaves_when_one_returns() -> None:
    sorry = RealServer(ipaddress.ip_address("198.18.2.1"), 8080)
    state = vs_state(rs(10), rs(11), sorry_server=sorry)
    assert "198.18.2.1:8080" not in weights(state)
    kill(state, 10)
    kill(state, 11)
    assert not state.quorum_up
    assert weights(state) == {"198.18.2.1:8080": 1}
    assert state.sorry_active
    kill(state, 10, alive=True)
    assert state.quorum_up
    assert weights(state) == {"198.18.1.10:80": 1}


def test_sorry_server_inhibit_keeps_it_at_weight_zero_while_idle() -> None:
    sorry = RealServer(ipaddress.ip_address("198.18.2.1"), 8080, weight=3)
    state = vs_state(rs(10), sorry_server=sorry, sorry_server_inhibit=True)
    assert weights(state) == {"198.18.1.10:80": 1, "198.18.2.1:8080": 0}
    kill(state, 10)
    assert weights(state) == {"198.18.2.1:8080": 3}


@pytest.mark.parametrize(
    ("quorum", "hysteresis", "alive_sequence", "expected"),
    [
        # quorum 3, hysteresis 1: lost below 2, regained at 4
        (3, 1, [4, 3, 2, 1, 2, 3, 4], [True, True, True, False, False, False, True]),
        # no hysteresis: lost below 3, regained at 3
        (3, 0, [4, 2, 3], [True, False, True]),
        # quorum 1: lost only when nothing is alive
        (1, 0, [4, 1, 0, 1], [True, True, False, True]),
    ],
)
def test_quorum_follows_keepalived_hysteresis(
    quorum: int, hysteresis: int, alive_sequence: list[int], expected: list[bool]
) -> None:
    state = vs_state(*(rs(10 + i) for i in range(4)), quorum=quorum, hysteresis=hysteresis)
    seen = []
    for n_alive in alive_sequence:
        for i, server in enumerate(state.real_servers.values()):
            server.alive = i < n_alive
        update_quorum(state)
        seen.append(state.quorum_up)
    assert seen == expected


def test_drained_server_stays_in_the_table_at_weight_zero() -> None:
    state = vs_state(rs(10), rs(11))
    state.real_servers["198.18.1.11:80"].enabled = False
    assert weights(state) == {"198.18.1.10:80": 1, "198.18.1.11:80": 0}


def test_group_expands_to_one_service_per_address_and_fwmark() -> None:
    group = VirtualServerGroup(
        "web",
        (
            VsgEntry(VIP, ipaddress.ip_address("198.18.0.102"), port=80),
            VsgEntry(fwmark=7),
        ),
    )
    vs = VirtualServer(group="web", real_servers=(rs(10),))
    keys = service_keys(vs, {"web": group})
    assert keys == [
        ServiceKey(4, "TCP", "198.18.0.100", 80),
        ServiceKey(4, "TCP", "198.18.0.101", 80),
        ServiceKey(4, "TCP", "198.18.0.102", 80),
        ServiceKey(4, "TCP", fwmark=7),
    ]
    state = VirtualServerState(vs, {r.name: RealServerState(r) for r in vs.real_servers})
    table = desired_table([state], {"web": group})
    assert all(DestKey("198.18.1.10", 80) in e.dests for e in table.values())


def test_persistence_gives_the_full_mask_unless_a_granularity_is_set() -> None:
    state = vs_state(rs(10), persistence_timeout=360)
    (entry,) = desired_table([state], {}).values()
    assert (entry.service.persistence_timeout, entry.service.netmask) == (360, "255.255.255.255")
    state = vs_state(
        rs(10), persistence_timeout=60,
        persistence_granularity=ipaddress.ip_address("255.255.255.0"),
    )  # fmt: skip
    (entry,) = desired_table([state], {}).values()
    assert entry.service.netmask == "255.255.255.0"
