"""HAKEEPER-MIB: libsmi's smilint finds nothing at its strictest level, net-snmp loads it, and
hakeeper/snmp/mib.py holds exactly what net-snmp's snmptranslate computes from the MIB text.

Both tools get explicit search paths: the repository's mibs/ and a directory with the IETF
base modules (SNMPv2-SMI, SNMPv2-TC, SNMPv2-CONF), never whatever the host's configuration
says. Debian strips those modules from net-snmp and libsmi; scripts/setup.sh takes them from
Debian's erlang-snmp package into /usr/local/share/snmp/mibs/ietf.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from hakeeper.snmp import mib
from hakeeper.track.script import ScriptState
from hakeeper.vrrp.stats import RECEIVE_ERRORS, InstanceStats

REPO = Path(__file__).resolve().parents[2]
MIB_DIR = REPO / "mibs"
MIB_FILE = MIB_DIR / "HAKEEPER-MIB.txt"
BASE_MODULES = ("SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF")
# where the base modules may be: scripts/setup.sh's, Debian's net-snmp/libsmi default,
# libsmi's upstream layout, snmp-mibs-downloader's; HAKEEPER_BASE_MIBS first when set
BASE_DIRS = (
    "/usr/local/share/snmp/mibs/ietf",
    "/usr/share/snmp/mibs/ietf",
    "/usr/share/mibs/ietf",
    "/var/lib/mibs/ietf",
    "/var/lib/snmp/mibs/ietf",
)


def _has_module(directory: Path, module: str) -> bool:
    return any((directory / (module + ext)).is_file() for ext in ("", ".txt", ".mib", ".my"))


def base_mib_dir() -> str:
    env = os.environ.get("HAKEEPER_BASE_MIBS")
    for d in ([env] if env else []) + list(BASE_DIRS):
        if all(_has_module(Path(d), m) for m in BASE_MODULES):
            return d
    pytest.fail(
        f"no directory holds the IETF base MIB modules {', '.join(BASE_MODULES)} "
        f"(looked in {', '.join(BASE_DIRS)}); scripts/setup.sh installs them"
    )


def hakeeper_mib_path() -> str:
    """The search path that loads HAKEEPER-MIB from this repository."""
    return f"{MIB_DIR}:{base_mib_dir()}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)")
    return path


def _snmptranslate(*args: str) -> subprocess.CompletedProcess[str]:
    # -m HAKEEPER-MIB alone, not +HAKEEPER-MIB: the host's default module list may name
    # modules this host lacks, and their complaints would hide ours on stderr
    cmd = [_tool("snmptranslate"), "-M", hakeeper_mib_path(), "-m", "HAKEEPER-MIB"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=60, env=_clean_env(), check=False
    )


def _clean_env() -> dict[str, str]:
    # no MIBS/MIBDIRS/SNMPCONFPATH from the caller: the command line says it all
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MIB", "SNMP"))}
    env["SNMPCONFPATH"] = "/nonexistent"  # no snmp.conf either (it may set mibs/mibdirs)
    return env


def _dotted(oid: mib.Oid) -> str:
    return "." + ".".join(map(str, oid))


# -- smilint


def test_smilint_finds_nothing_at_its_strictest_level() -> None:
    # -l 9: every level libsmi reports; -I '': ignore nothing (without a config file smilint
    # hides some findings, e.g. descriptors longer than RFC 2578's recommended 32 characters);
    # -c /dev/null: no host configuration changes levels or paths. No exception is allowed.
    env = {**_clean_env(), "SMIPATH": hakeeper_mib_path()}
    run = subprocess.run(
        [_tool("smilint"), "-c", "/dev/null", "-l", "9", "-I", "", "-s", "-m", str(MIB_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout + run.stderr == ""


# -- net-snmp loads the whole module


def test_net_snmp_loads_the_whole_tree() -> None:
    run = _snmptranslate("-Tp", "-IR", "hakeeperMIB")
    assert run.returncode == 0
    assert run.stderr == ""
    assert "hakeeperMIB(5798)" in run.stdout
    for t in mib.TABLES:
        assert f"{t.entry_name}(1)" in run.stdout
        assert "Index: " + ", ".join(t.index) in run.stdout


def test_loads_with_the_readme_command() -> None:
    # the README's `-M +DIR -m +HAKEEPER-MIB`: the default path and module list come along,
    # so stderr may carry the host's complaints about other modules; the answer must be right
    base = base_mib_dir()
    run = subprocess.run(
        [
            *(_tool("snmptranslate"), "-M", f"+{MIB_DIR}:{base}", "-m", "+HAKEEPER-MIB", "-On"),
            "HAKEEPER-MIB::hakeeperInstanceState",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.stdout.strip() == _dotted(mib.INSTANCE_TABLE.column_oid("hakeeperInstanceState"))


# -- the map in hakeeper/snmp/mib.py against net-snmp


@dataclass(frozen=True)
class Node:
    oid: mib.Oid
    kind: str  # OBJECT-TYPE, NOTIFICATION-TYPE, MODULE-IDENTITY, ...
    syntax: str | None
    access: str | None
    index: tuple[str, ...]
    objects: tuple[str, ...]


def _field(head: str, name: str) -> str | None:
    m = re.search(rf"^\s*{name}\t+(.*?)\s*$", head, re.M)
    return m.group(1) if m else None


def _names(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return tuple(n.strip() for n in text.strip("{} ").split(",") if n.strip())


@pytest.fixture(scope="module")
def described() -> dict[str, Node]:
    """`snmptranslate -Td -On` of every node mib.py names, in one run."""
    names = list(mib.all_nodes())
    run = _snmptranslate("-Td", "-On", *(f"HAKEEPER-MIB::{n}" for n in names))
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    blocks = re.split(r"^(?=\.\d+(?:\.\d+)*$)", run.stdout, flags=re.M)
    nodes: dict[str, Node] = {}
    for block in filter(str.strip, blocks):
        first, second, *_ = block.splitlines()
        name, kind = second.split(" ", 1)
        head = block.split("  DESCRIPTION", 1)[0]
        nodes[name] = Node(
            oid=tuple(int(x) for x in first.strip(".").split(".")),
            kind=kind.strip(),
            syntax=_field(head, "SYNTAX"),
            access=_field(head, "MAX-ACCESS"),
            index=_names(_field(head, "INDEX")),
            objects=_names(_field(head, "OBJECTS")),
        )
    assert sorted(nodes) == sorted(names)
    return nodes


def test_every_oid_in_the_map_is_what_net_snmp_computes(described: dict[str, Node]) -> None:
    wrong = {n: (o, described[n].oid) for n, o in mib.all_nodes().items() if described[n].oid != o}
    assert wrong == {}


def test_the_map_names_every_node_under_the_root() -> None:
    run = _snmptranslate("-Tz")
    assert run.returncode == 0
    assert run.stderr == ""
    in_mib = {}
    for line in run.stdout.splitlines():
        name, oid = (s.strip('"') for s in line.split())
        dotted = tuple(int(x) for x in oid.split("."))
        if dotted[: len(mib.ROOT)] == mib.ROOT:
            in_mib[name] = dotted
    assert in_mib == mib.all_nodes()


def test_the_root_is_experimental_and_defined_once() -> None:
    assert mib.ROOT[:5] == (1, 3, 6, 1, 3)
    text = MIB_FILE.read_text()
    assert re.findall(r"::= \{ experimental (\d+) \}", text) == [str(mib.ROOT[-1])]
    run = _snmptranslate("-On", "HAKEEPER-MIB::hakeeperMIB")
    assert run.stdout.strip() == _dotted(mib.ROOT)


def _syntax(text: str) -> tuple[str, tuple[int, int] | None, dict[str, int] | None]:
    """net-snmp's SYNTAX line as (base type, range or size, enumeration)."""
    if text.startswith("INTEGER {"):
        enum = {label: int(n) for label, n in re.findall(r"(\w[\w-]*)\((-?\d+)\)", text)}
        return "Integer32", None, enum
    m = re.fullmatch(
        r"(Integer32|Unsigned32|OCTET STRING)\s*(?:\((-?\d+)(?:\.\.| \| )(\d+)\))?", text
    )
    if m:
        rng = (int(m.group(2)), int(m.group(3))) if m.group(2) is not None else None
        return m.group(1), rng, None
    return text, None, None


