"""The SNMP keys of global_defs: keepalived's switches and hakeeper's snmp_agent block."""

from __future__ import annotations

import pytest

from hakeeper.config import ConfigErrors
from hakeeper.config.convert import to_yaml
from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.model import SnmpCommunity, SnmpTrapTarget
from hakeeper.config.yaml_reader import parse_yaml_text
from hakeeper.snmp.service import embedded_config, own_mib_wanted, wanted

INSTANCE = """vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        198.18.0.100/24
    }
}
"""


def conf(global_body: str) -> str:
    return f"global_defs {{\n{global_body}}}\n{INSTANCE}"


AGENT = """    snmp_agent {
        listen 198.18.0.1:1161
        listen [fd00:198:18::1]
        community monitor ro 198.18.0.0/24
        community alerts trap
        user ops SHA-256 ops-auth-key AES ops-priv-key rw
        trap_target 198.18.0.10 community alerts
        trap_target [fd00:198:18::10]:1162 user ops
    }
"""


def test_snmp_agent_block_is_read_and_maps_onto_the_embedded_agent() -> None:
    g = parse_keepalived_text(conf(AGENT), "k.conf").global_defs
    agent = g.snmp_agent
    assert agent is not None
    assert agent.listen == (("198.18.0.1", 1161), ("fd00:198:18::1", 161))
    assert agent.communities[0] == SnmpCommunity("monitor", "ro", ("198.18.0.0/24",))
    assert agent.users[0].access == "rw" and agent.users[0].auth == "SHA-256"
    assert agent.trap_targets[1] == SnmpTrapTarget("fd00:198:18::10", 1162, user="ops")
    embedded = embedded_config(agent)
    assert [c.name for c in embedded.communities] == ["monitor"]  # `trap` answers nothing
    assert len(embedded.trap_targets) == 2
    # the embedded agent alone serves every MIB, its own included
    assert wanted(g) and own_mib_wanted(g)


def test_keepalived_switches_alone_mean_agentx_and_pick_the_mibs() -> None:
    g = parse_keepalived_text(conf("    enable_snmp_rfcv3\n"), "k.conf").global_defs
    assert wanted(g) and not own_mib_wanted(g)
    g = parse_keepalived_text(conf("    enable_snmp_keepalived\n"), "k.conf").global_defs
    assert own_mib_wanted(g)
    assert not wanted(parse_keepalived_text(conf("    router_id x\n"), "k.conf").global_defs)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("community public xx", "access 'xx' is not ro, rw or trap"),
        ("community public ro 198.18.0.0/33", "'198.18.0.0/33' is not a network"),
        ("user ops SHA short AES ops-priv-key", "keys need 8+ characters"),
        ("user ops MD5 ops-auth-key AES ops-priv-key", "auth must be one of SHA"),
        ("listen 198.18.0.1:99999", "port"),
        ("trap_target 198.18.0.10 user nobody", "no user nobody"),
        ("frobnicate", "is not listen"),
    ],
)
def test_snmp_agent_errors_name_file_and_line(line: str, message: str) -> None:
    text = conf(f"    snmp_agent {{\n        {line}\n    }}\n")
    with pytest.raises(ConfigErrors) as e:
        parse_keepalived_text(text, "k.conf")
    errors = [str(err) for err in e.value.errors]
    assert any(err.startswith("k.conf:") and message in err for err in errors), errors


def test_snmp_agent_converts_to_yaml_and_back() -> None:
    original = parse_keepalived_text(conf(AGENT), "k.conf")
    again = parse_yaml_text(to_yaml(original), "h.yaml")
    assert again == original
