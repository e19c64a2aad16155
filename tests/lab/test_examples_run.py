"""A shipped example runs as it is: two real daemons on examples/keepalived-basic.conf (the
second node edited as its header says) fail over, and the log says so in one line."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from tests.lab.daemons import start_daemon, wait_for

pytestmark = pytest.mark.lab

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keepalived-basic.conf"
VIP = "198.18.0.100"  # the example's own address: the lab's segment 0 is 198.18.0.0/24


def second_node(text: str) -> str:
    """What the example's header asks for on the other node."""
    lines = ("    state MASTER\n", "    priority 150\n")
    assert all(text.count(line) == 1 for line in lines), "the example changed: update this"
    return text.replace(lines[0], "    state BACKUP\n").replace(lines[1], "    priority 100\n")


def test_basic_example_fails_over_and_logs_one_line(lab):
    text = EXAMPLE.read_text()
    assert f"{VIP}/24 dev eth0" in text
    r1, r2 = lab.add_node("r1"), lab.add_node("r2")
    d1 = start_daemon(r1, "hakeeper", text, suffix=".conf")
    d2 = start_daemon(r2, "hakeeper", second_node(text), suffix=".conf")
    # advert_int 1 as shipped: master down is ~3.6 s before the first election
    assert wait_for(lambda: VIP in r1.addresses("eth0"), within=8), d1.log_text()
    assert wait_for(lambda: d2.instance("VI_1")["state"] == "BACKUP", within=3), d2.log_text()
    assert VIP not in r2.addresses("eth0")

    # on a slow start r2 may have been master first (r1's daemon came up late): what counts
    # is the log from the failover on
    settled = len(d2.log_text().splitlines())
    d1.signal(signal.SIGTERM)  # graceful: priority 0 advert, the backup takes over at once
    assert wait_for(lambda: VIP in r2.addresses("eth0"), within=3), d2.log_text()
    assert wait_for(lambda: not d1.alive(), within=5)
    assert d1.proc is not None and d1.proc.returncode == 0

    # exactly one line for the move, stamped (not under systemd), naming the instance
    moves = [line for line in d2.log_text().splitlines()[settled:] if "BACKUP -> MASTER" in line]
    assert len(moves) == 1, d2.log_text()
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} INFO VI_1: BACKUP -> MASTER \(.+\)$", moves[0])

    # USR2 (keepalived's stats dump) rewrites the JSON dump and does not end the daemon
    d2.state_file.unlink()
    d2.signal(signal.SIGUSR2)
    assert wait_for(d2.state_file.exists, within=3), d2.log_text()
    assert d2.alive()
    dump = json.loads(d2.state_file.read_text())
    assert [i["state"] for i in dump["instances"]] == ["MASTER"]
