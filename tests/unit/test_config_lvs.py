"""LVS config: virtual_server(_group), real_server, sorry_server and checkers, from
keepalived.conf and YAML, with keepalived's keywords, aliases, defaults and corrections."""

from __future__ import annotations

import ipaddress
import textwrap
from typing import Any

import pytest

from hakeeper.config import ConfigErrors
from hakeeper.config.convert import to_yaml
from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.lvs import parse_hex, parse_status_codes
from hakeeper.config.lvs_model import (
    Checker,
    RealServer,
    VirtualServer,
    effective_alpha,
    effective_connect_timeout,
    effective_delay_before_retry,
    effective_delay_loop,
    effective_inhibit,
    effective_method,
    effective_misc_timeout,
    effective_retry,
    effective_rs_smtp_alert,
    effective_virtualhost,
    effective_vs_smtp_alert,
    effective_warmup,
    prefix_length,
)
from hakeeper.config.model import Config
from hakeeper.config.yaml_reader import parse_yaml_text

ip = ipaddress.ip_address


def server(
    vs_lines: str = "",
    rs_lines: str = "",
    *,
    header: str = "198.18.0.100 80",
    rs: str = "198.18.1.10 80",
    protocol: str | None = "TCP",
) -> str:
    proto = f"    protocol {protocol}\n" if protocol else ""
    return (
        f"virtual_server {header} {{\n{proto}{vs_lines}\n"
        f"    real_server {rs} {{\n{rs_lines}\n    }}\n}}\n"
    )


def read(text: str) -> Config:
    return parse_keepalived_text(text, "k.conf")


def one(text: str) -> VirtualServer:
    (vs,) = read(text).virtual_servers
    return vs


def checker(kind: str, lines: str = "", vs_lines: str = "") -> tuple[VirtualServer, Checker]:
    vs = one(server(vs_lines, f"{kind} {{\n{lines}\n}}"))
    (ck,) = vs.real_servers[0].checkers
    return vs, ck


def errors_of(text: str, reader: Any = read) -> list[str]:
    with pytest.raises(ConfigErrors) as exc:
        reader(text)
    return [str(e) for e in exc.value.errors]


def warnings_of(text: str) -> list[str]:
    return [str(w) for w in read(text).warnings]


# ---------------------------------------------------------------- defaults and inheritance


def test_defaults_are_keepalived_defaults() -> None:
    vs = one(server(rs_lines="TCP_CHECK {\n}", protocol="TCP"))
    rs = vs.real_servers[0]
    ck = rs.checkers[0]
    assert (vs.lvs_sched, vs.lvs_method, vs.protocol, vs.family) == ("wlc", "NAT", "TCP", 4)
    assert (vs.delay_loop, vs.quorum, vs.hysteresis, vs.weight) == (60.0, 1, 0, 1)
    assert (vs.persistence_timeout, vs.sched_flags, vs.alpha, vs.omega) == (None, (), False, False)
    assert (rs.port, rs.weight, rs.uthreshold, rs.lthreshold) == (80, 1, 0, 0)
    assert effective_method(vs, rs) == "NAT" and effective_inhibit(vs, rs) is False
    assert effective_delay_loop(vs, rs, ck) == 60.0
    assert effective_connect_timeout(vs, rs, ck) == 5.0
    assert effective_retry(vs, rs, ck) == 1
    assert effective_delay_before_retry(vs, rs, ck) == 1.0
    assert effective_warmup(vs, rs, ck) == 60.0  # the delay_loop
    assert effective_alpha(vs, rs, ck) is False


@pytest.mark.parametrize(
    ("kind", "lines", "retry", "delay_before_retry"),
    [
        ("TCP_CHECK", "", 1, 1.0),
        ("PING_CHECK", "", 1, 1.0),
        ("UDP_CHECK", "", 1, 1.0),
        ("SMTP_CHECK", "", 1, 1.0),
        ("HTTP_GET", "url {\npath /\n}", 1, 3.0),
        ("SSL_GET", "url {\npath /\n}", 1, 3.0),
        ("DNS_CHECK", "delay_loop 7", 3, 7.0),  # DNS: retry 3, delay_before_retry = delay_loop
        ("MISC_CHECK", "misc_path /bin/true", 0, 1.0),
    ],
)
def test_per_kind_defaults(kind: str, lines: str, retry: int, delay_before_retry: float) -> None:
    vs, ck = checker(kind, lines)
    rs = vs.real_servers[0]
    assert effective_retry(vs, rs, ck) == retry
    assert effective_delay_before_retry(vs, rs, ck) == delay_before_retry


def test_inheritance_checker_then_real_then_virtual_server() -> None:
    vs = one(
        server(
            "    delay_loop 10\n    connect_timeout 4\n    retry 5\n    delay_before_retry 6\n"
            "    warmup 7\n    alpha\n    virtualhost vs.example\n    inhibit_on_failure\n"
            "    lvs_method DR",
            "connect_timeout 3\nretry 2\nvirtualhost rs.example\ninhibit_on_failure false\n"
            "lvs_method NAT\n"
            "HTTP_GET {\n url {\n  path /\n  virtualhost url.example\n }\n"
            " delay_loop 2\n alpha false\n}\nTCP_CHECK {\n}",
        )
    )
    rs = vs.real_servers[0]
    http, tcp = rs.checkers
    assert effective_delay_loop(vs, rs, http) == 2.0
    assert effective_delay_loop(vs, rs, tcp) == 10.0
    assert effective_connect_timeout(vs, rs, http) == 3.0
    assert effective_retry(vs, rs, http) == 2
    assert effective_delay_before_retry(vs, rs, http) == 6.0  # set on the VS wins over 3s
    assert effective_warmup(vs, rs, http) == 7.0
    assert effective_alpha(vs, rs, http) is False
    assert effective_alpha(vs, rs, tcp) is True
    assert effective_virtualhost(vs, rs, http) == "rs.example"
    assert effective_virtualhost(vs, rs, http, http.url[0]) == "url.example"
    assert effective_inhibit(vs, rs) is False and effective_method(vs, rs) == "NAT"
    # a real server with nothing set takes the virtual server's
    bare = RealServer(address=ip("198.18.1.99"), port=80)
    assert effective_connect_timeout(vs, bare, tcp) == 4.0
    assert effective_warmup(vs, bare, Checker("TCP_CHECK")) == 7.0
    assert effective_inhibit(vs, bare) is True and effective_method(vs, bare) == "DR"