def _columns() -> list[mib.Column]:
    cols = [s.column for s in mib.GLOBAL_SCALARS]
    for t in mib.TABLES:
        cols.extend(t.columns)
    return cols


@pytest.mark.parametrize("column", _columns(), ids=lambda c: c.name)
def test_syntax_access_range_and_labels_match(
    described: dict[str, Node], column: mib.Column
) -> None:
    node = described[column.name]
    assert node.kind == "OBJECT-TYPE"
    assert node.syntax is not None
    syntax, rng, enum = _syntax(node.syntax)
    labels = dict(column.enum) if column.enum is not None else None
    assert (syntax, column.access, enum) == (column.syntax, node.access, labels)
    if column.syntax == "OCTET STRING" or column.range is not None:
        assert rng == column.range
    else:
        assert rng is None  # the map must not claim a range the MIB does not give


def test_tables_have_the_index_the_map_says(described: dict[str, Node]) -> None:
    for t in mib.TABLES:
        assert described[t.entry_name].index == t.index
        # the agent walks columns in the map's order: it must be OID order
        assert [c.subid for c in t.columns] == sorted(c.subid for c in t.columns)
        for name in t.index:
            assert described[name].access == "not-accessible"


def test_notifications_carry_the_varbinds_the_map_says(described: dict[str, Node]) -> None:
    for n in mib.NOTIFICATION_TYPES:
        assert described[n.name].kind == "NOTIFICATION-TYPE"
        assert described[n.name].objects == n.objects
        assert n.oid[:-1] == mib.NOTIFICATIONS  # under .0: SNMPv1 traps map back