def test_warmup_defaults_to_the_checkers_delay_loop() -> None:
    vs, ck = checker("TCP_CHECK", "delay_loop 3", "    delay_loop 20")
    assert effective_warmup(vs, vs.real_servers[0], ck) == 3.0


def test_misc_timeout_defaults_to_the_virtual_servers_delay_loop() -> None:
    vs, ck = checker("MISC_CHECK", "misc_path /bin/true\ndelay_loop 3", "    delay_loop 20")
    assert effective_misc_timeout(vs, vs.real_servers[0], ck) == 20.0
    vs, ck = checker("MISC_CHECK", "misc_path /bin/true\nmisc_timeout 4")
    assert effective_misc_timeout(vs, vs.real_servers[0], ck) == 4.0


def test_file_check_never_starts_down() -> None:
    text = "track_file f {\n file /run/f\n}\n" + server(
        "    alpha", "FILE_CHECK {\ntrack_file f\n}\nTCP_CHECK {\n}"
    )
    vs = one(text)
    rs = vs.real_servers[0]
    assert [effective_alpha(vs, rs, ck) for ck in rs.checkers] == [False, True]


def test_smtp_alert_defaults() -> None:
    g = read("").global_defs
    vs = one(server())
    rs = vs.real_servers[0]
    assert effective_vs_smtp_alert(g, vs) is False  # keepalived: off for services
    assert effective_rs_smtp_alert(g, rs) is True  # ... and on for real servers
    g = read("global_defs {\n smtp_alert false\n smtp_alert_checker\n}\n").global_defs
    assert g.smtp_alert_checker is True
    assert effective_vs_smtp_alert(g, vs) is True
    vs = one(server("    smtp_alert false", "smtp_alert no"))
    assert effective_vs_smtp_alert(g, vs) is False
    assert effective_rs_smtp_alert(g, vs.real_servers[0]) is False


# ---------------------------------------------------------------- virtual server keywords


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("lvs_sched rr", {"lvs_sched": "rr"}),
        ("lb_algo sh", {"lvs_sched": "sh"}),
        ("lvs_method DR", {"lvs_method": "DR"}),
        ("lb_kind TUN", {"lvs_method": "TUN"}),
        ("persistence_timeout", {"persistence_timeout": 360}),
        ("persistence_timeout 50", {"persistence_timeout": 50}),
        (
            "persistence_granularity 255.255.255.0",
            {"persistence_granularity": ip("255.255.255.0"), "persistence_timeout": 360},
        ),
        ("persistence_engine sip", {"persistence_engine": "sip"}),
        ("protocol udp", {"protocol": "UDP"}),
        ("protocol SCTP", {"protocol": "SCTP"}),
        ("quorum 1", {"quorum": 1}),
        ("hysteresis 0", {"hysteresis": 0}),
        ("quorum_up \"/bin/up 'a b'\"", {"quorum_up": ("/bin/up", "a b")}),
        ('quorum_down "/bin/down x"', {"quorum_down": ("/bin/down", "x")}),
        ("alpha", {"alpha": True}),
        ("omega", {"omega": True}),
        ("inhibit_on_failure", {"inhibit_on_failure": True}),
        ("ha_suspend", {"ha_suspend": True}),
        ("delay_loop 2.5", {"delay_loop": 2.5}),
        ("connect_timeout 0.5", {"connect_timeout": 0.5}),
        ("retry 4", {"retry": 4}),
        ("delay_before_retry 0", {"delay_before_retry": 0.0}),
        ("warmup 0", {"warmup": 0.0}),
        ("virtualhost www.example.com", {"virtualhost": "www.example.com"}),
        ("smtp_alert", {"smtp_alert": True}),
        ("smtp_alert off", {"smtp_alert": False}),
        ("snmp_name web", {"snmp_name": "web"}),
        ("weight 5", {"weight": 5}),
        ("sorry_server_inhibit\n sorry_server 198.18.2.1 80", {"sorry_server_inhibit": True}),
    ],
)
def test_virtual_server_keywords(lines: str, expected: dict[str, Any]) -> None:
    vs = one(server(f"    {lines}"))
    assert {k: getattr(vs, k) for k in expected} == expected


def test_virtual_server_weight_is_the_real_servers_default() -> None:
    text = (
        "virtual_server 198.18.0.100 80 {\n protocol TCP\n weight 4\n"
        " real_server 198.18.1.10 80 {\n }\n real_server 198.18.1.11 80 {\n  weight 0\n }\n}\n"
    )
    vs = one(text)
    assert [rs.weight for rs in vs.real_servers] == [4, 0]


@pytest.mark.parametrize(
    ("sched", "flags", "expected", "warned"),
    [
        ("sh", "sh-port\nsh-fallback", ("sh-fallback", "sh-port"), False),
        ("sh", "flag-1\nflag-2\nflag-3", ("flag-3", "sh-fallback", "sh-port"), False),
        ("mh", "flag-2\nmh-fallback", ("mh-fallback", "mh-port"), False),
        ("rr", "flag-1\nflag-3", ("flag-1", "flag-3"), False),
        ("rr", "sh-port", (), True),
        ("sh", "mh-port", (), True),
    ],
)
def test_scheduler_flags_canonical_and_checked(
    sched: str, flags: str, expected: tuple[str, ...], warned: bool
) -> None:
    config = read(server(f"    lvs_sched {sched}\n{flags}"))
    assert config.virtual_servers[0].sched_flags == expected
    assert any("only applies" in w.message for w in config.warnings) == warned


def test_ops_needs_udp_and_hashed_is_ignored() -> None:
    assert one(server("    ops", protocol="UDP")).sched_flags == ("ops",)
    config = read(server("    ops\n    hashed"))
    assert config.virtual_servers[0].sched_flags == ()
    assert [w.message.split(": ", 1)[-1] for w in config.warnings] == [
        "'hashed' has no effect (the kernel sets it); ignored",
        "ops (one-packet scheduling) needs UDP; ignored",
    ]
    assert one(server("    ops", header="fwmark 3", protocol=None, rs="198.18.1.10")).sched_flags


def test_sorry_server() -> None:
    vs = one(server("    sorry_server 198.18.2.1\n    sorry_server_lvs_method DR"))
    sorry = vs.sorry_server
    assert sorry is not None
    assert (sorry.address, sorry.port, sorry.weight, sorry.lvs_method) == (
        ip("198.18.2.1"),
        80,
        1,
        "DR",
    )
    nat = one(server("    sorry_server 198.18.2.1 8080")).sorry_server
    assert nat is not None and nat.port == 8080  # NAT may change the port
    assert "without sorry_server; ignored" in warnings_of(server("    sorry_server_inhibit"))[0]


def test_sorry_server_that_is_a_real_server_takes_its_inhibit() -> None:
    text = server("    sorry_server 198.18.1.10 80", "inhibit_on_failure")
    config = read(text)
    assert config.virtual_servers[0].sorry_server_inhibit is True
    assert "using its inhibit_on_failure" in str(config.warnings[0])


def test_real_server_keywords() -> None:
    vs = one(
        server(
            "",
            "weight 7\nlvs_method TUN\ninhibit_on_failure\nnotify_up /bin/up\n"
            'notify_down "/bin/down now"\nuthreshold 100\nlthreshold 10\nalpha\nretry 3\n'
            "delay_before_retry 2\nwarmup 1\nconnect_timeout 2\ndelay_loop 9\nsmtp_alert\n"
            "virtualhost rs.example\nsnmp_name rs1",
        )
    )
    rs = vs.real_servers[0]
    assert (rs.weight, rs.lvs_method, rs.inhibit_on_failure) == (7, "TUN", True)
    assert (rs.notify_up, rs.notify_down) == (("/bin/up",), ("/bin/down", "now"))
    assert (rs.uthreshold, rs.lthreshold, rs.alpha, rs.retry) == (100, 10, True, 3)
    assert (rs.delay_before_retry, rs.warmup, rs.connect_timeout, rs.delay_loop) == (2, 1, 2, 9)
    assert (rs.smtp_alert, rs.virtualhost, rs.snmp_name, rs.name) == (
        True,
        "rs.example",
        "rs1",
        "198.18.1.10:80",
    )


def test_tunnel_options_warn() -> None:
    config = read(server("    lvs_method TUN type gue port 6080"))
    assert config.virtual_servers[0].lvs_method == "TUN"
    assert "tunnel options 'type gue port 6080' are not supported" in str(config.warnings[0])


# ---------------------------------------------------------------- ports, families, groups


def test_real_server_port_as_keepalived_settles_it() -> None:
    assert one(server(rs="198.18.1.10")).real_servers[0].port == 80  # NAT: the VS port
    assert one(server(rs="198.18.1.10 8080")).real_servers[0].port == 8080  # NAT remaps
    config = read(server("    lvs_method DR", rs="198.18.1.10 8080"))  # DR keeps the port
    assert config.virtual_servers[0].real_servers[0].port == 80
    assert "DR keeps the port, using 80" in str(config.warnings[0])
    fw = read(server("    lvs_method DR", header="fwmark 1", protocol=None))
    assert fw.virtual_servers[0].real_servers[0].port is None
    assert "a port on a DR fwmark service is ignored" in str(fw.warnings[0])
    fw_nat = one(server(header="fwmark 1", protocol=None, rs="198.18.1.10 8080"))
    assert fw_nat.real_servers[0].port == 8080


def test_checker_without_a_port_warns() -> None:
    checks = "TCP_CHECK {\n}\nPING_CHECK {\n}"
    assert warnings_of(server(rs_lines=checks, header="fwmark 2", protocol=None)) == []
    text = server(rs_lines=checks, header="fwmark 2", protocol=None, rs="198.18.1.10")
    assert [w.split(": ", 1)[1] for w in warnings_of(text)] == [
        "TCP_CHECK of real_server 198.18.1.10: no port to check (set connect_port); it will "
        "always fail"
    ]


def test_service_without_port_becomes_persistent() -> None:
    config = read(server(header="198.18.0.100", rs="198.18.1.10"))
    vs = config.virtual_servers[0]
    assert (vs.port, vs.persistence_timeout, vs.real_servers[0].port) == (0, 360, None)
    assert vs.name == "198.18.0.100:0/TCP"
    assert "must be persistent" in str(config.warnings[0])
    assert one(server(header="198.18.0.100 0", rs="198.18.1.10")).port == 0


def test_ipv6_service() -> None:
    vs = one(
        server(
            "    persistence_granularity 64",
            "TCP_CHECK {\n}",
            header="fd00:198:18::100 443",
            rs="fd00:198:18:1::10 443",
        )
    )
    assert (vs.family, vs.name) == (6, "[fd00:198:18::100]:443/TCP")
    assert vs.persistence_granularity == ip("ffff:ffff:ffff:ffff::")
    assert prefix_length(vs.persistence_granularity) == 64
    assert vs.real_servers[0].name == "[fd00:198:18:1::10]:443"


@pytest.mark.parametrize(
    ("vs_lines", "rs", "family"),
    [
        ("", "198.18.1.10", 4),
        ("", "fd00:198:18:1::10", 6),  # from the real servers
        ("    ip_family inet6\n    lvs_method TUN", "198.18.1.10", 6),
        ("    lvs_method TUN", "fd00:198:18:1::10", 6),  # all tunnelled, all IPv6
        ("    persistence_granularity 255.255.0.0\n    lvs_method TUN", "fd00::10", 4),
    ],
)
def test_fwmark_family(vs_lines: str, rs: str, family: int) -> None:
    vs = one(server(vs_lines, header="fwmark 5", rs=rs, protocol=None))
    assert (vs.fwmark, vs.family, vs.name) == (5, family, "fwmark:5/TCP")


def test_mixed_families_are_an_error_unless_tunnelled() -> None:
    text = (
        "virtual_server 198.18.0.100 80 {\n protocol TCP\n"
        " real_server 198.18.1.10 80 {\n }\n"
        " real_server fd00:198:18:1::10 80 {\n }\n}\n"
    )
    assert errors_of(text) == [
        "k.conf:5: virtual_server 198.18.0.100 80: real_server fd00:198:18:1::10 is not IPv4 "
        "(only TUN servers may differ)"
    ]
    tunnelled = text.replace("::10 80 {\n", "::10 80 {\n  lvs_method TUN\n")
    assert len(one(tunnelled).real_servers) == 2