def test_name_index_encodes_as_net_snmp_does() -> None:
    vs, rs = "198.18.0.100:80/TCP", "198.18.1.10:80"
    weight = mib.REAL_SERVER_TABLE.column_oid("hakeeperRealServerWeight")
    vip = mib.VIP_TABLE.column_oid("hakeeperVipAddress")
    cases = {
        f'HAKEEPER-MIB::hakeeperRealServerWeight."{vs}"."{rs}"': (
            *weight,
            *mib.name_index(vs, mib.VS_NAME_MAX),
            *mib.name_index(rs, mib.RS_NAME_MAX),
        ),
        'HAKEEPER-MIB::hakeeperVipAddress."VI_1".2': (*vip, *mib.name_index("VI_1"), 2),
    }
    run = _snmptranslate("-On", *cases)
    assert run.stderr == ""
    assert run.stdout.split() == [_dotted(o) for o in cases.values()]


def test_the_longest_names_fit_in_an_oid() -> None:
    longest = (
        *mib.REAL_SERVER_TABLE.column_oid("hakeeperRealServerOutBytes"),
        *mib.name_index("v" * mib.VS_NAME_MAX, mib.VS_NAME_MAX),
        *mib.name_index("r" * mib.RS_NAME_MAX, mib.RS_NAME_MAX),
    )
    assert len(longest) <= 128  # RFC 2578 section 3.5
    with pytest.raises(ValueError, match=r"1\.\.64"):
        mib.name_index("x" * 65)
    with pytest.raises(ValueError):
        mib.name_index("")


# -- the map against the model it serves


def test_instance_counters_read_real_statistics() -> None:
    counters = [c for c in mib.INSTANCE_TABLE.columns if c.syntax == "Counter32"]
    assert {c.source for c in counters} == set(InstanceStats.__slots__)
    assert set(RECEIVE_ERRORS) <= {c.source for c in counters}


def test_every_model_state_has_a_number() -> None:
    for state in ("INIT", "BACKUP", "MASTER", "FAULT", "STOP"):
        assert mib.INSTANCE_TABLE.column("hakeeperInstanceState").number(state) >= 0
    tracker_states = {s.value for s in ScriptState} | {"UP", "DOWN", "UNKNOWN", "OK", "FAULT"}
    for state in tracker_states:
        assert mib.TRACKER_TABLE.column("hakeeperTrackerState").number(state) >= 1
    for proto in ("TCP", "UDP", "SCTP"):
        mib.VIRTUAL_SERVER_TABLE.column("hakeeperVirtualServerProtocol").number(proto)
    for method in ("NAT", "DR", "TUN"):
        mib.VIRTUAL_SERVER_TABLE.column("hakeeperVirtualServerMethod").number(method)