def test_virtual_server_group_entries() -> None:
    text = (
        "virtual_server_group G {\n 198.18.0.100 80\n 198.18.0.101-105 80\n"
        " 198.18.0.200-198.18.1.3\n 198.18.2.8/30 443\n fd00:198:18::1-a 80\n"
        " fwmark 7 inet\n fwmark 8 inet6\n 198.18.3.1 0\n}\n"
        + server(header="group G", rs="198.18.1.10", protocol="TCP\n    persistence_timeout")
    )
    config = read(text)
    (group,) = config.virtual_server_groups
    e = group.entries
    assert (e[0].address, e[0].last, e[0].port) == (ip("198.18.0.100"), None, 80)
    assert [str(a) for a in e[1].addresses()] == [f"198.18.0.{i}" for i in range(101, 106)]
    assert (e[2].last, e[2].port, len(e[2].addresses())) == (ip("198.18.1.3"), None, 60)
    assert (e[3].address, e[3].last, e[3].port) == (ip("198.18.2.8"), ip("198.18.2.11"), 443)
    assert e[4].last == ip("fd00:198:18::a")
    assert (e[5].fwmark, e[5].family, e[6].fwmark, e[6].family) == (7, 4, 8, 6)
    assert e[7].port is None
    vs = config.virtual_servers[0]
    assert (vs.group, vs.name, vs.family) == ("G", "group:G/TCP", 4)
    assert vs.real_servers[0].port is None  # a group: the port of each entry


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("198.18.0.10-5 80", "the end must be above the start"),
        ("198.18.0.10-198.18.0.9 80", "ends before it starts"),
        ("198.18.0.1/33 80", "is not a network"),
        ("198.18.0.1/24 80", "is not a network"),  # host bits set
        ("10.0.0.0/8 80", "is larger than 65536"),
        ("198.18.0.1 http", "is not an integer"),
        ("fwmark 0", "out of range 1..4294967295"),
        ("fwmark 1 inet7", "unexpected 'inet7'"),
        ("nonsense 80", "is not an address"),
    ],
)
def test_virtual_server_group_errors(line: str, message: str) -> None:
    text = f"virtual_server_group G {{\n 198.18.0.1 80\n {line}\n}}\n"
    (error,) = errors_of(text)
    assert error.startswith("k.conf:3: ") and message in error


def test_group_checks() -> None:
    assert errors_of("virtual_server_group G {\n}\n") == [
        "k.conf:1: virtual_server_group G has no entries"
    ]
    mixed = "virtual_server_group G {\n 198.18.0.1 80\n fd00::1 80\n fwmark 3\n}\n"
    assert "fwmarks need a family" in errors_of(mixed)[0]
    assert errors_of(server(header="group NOPE")) == [
        "k.conf:1: virtual_server group NOPE: no virtual_server_group NOPE"
    ]


def test_fwmark_services_ignore_protocol_and_ha_suspend() -> None:
    config = read(server("    ha_suspend", header="fwmark 3", protocol="UDP", rs="198.18.1.10"))
    vs = config.virtual_servers[0]
    assert (vs.protocol, vs.ha_suspend) == ("TCP", False)
    assert [w.message.split(": ", 1)[1] for w in config.warnings] == [
        "protocol is ignored for a fwmark service",
        "ha_suspend cannot work with fwmarks; ignored",
    ]


def test_missing_protocol_warns_that_keepalived_would_use_udp() -> None:
    config = read(server(protocol=None))
    assert config.virtual_servers[0].protocol == "TCP"
    assert [str(w) for w in config.warnings] == [
        "k.conf:1: virtual_server 198.18.0.100 80: no protocol; keepalived would use UDP, "
        "hakeeper uses TCP (set protocol to be sure)"
    ]


def test_quorum_and_hysteresis_are_corrected_as_keepalived_does() -> None:
    config = read(server("    quorum 5\n    hysteresis 3", "weight 2"))
    vs = config.virtual_servers[0]
    assert (vs.quorum, vs.hysteresis) == (2, 1)
    assert [w.message.split(": ", 1)[1] for w in config.warnings] == [
        "quorum 5 is above the real servers' total weight 2; using 2",
        "hysteresis 3 must be below quorum 2; using 1",
    ]


def test_virtual_server_without_real_servers_is_dropped() -> None:
    config = read("virtual_server 198.18.0.100 80 {\n protocol TCP\n}\n")
    assert config.virtual_servers == ()
    assert [str(w) for w in config.warnings] == [
        "k.conf:1: virtual_server 198.18.0.100 80 has no real servers; ignored (as keepalived does)"
    ]


def test_services_with_one_header_stay_together() -> None:
    text = server(protocol="UDP") + server(header="198.18.0.100 81") + server(protocol="TCP")
    names = [vs.name for vs in read(text).virtual_servers]
    assert names == ["198.18.0.100:80/UDP", "198.18.0.100:80/TCP", "198.18.0.100:81/TCP"]


# ---------------------------------------------------------------- checkers


def test_common_checker_keywords() -> None:
    _, ck = checker(
        "TCP_CHECK",
        "connect_ip 198.18.1.20\nconnect_port 8080\nbindto 198.18.0.1\nbind_port 4000\n"
        "bind_if eth1\nconnect_timeout 2.5\nfwmark 9\nretry 0\ndelay_before_retry 0.5\n"
        "warmup 3\ndelay_loop 4\nalpha\nlog_all_failures",
    )
    assert (ck.connect_ip, ck.connect_port, ck.bindto, ck.bind_port, ck.bind_if) == (
        ip("198.18.1.20"),
        8080,
        ip("198.18.0.1"),
        4000,
        "eth1",
    )
    assert (ck.connect_timeout, ck.fwmark, ck.retry, ck.delay_before_retry) == (2.5, 9, 0, 0.5)
    assert (ck.warmup, ck.delay_loop, ck.alpha, ck.log_all_failures) == (3, 4, True, True)


def test_http_get() -> None:
    _, ck = checker(
        "HTTP_GET",
        "url {\n path /health\n digest 9B3A0C85A887A256D6939DA88AABD8CD\n"
        " status_code 200-299 302 204\n virtualhost a.example\n}\n"
        "url {\n path /\n}\nvirtualhost www.example\nhttp_protocol 1.0c\nfast_recovery\n"
        "nb_get_retry 4",
    )
    first, second = ck.url
    assert first.digest == "9b3a0c85a887a256d6939da88aabd8cd"
    assert first.status_code == ((200, 299), (302, 302))
    assert first.virtualhost == "a.example"
    assert (second.path, second.status_code, second.digest) == ("/", (), None)
    assert second.status_ok(204) and not second.status_ok(302)
    assert (ck.virtualhost, ck.http_protocol, ck.fast_recovery, ck.retry) == (
        "www.example",
        "1.0C",
        True,
        4,
    )


def test_ssl_get() -> None:
    _, ck = checker("SSL_GET", "url {\npath /\ntls_compliant\n}\nsni_name tls.example")
    assert (ck.kind, ck.enable_sni, ck.sni_name, ck.url[0].tls_compliant) == (
        "SSL_GET",
        True,
        "tls.example",
        True,
    )
    _, ck = checker("SSL_GET", "url {\npath /\n}\nenable_sni\ntls_compliant")
    assert (ck.enable_sni, ck.sni_name, ck.tls_compliant) == (True, None, True)
    config = read(server(rs_lines="HTTP_GET {\nurl {\npath /\ntls_compliant\n}\n}"))
    assert "unknown keyword 'tls_compliant'" in str(config.warnings[-1])  # SSL_GET's only


def test_smtp_dns_misc_udp_ping() -> None:
    _, smtp = checker("SMTP_CHECK", "helo_name lb1.example")
    assert smtp.helo_name == "lb1.example"
    _, dns = checker("DNS_CHECK", "type aaaa\nname www.example.com")
    assert (dns.type, dns.name) == ("AAAA", "www.example.com")
    _, dns = checker("DNS_CHECK")
    assert (dns.type, dns.name) == ("SOA", ".")
    misc_lines = "misc_path \"/bin/check 'a b'\"\nmisc_timeout 5\nmisc_dynamic\nuser nobody:nogroup"
    _, misc = checker("MISC_CHECK", misc_lines)
    assert misc.misc_path == ("/bin/check", "a b")
    assert (misc.misc_timeout, misc.misc_dynamic, misc.user, misc.group) == (
        5.0,
        True,
        "nobody",
        "nogroup",
    )
    _, misc = checker("MISC_CHECK", "misc_path /bin/true\nuser nobody :nogroup\nmisc_timeout 0")
    assert (misc.user, misc.group, misc.misc_timeout) == ("nobody", "nogroup", None)
    _, udp = checker(
        "UDP_CHECK",
        "payload Ab12f 3 456\nrequire_reply 12x4\nmin_reply_length 2\nmax_reply_length 100",
    )
    assert udp.payload == bytes.fromhex("ab120f034506")
    assert (udp.require_reply, udp.require_reply_mask) == (b"\x12\x04", b"\x00\xf0")
    assert (udp.min_reply_length, udp.max_reply_length) == (2, 100)
    _, udp = checker("UDP_CHECK", "require_reply")
    assert (udp.payload, udp.require_reply, udp.max_reply_length) == (None, b"", 255)
    _, ping = checker("PING_CHECK", "connect_ip 198.18.1.30")
    assert ping.connect_ip == ip("198.18.1.30")


def test_file_check_resolves_its_track_file() -> None:
    head = "track_file maint {\n file /run/maint\n weight -3 reverse\n}\n"
    _, ck = checker_with(head, "FILE_CHECK", "track_file maint")
    assert (ck.track_file, ck.file, ck.weight, ck.weight_reverse) == (
        "maint",
        "/run/maint",
        -3,
        True,
    )
    _, ck = checker_with(head, "FILE_CHECK", "track_file maint\nweight 10 noreverse")
    assert (ck.weight, ck.weight_reverse) == (10, False)
    assert errors_of(head + server(rs_lines="FILE_CHECK {\ntrack_file nope\n}")) == [
        "k.conf:9: FILE_CHECK: track_file nope: no track_file of that name"
    ]


def checker_with(head: str, kind: str, lines: str) -> tuple[VirtualServer, Checker]:
    vs = one(head + server("", f"{kind} {{\n{lines}\n}}"))
    return vs, vs.real_servers[0].checkers[0]


def test_checkers_grouped_by_kind_in_first_appearance_order() -> None:
    vs = one(
        server(
            "",
            "TCP_CHECK {\nconnect_port 1\n}\nPING_CHECK {\n}\nTCP_CHECK {\nconnect_port 2\n}",
        )
    )
    checks = vs.real_servers[0].checkers
    assert [(c.kind, c.connect_port) for c in checks] == [
        ("TCP_CHECK", 1),
        ("TCP_CHECK", 2),
        ("PING_CHECK", None),
    ]


def test_checker_warnings() -> None:
    text = server(
        "    foo",
        "lb_kind DR\nBFD_CHECK {\n}\nSMTP_CHECK {\nhost {\nconnect_ip 198.18.1.9\n}\n}\n"
        "HTTP_GET {\nurl {\npath /\nregex ^ok\n}\nbar 1\n}",
    )
    assert [w.split(": ", 1)[1] for w in warnings_of(text)] == [
        "unknown keyword 'foo'",
        "unknown keyword 'lb_kind'",  # a real server has only lvs_method
        "'BFD_CHECK' is not supported by hakeeper; ignored",
        "SMTP_CHECK host blocks (deprecated by keepalived) are not supported; ignored: "
        "use one SMTP_CHECK per host",
        "'regex' is not supported by hakeeper; ignored",
        "unknown keyword 'bar'",
    ]


@pytest.mark.parametrize(
    "line",
    ["regex ^ok", "regex_no_match", "regex_options caseless", "regex_min_offset 1",
     "regex_max_offset 9", "regex_stack 1 2"],
)  # fmt: skip
def test_regex_keywords_are_read_past_with_a_warning(line: str) -> None:
    text = server(rs_lines=f"HTTP_GET {{\nurl {{\npath /\n{line}\n}}\n}}")
    (warning,) = warnings_of(text)
    assert warning.endswith(f"'{line.split()[0]}' is not supported by hakeeper; ignored")


# ---------------------------------------------------------------- errors, all at once


def test_errors_name_file_and_line_and_are_all_reported() -> None:
    text = (
        "virtual_server 198.18.0.100 80 {\n"  # 1
        " protocol TCP\n"
        " lvs_sched fastest\n"  # 3
        " lvs_method NAPT\n"  # 4
        " real_server 198.18.1.10 80 {\n"
        "  weight -1\n"  # 6
        "  HTTP_GET {\n"  # 7
        "   url {\n"
        "    digest 123\n"  # 9
        "   }\n"
        "  }\n"
        " }\n"
        "}\n"
        "virtual_server 198.18.0.100 70000 {\n"  # 14
        "}\n"
        "virtual_server 198.18.0.101 80 {\n"  # 16
        " protocol TCP\n"
        " real_server 198.18.1.10 80 {\n"
        "  MISC_CHECK {\n"  # 19
        "   connect_ip 198.18.1.1\n"  # 20: not a MISC_CHECK keyword: a warning
        "  }\n"
        "  HTTP_GET {\n"  # 22
        "  }\n"
        "  TCP_CHECK {\n"
        "   connect_ip fe80::1\n"
        "  }\n"  # 24: link-local without bind_if
        " }\n"
        " real_server 198.18.1.10 80 {\n"  # 28
        " }\n"
        "}\n"
    )
    assert errors_of(text) == [
        "k.conf:3: lvs_sched 'fastest' is not one of dh fo lblc lblcr lc mh nq ovf rr sed sh "
        "twos wlc wrr",
        "k.conf:4: lvs_method 'NAPT' is not NAT, DR or TUN",
        "k.conf:6: weight -1 is out of range 0..2147483647",
        "k.conf:9: digest '123' is not 32 hex digits (an MD5 sum, see genhash)",
        "k.conf:8: url has no path",
        "k.conf:14: virtual_server port 70000 is out of range 1..65535",
        "k.conf:19: MISC_CHECK has no misc_path",
        "k.conf:22: HTTP_GET has no url block",
        "k.conf:24: TCP_CHECK: link-local address fe80::1 needs bind_if",
        "k.conf:28: virtual_server 198.18.0.101 80: real_server 198.18.1.10:80 is already "
        "defined at k.conf:18",
    ]


@pytest.mark.parametrize(
    ("vs_lines", "rs_lines", "message"),
    [
        ("    protocol ICMP", "", "protocol 'ICMP' is not TCP, UDP or SCTP"),
        ("    ip_family inet6", "", "ip_family inet6 conflicts with its address"),
        ("    ip_family ipx", "", "ip_family 'ipx' is not inet or inet6"),
        ("    quorum 0", "", "quorum 0 is out of range 1..4294967295"),
        ("    weight 0", "", "weight 0 is out of range 1..2147483647"),
        ("    retry 0", "", "retry 0 is out of range 1..4294967295"),
        ("    persistence_timeout 0", "", "persistence_timeout 0 is out of range 1..2678400"),
        ("    persistence_granularity 64", "", "'64' is not an address"),
        ("    delay_loop 0", "", "delay_loop 0 is out of range"),
        ("", "HTTP_GET {\nurl {\npath /\nstatus_code 200-99\n}\n}", "not within 100..599"),
        ("", "HTTP_GET {\nurl {\npath /\nstatus_code ok\n}\n}", "is not a code or a range"),
        ("", "HTTP_GET {\nurl {\npath /\n}\nhttp_protocol 2\n}", "is not 1.0, 1.1 or 1.0C"),
        ("", "DNS_CHECK {\ntype PTR\n}", "type 'PTR' is not one of"),
        ("", "DNS_CHECK {\nname a..b\n}", "name 'a..b' has an empty label"),
        ("", "UDP_CHECK {\npayload 12zz\n}", "payload: 'z' is not a hex digit"),
        ("", "TCP_CHECK {\nconnect_port 0\n}", "connect_port 0 is out of range 1..65535"),
        ("", "TCP_CHECK {\nbind_if averyveryverylongname\n}", "longer than 15 characters"),
        (
            "",
            "TCP_CHECK {\nconnect_ip 198.18.1.1\nbindto fd00::1\n}",
            "connect_ip 198.18.1.1 and bindto fd00::1 are not the same family",
        ),
        ("", "FILE_CHECK {\n}", "FILE_CHECK has no track_file"),
        ("", "FILE_CHECK {\ntrack_file x\nweight 1 sideways\n}", "unexpected 'sideways'"),
        ("", "MISC_CHECK {\nmisc_path\n}", "misc_path needs a command"),
    ],
)
def test_bad_values(vs_lines: str, rs_lines: str, message: str) -> None:
    errors = errors_of(server(vs_lines, rs_lines))
    assert any(message in e for e in errors), errors
    assert all(e.startswith("k.conf:") for e in errors)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "virtual_server needs `IP [PORT]`, `fwmark N` or `group NAME`"),
        ("fwmark", "virtual_server needs `IP [PORT]`, `fwmark N` or `group NAME`"),
        ("fwmark 0", "virtual_server fwmark 0 is out of range 1..4294967295"),
        ("198.18.0.300 80", "virtual_server '198.18.0.300' is not an address"),
    ],
)
def test_bad_headers(header: str, message: str) -> None:
    assert errors_of(server(header=header)) == [f"k.conf:1: {message}"]


def test_extra_header_words_are_ignored_as_keepalived_does() -> None:
    text = server(
        "    sorry_server 198.18.2.1 80 x", header="198.18.0.1 80 90", rs="198.18.1.1 80 y"
    )
    assert [w.split(": ", 1)[1] for w in warnings_of(text)] == [
        "virtual_server: extra words ignored: 90",
        "sorry_server: extra words ignored: x",
        "real_server: extra words ignored: y",
    ]


def test_duplicate_virtual_servers_and_groups() -> None:
    group = "virtual_server_group G {\n fwmark 1\n}\n"
    text = server() + server() + group + group
    assert errors_of(text) == [
        "k.conf:18: virtual_server_group G is already defined at k.conf:15",
        "k.conf:8: virtual_server 198.18.0.100:80/TCP is already defined at k.conf:1",
    ]


# ---------------------------------------------------------------- global_defs and SSL


def test_global_lvs_keywords() -> None:
    g = read("global_defs {\n lvs_backend nftables\n lvs_flush\n lvs_flush_on_stop VS\n}\n")
    g = g.global_defs
    assert (g.lvs_backend, g.lvs_flush, g.lvs_flush_on_stop, g.lvs_flush_onstop) == (
        "nftables",
        True,
        "VS",
        True,
    )
    g = read("global_defs {\n lvs_flush_onstop\n}\n").global_defs
    assert g.lvs_flush_on_stop == "full"
    g = read("").global_defs
    assert (g.lvs_backend, g.lvs_flush, g.lvs_flush_on_stop, g.lvs_flush_onstop) == (
        "auto",
        False,
        None,
        False,
    )
    assert errors_of("global_defs {\n lvs_backend xdp\n}\n") == [
        "k.conf:2: lvs_backend 'xdp' is not auto, ipvs or nftables"
    ]
    assert "is not VS" in errors_of("global_defs {\n lvs_flush_on_stop ALL\n}\n")[0]


def test_ssl_block() -> None:
    config = read("SSL {\n password pw\n ca /ca.pem\n certificate /c.pem\n key /k.pem\n}\n")
    ssl = config.ssl
    assert ssl is not None
    assert (ssl.password, ssl.ca, ssl.certificate, ssl.key) == ("pw", "/ca.pem", "/c.pem", "/k.pem")
    assert read("SSL {\n}\n").ssl is not None and read("").ssl is None
    config = read("SSL {\n ca /a\n}\nSSL {\n key /k\n}\n")
    assert (config.ssl.ca, config.ssl.key) == (None, "/k")  # type: ignore[union-attr]
    assert [str(w) for w in config.warnings] == [
        "k.conf:4: SSL is already defined at k.conf:1; replaced"
    ]


# ---------------------------------------------------------------- value parsers


def test_hex_and_status_code_parsers() -> None:
    assert parse_hex("p", "Ab12f 3 456 546443123")[0] == bytes.fromhex("ab120f0345065464431203")
    assert parse_hex("p", "xA", True) == (b"\x0a", b"\xf0")
    assert parse_status_codes(["204", "200-203", "300-301", "305"]) == (
        (200, 204),
        (300, 301),
        (305, 305),
    )


# ---------------------------------------------------------------- YAML and conversion

REALISTIC_CONF = """\
global_defs {
    router_id lb1
    lvs_flush
}
track_file maint {
    file /run/maint
    weight 0
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
}
SSL {
    ca /etc/ssl/ca.pem
}
virtual_server_group WEB {
    198.18.0.100 8080
    198.18.0.101-105 8080
    fwmark 7
}
virtual_server 198.18.0.100 80 {
    protocol TCP
    lb_algo wrr
    lb_kind NAT
    persistence_timeout
    sorry_server 198.18.2.1 80
    quorum 2
    quorum_up "/usr/local/bin/up.sh 'quorum up'"
    real_server 198.18.1.10 80 {
        weight 2
        HTTP_GET {
            url {
                path /
                digest 9b3a0c85a887a256d6939da88aabd8cd
                status_code 200
            }
            url {
                path /health
                status_code 200-299 302
            }
            connect_timeout 3
        }
        TCP_CHECK {
            connect_port 8080
        }
        TCP_CHECK {
            connect_port 8081
        }
    }
    real_server 198.18.1.11 80 {
        SSL_GET {
            url {
                path /
            }
            sni_name www.example.com
        }
        FILE_CHECK {
            track_file maint
            weight -2 reverse
        }
        UDP_CHECK {
            payload 0102
            require_reply 01x2
        }
        MISC_CHECK {
            misc_path "/bin/check a\\ b"
            user nobody
        }
    }
}
virtual_server 198.18.0.100 80 {
    protocol UDP
    lvs_sched sh
    flag-2
    real_server 198.18.1.10 80 {
        DNS_CHECK {
            type A
            name www.example.com
        }
    }
}
virtual_server fwmark 9 {
    lvs_method DR
    persistence_granularity 255.255.255.0
    real_server 198.18.1.10 {
        PING_CHECK {
        }
    }
}
virtual_server group WEB {
    protocol TCP
    real_server 198.18.1.10 8080 {
        SMTP_CHECK {
            helo_name lb1
        }
    }
}
virtual_server fd00:198:18::100 443 {
    protocol TCP
    persistence_granularity 48
    real_server fd00:198:18:1::10 443 {
        weight 3
        inhibit_on_failure false
        SSL_GET {
            url {
                path /
                digest 9b3a0c85a887a256d6939da88aabd8cd
            }
        }
    }
}
"""

REALISTIC_YAML = """\
global_defs: {router_id: lb1, lvs_flush: true}
vrrp_track_files:
  maint: {file: /run/maint, weight: 0}
vrrp_instances:
  VI_1:
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddress: [198.18.0.100/24]
SSL: {ca: /etc/ssl/ca.pem}
virtual_server_groups:
  WEB: ["198.18.0.100 8080", "198.18.0.101-105 8080", "fwmark 7"]
virtual_servers:
  "198.18.0.100 80":
    - protocol: TCP
      lvs_sched: wrr
      lvs_method: NAT
      persistence_timeout:
      sorry_server: 198.18.2.1 80
      quorum: 2
      quorum_up: [/usr/local/bin/up.sh, quorum up]
      real_servers:
        "198.18.1.10 80":
          weight: 2
          HTTP_GET:
            url:
              - {path: /, digest: 9b3a0c85a887a256d6939da88aabd8cd, status_code: 200}
              - {path: /health, status_code: 200-299 302}
            connect_timeout: 3
          TCP_CHECK: [{connect_port: 8080}, {connect_port: 8081}]
        "198.18.1.11 80":
          SSL_GET: {url: [{path: /}], sni_name: www.example.com}
          FILE_CHECK: {track_file: maint, weight: -2 reverse}
          UDP_CHECK: {payload: "0102", require_reply: 01x2}
          MISC_CHECK: {misc_path: "/bin/check 'a b'", user: nobody}
    - protocol: UDP
      lvs_sched: sh
      sh-port: true
      real_servers:
        "198.18.1.10 80":
          DNS_CHECK: {type: A, name: www.example.com}
  fwmark 9:
    lvs_method: DR
    persistence_granularity: 255.255.255.0
    real_servers:
      198.18.1.10: {PING_CHECK: }
  group WEB:
    protocol: TCP
    real_servers:
      198.18.1.10 8080:
        SMTP_CHECK: {helo_name: lb1}
  fd00:198:18::100 443:
    protocol: TCP
    persistence_granularity: 48
    real_servers:
      fd00:198:18:1::10 443:
        weight: 3
        inhibit_on_failure: false
        SSL_GET:
          url: [{path: /, digest: 9b3a0c85a887a256d6939da88aabd8cd}]
"""


def test_yaml_form_equals_keepalived_form() -> None:
    from_conf = read(REALISTIC_CONF)
    from_yaml = parse_yaml_text(REALISTIC_YAML, "hk.yaml")
    assert from_conf.warnings == () and from_yaml.warnings == ()
    assert from_yaml == from_conf
    names = [vs.name for vs in from_yaml.virtual_servers]
    assert names == [
        "198.18.0.100:80/TCP",
        "198.18.0.100:80/UDP",
        "fwmark:9/TCP",
        "group:WEB/TCP",
        "[fd00:198:18::100]:443/TCP",
    ]
    rs = from_yaml.virtual_servers[0].real_servers[1]
    assert [c.kind for c in rs.checkers] == ["SSL_GET", "FILE_CHECK", "UDP_CHECK", "MISC_CHECK"]
    assert rs.checkers[3].misc_path == ("/bin/check", "a b")
    http = from_yaml.virtual_servers[0].real_servers[0].checkers[0]
    assert [u.origin.line for u in http.url] == [26, 27]


@pytest.mark.parametrize("text", [REALISTIC_CONF], ids=["realistic"])
def test_convert_round_trip(text: str) -> None:
    original = read(text)
    yaml_text = to_yaml(original)
    again = parse_yaml_text(yaml_text, "converted.yaml")
    assert again == original
    assert again.warnings == ()
    assert to_yaml(again) == yaml_text


def test_convert_round_trip_of_every_keyword() -> None:
    text = (
        "global_defs {\n smtp_alert_checker off\n lvs_backend ipvs\n lvs_flush_on_stop\n}\n"
        "track_file f {\n file /f\n}\n"
        + server(
            "    lvs_sched mh\n    mh-port\n    flag-1\n    flag-3\n    lvs_method DR\n"
            "    persistence_timeout 30\n    persistence_engine sip\n"
            "    sorry_server 198.18.2.1\n    sorry_server_inhibit\n"
            "    sorry_server_lvs_method TUN\n    quorum 2\n    hysteresis 1\n"
            "    quorum_up /bin/up\n    quorum_down '/bin/d x'\n    alpha\n    omega\n"
            "    inhibit_on_failure\n    ha_suspend\n    delay_loop 3\n    connect_timeout 2\n"
            "    retry 2\n    delay_before_retry 1.5\n    warmup 0\n    virtualhost v\n"
            "    smtp_alert\n    snmp_name vs\n    weight 3",
            "weight 2\nlvs_method NAT\ninhibit_on_failure false\nnotify_up /bin/up\n"
            "notify_down /bin/down\nuthreshold 9\nlthreshold 1\nalpha false\nretry 1\n"
            "delay_before_retry 0\nwarmup 1\nconnect_timeout 1\ndelay_loop 1\nsmtp_alert off\n"
            "virtualhost r\nsnmp_name rs\n"
            "HTTP_GET {\n connect_ip 198.18.1.1\n connect_port 81\n bindto 198.18.0.1\n"
            " bind_port 5000\n bind_if eth0\n connect_timeout 1\n fwmark 3\n retry 0\n"
            " delay_before_retry 2\n warmup 1\n delay_loop 2\n alpha\n log_all_failures\n"
            " url {\n  path /a\n  digest 9b3a0c85a887a256d6939da88aabd8cd\n"
            "  status_code 200 301-302\n  virtualhost u\n }\n"
            " virtualhost c\n http_protocol 1.1\n enable_sni\n fast_recovery\n}\n"
            "SSL_GET {\n url {\n  path /\n  tls_compliant\n }\n tls_compliant\n sni_name s\n}\n"
            "DNS_CHECK {\n type MX\n name example.com\n}\n"
            "MISC_CHECK {\n misc_path /bin/x\n misc_timeout 3\n misc_dynamic\n user a b\n}\n"
            "UDP_CHECK {\n payload ff\n require_reply\n min_reply_length 1\n"
            " max_reply_length 9\n}\n"
            "FILE_CHECK {\n track_file f\n weight 4\n}\n"
            "SMTP_CHECK {\n helo_name h\n}\nPING_CHECK {\n}\nTCP_CHECK {\n}\n",
            protocol="SCTP",
            rs="198.18.1.10 80",
        )
        + server(header="fwmark 4", protocol=None, rs="fd00::10", vs_lines="    ip_family inet6")
        + server(
            "    lvs_method TUN\n    ip_family inet",
            header="fwmark 5",
            protocol=None,
            rs="fd00::10",
        )
    )
    original = read(text)
    assert len(original.virtual_servers) == 3
    assert original.virtual_servers[2].family == 4
    yaml_text = to_yaml(original)
    again = parse_yaml_text(yaml_text, "converted.yaml")
    assert again == original
    assert to_yaml(again) == yaml_text
    assert "ip_family: inet\n" in yaml_text and "ip_family: inet6" not in yaml_text


def test_yaml_errors_carry_yaml_lines() -> None:
    text = (
        "virtual_servers:\n"
        "  198.18.0.100 80:\n"
        "    protocol: TCP\n"
        "    lvs_sched: fastest\n"  # 4
        "    real_servers:\n"
        "      198.18.1.10 80:\n"
        "        HTTP_GET:\n"
        "          url:\n"
        "            - {digest: 1}\n"  # 9
        "  fwmark 3: [oops]\n"  # 10
    )
    errors = errors_of(text, lambda t: parse_yaml_text(t, "hk.yaml"))
    assert errors[0] == "hk.yaml:10: fwmark 3: expected a mapping"
    assert "hk.yaml:4: lvs_sched 'fastest'" in errors[1]
    assert errors[2].startswith("hk.yaml:9: digest '1' is not 32 hex digits")
    assert errors[3] == "hk.yaml:9: url has no path"
    assert len(errors) == 4


def test_the_documented_yaml_form_reads() -> None:
    from hakeeper.config import yaml_reader

    doc = yaml_reader.__doc__ or ""
    start = doc.index("    virtual_server_groups:")
    block = textwrap.dedent(doc[start : doc.index("\n\n", start)])
    config = parse_yaml_text(block, "doc.yaml")
    assert config.warnings == ()
    (vs,) = config.virtual_servers
    assert [c.connect_port for c in vs.real_servers[0].checkers[1:]] == [8080, 8081]
    assert vs.persistence_timeout == 360 and config.ssl is not None
