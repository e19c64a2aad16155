"""Notifications for real: scripts write to files the tests read, FIFO lines come out of a
real FIFO, mail goes to a real SMTP server on 127.0.0.1. Order is checked, not assumed."""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from hakeeper.config.model import GlobalDefs, Notify, VrrpInstance, VrrpSyncGroup
from hakeeper.notify import Notifier, Transition
from hakeeper.notify.fifo import fifo_line

LOGGER = "hakeeper.notify"


# ---------------------------------------------------------------- helpers


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)
    return str(path)


def instance(name: str = "VI_1", **notify: Any) -> VrrpInstance:
    return VrrpInstance(name=name, interface="eth0", virtual_router_id=1, notify=Notify(**notify))


def group(name: str = "VG_1", **notify: Any) -> VrrpSyncGroup:
    return VrrpSyncGroup(name=name, group=("VI_1", "VI_2"), notify=Notify(**notify))


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def run(
    body: Callable[[Notifier], Awaitable[None]], g: GlobalDefs | None = None, **kw: Any
) -> Notifier:
    """Start a Notifier in a fresh loop, run the test body, stop it."""

    async def main() -> Notifier:
        n = Notifier(g or GlobalDefs(), "lb1", **kw)
        n.start()
        try:
            await body(n)
        finally:
            await n.stop(timeout=10)
        return n

    return asyncio.run(main())


# ---------------------------------------------------------------- ordering


def test_one_instance_in_order_never_overlapping(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = script(
        tmp_path / "notify.sh",
        'out=$1; shift\necho "start $HAKEEPER_NOTIFY_SEQ $*" >> "$out"\n'
        "sleep 0.00$((RANDOM % 9 + 1))\n"
        'echo "end $HAKEEPER_NOTIFY_SEQ $*" >> "$out"\n',
    )
    inst = instance(notify=(s, str(out)))
    events: list[Transition] = []

    async def body(n: Notifier) -> None:
        for i in range(20):
            state = "MASTER" if i % 2 == 0 else "BACKUP"
            events.append(n.instance_transition(inst, state, 100 + i))
        assert n.queue_depth() >= 1  # the caller never waited for a script
        await until(lambda: n.queue_depth() == 0)

    run(body)
    assert [e.seq for e in events] == list(range(1, 21))
    expected = []
    for e in events:
        args = f"INSTANCE VI_1 {e.state} {e.priority}"
        expected += [f"start {e.seq} {args}", f"end {e.seq} {args}"]
    assert lines(out) == expected


def test_two_instances_run_in_parallel(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = script(
        tmp_path / "notify.sh",
        'echo "start $HAKEEPER_NOTIFY_NAME $HAKEEPER_NOTIFY_SEQ" >> "$1"\nsleep 0.3\n'
        'echo "end $HAKEEPER_NOTIFY_NAME $HAKEEPER_NOTIFY_SEQ" >> "$1"\n',
    )
    vi1, vi2 = (
        instance("VI_1", notify_master=(s, str(out))),
        instance("VI_2", notify_master=(s, str(out))),
    )

    async def body(n: Notifier) -> None:
        for _ in range(2):
            n.instance_transition(vi1, "MASTER", 100)
            n.instance_transition(vi2, "MASTER", 100)
        assert n.queue_depth("INSTANCE", "VI_1") == 2
        assert n.queue_depth() == 4
        await until(lambda: n.queue_depth() == 0)

    run(body)
    got = lines(out)
    # each started before the other ended: side by side, not one after the other
    assert sorted(got[:2]) == ["start VI_1 1", "start VI_2 1"]
    for name in ("VI_1", "VI_2"):
        mine = [line for line in got if f" {name} " in line]
        assert mine == [f"start {name} 1", f"end {name} 1", f"start {name} 2", f"end {name} 2"]


# ---------------------------------------------------------------- which scripts, which args


def test_state_scripts_generic_args_and_environment(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = script(
        tmp_path / "rec.sh",
        'out=$1; shift\necho "$* | $HAKEEPER_NOTIFY_SEQ $HAKEEPER_NOTIFY_TYPE '
        '$HAKEEPER_NOTIFY_NAME $HAKEEPER_NOTIFY_STATE $HAKEEPER_NOTIFY_PRIORITY" >> "$out"\n',
    )
    o = str(out)
    inst = instance(
        notify=(s, o, "generic arg"),
        notify_master=(s, o, "master"),
        notify_backup=(s, o, "backup"),
        notify_fault=(s, o, "fault"),
        notify_stop=(s, o, "stop"),
        notify_master_rx_lower_pri=(s, o, "rx_lower"),
    )
    grp = group(notify=(s, o), notify_backup=(s, o, "group backup"))

    async def body(n: Notifier) -> None:
        for state in ("MASTER", "MASTER_RX_LOWER_PRI", "BACKUP", "FAULT", "STOP"):
            n.instance_transition(inst, state, 90)
            await until(lambda: n.queue_depth() == 0)
        n.group_transition(grp, "BACKUP")
        n.group_transition(grp, "MASTER")  # no notify_master: only the generic one
        await until(lambda: n.queue_depth() == 0)

    run(body)
    assert lines(out) == [
        "master | 1 INSTANCE VI_1 MASTER 90",
        "generic arg INSTANCE VI_1 MASTER 90 | 1 INSTANCE VI_1 MASTER 90",
        # keepalived's send_event_notify: the generic script is not told of this event
        "rx_lower | 2 INSTANCE VI_1 MASTER_RX_LOWER_PRI 90",
        "backup | 3 INSTANCE VI_1 BACKUP 90",
        "generic arg INSTANCE VI_1 BACKUP 90 | 3 INSTANCE VI_1 BACKUP 90",
        "fault | 4 INSTANCE VI_1 FAULT 90",
        "generic arg INSTANCE VI_1 FAULT 90 | 4 INSTANCE VI_1 FAULT 90",
        "stop | 5 INSTANCE VI_1 STOP 90",
        "generic arg INSTANCE VI_1 STOP 90 | 5 INSTANCE VI_1 STOP 90",
        "group backup | 1 GROUP VG_1 BACKUP 0",
        "GROUP VG_1 BACKUP 0 | 1 GROUP VG_1 BACKUP 0",
        "GROUP VG_1 MASTER 0 | 2 GROUP VG_1 MASTER 0",
    ]


def test_unknown_state_is_a_caller_error() -> None:
    n = Notifier(GlobalDefs(), "lb1")
    with pytest.raises(ValueError, match="DELETED"):
        n.instance_transition(instance(), "DELETED", 100)


# ---------------------------------------------------------------- failures


def test_missing_and_failing_scripts_are_logged_and_the_queue_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    fail = script(tmp_path / "fail.sh", "exit 3\n")
    ok = script(tmp_path / "ok.sh", 'echo "$HAKEEPER_NOTIFY_SEQ" >> "$1"\n')
    inst = instance(
        notify_master=(str(tmp_path / "missing.sh"),),
        notify_backup=(fail,),
        notify_fault=(ok, str(out)),
    )

    async def body(n: Notifier) -> None:
        for state in ("MASTER", "BACKUP", "FAULT"):
            n.instance_transition(inst, state, 100)
        await until(lambda: n.queue_depth() == 0)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run(body)
    assert lines(out) == ["3"]
    text = caplog.text
    assert f"VI_1: notify_master script {tmp_path}/missing.sh refused" in text
    assert f"VI_1: notify_backup script {fail} exited with status 3 (BACKUP, seq 2)" in text


def test_unsafe_script_is_refused_naming_the_component(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the path check applies to scripts run as root")
    unsafe = tmp_path / "drop"
    unsafe.mkdir()
    out = tmp_path / "out"
    s = script(unsafe / "notify.sh", f'echo ran >> "{out}"\n')
    unsafe.chmod(0o777)  # anyone could replace the script: no sticky bit
    g = GlobalDefs(enable_script_security=True, script_user="root")
    inst = instance(notify_master=(s,))

    async def body(n: Notifier) -> None:
        n.instance_transition(inst, "MASTER", 100)
        await until(lambda: n.queue_depth() == 0)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run(body, g)
    assert not out.exists()
    assert f"VI_1: notify_master script {s} refused" in caplog.text
    assert f"{unsafe} is writable by others" in caplog.text


def test_unknown_script_user_refuses_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = script(tmp_path / "notify.sh", "true\n")
    g = GlobalDefs(script_user="no_such_user_hk")

    async def body(n: Notifier) -> None:
        n.instance_transition(instance(notify_master=(s,)), "MASTER", 100)
        await until(lambda: n.queue_depth() == 0)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run(body, g)
    assert "script user 'no_such_user_hk' does not exist" in caplog.text


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0): look at its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] == "Z"


def test_hung_script_is_killed_at_timeout_and_the_next_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, pid_file = tmp_path / "out", tmp_path / "pid"
    hang = script(tmp_path / "hang.sh", f'sleep 30 &\necho $! > "{pid_file}"\nwait\n')
    ok = script(tmp_path / "ok.sh", f'echo "$HAKEEPER_NOTIFY_SEQ" >> "{out}"\n')
    inst = instance(notify_master=(hang,), notify_backup=(ok,))

    async def body(n: Notifier) -> None:
        t0 = time.monotonic()
        n.instance_transition(inst, "MASTER", 100)
        n.instance_transition(inst, "BACKUP", 100)
        await until(lambda: out.exists())
        assert 0.5 <= time.monotonic() - t0 < 3
        # the whole process group went, the script's own child included
        assert _gone(int(pid_file.read_text()))

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run(body, script_timeout=0.5)
    assert lines(out) == ["2"]
    assert f"VI_1: notify_master script {hang} timed out after 0.5s (MASTER, seq 1)" in caplog.text


def test_stop_is_bounded_and_kills_what_is_left(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hang = script(tmp_path / "hang.sh", f'echo $$ > "{pid_file}"\nsleep 30\n')
    inst = instance(notify_master=(hang,))

    async def main() -> None:
        n = Notifier(GlobalDefs(), "lb1")
        n.start()
        n.instance_transition(inst, "MASTER", 100)
        n.instance_transition(inst, "BACKUP", 100)
        await until(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
        t0 = time.monotonic()
        await n.stop(timeout=0.3)
        assert time.monotonic() - t0 < 2
        assert n.queue_depth() == 0
        assert _gone(int(pid_file.read_text()))

    asyncio.run(main())


def test_queue_is_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = script(tmp_path / "slow.sh", f'sleep 0.05\necho "$HAKEEPER_NOTIFY_SEQ" >> "{out}"\n')
    inst = instance(notify_master=(s,), notify_backup=(s,))

    async def body(n: Notifier) -> None:
        for i in range(10):
            n.instance_transition(inst, "MASTER" if i % 2 else "BACKUP", 100)
        assert n.queue_depth() == 3
        assert n.queue_depth("INSTANCE", "VI_1") == 3
        assert n.dropped == 7
        await until(lambda: n.queue_depth() == 0)

    run(body, max_pending=3)
    assert lines(out) == ["8", "9", "10"]


def test_reconfigure_keeps_sequence_numbers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = script(tmp_path / "rec.sh", f'echo "$HAKEEPER_NOTIFY_SEQ $*" >> "{out}"\n')
    inst = instance(notify=(s,))

    async def body(n: Notifier) -> None:
        n.instance_transition(inst, "MASTER", 100)
        n.reconfigure(GlobalDefs(router_id="lb2"))
        assert n.router_id == "lb2"
        n.instance_transition(inst, "BACKUP", 100)
        await until(lambda: n.queue_depth() == 0)
        assert n.last_seq("INSTANCE", "VI_1") == 2

    run(body)
    assert lines(out) == ["1 INSTANCE VI_1 MASTER 100", "2 INSTANCE VI_1 BACKUP 100"]


# ---------------------------------------------------------------- FIFO


class FifoReader(threading.Thread):
    """Reads lines from a FIFO until EOF (the notifier closed its end)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.lines: list[str] = []

    def run(self) -> None:
        with open(self.path) as f:
            for line in f:
                self.lines.append(line.rstrip("\n"))


def test_fifo_lines_and_fifo_script(tmp_path: Path) -> None:
    fifo, vfifo = tmp_path / "notify.fifo", tmp_path / "vrrp.fifo"
    copied = tmp_path / "copied"
    # keepalived starts the script with the FIFO path appended as its last argument
    reader_script = script(tmp_path / "reader.sh", 'exec cat "$2" >> "$1"\n')
    g = GlobalDefs(
        notify_fifo=str(fifo),
        vrrp_notify_fifo=str(vfifo),
        vrrp_notify_fifo_script=(reader_script, str(copied)),
    )
    reader = FifoReader(fifo)
    expected = [
        'INSTANCE "VI_1" MASTER 100 1',
        'GROUP "VG_1" MASTER 0 1',
        'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100 2',
        'INSTANCE "VI_1" BACKUP 80 3',
    ]

    async def body(n: Notifier) -> None:
        assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISFIFO(vfifo.stat().st_mode)
        reader.start()
        n.instance_transition(instance(), "MASTER", 100)
        n.group_transition(group(), "MASTER")
        n.instance_transition(instance(), "MASTER_RX_LOWER_PRI", 100)
        n.instance_transition(instance(), "BACKUP", 80)
        await until(lambda: len(reader.lines) == 4 and len(lines(copied)) == 4)

    run(body, g)
    reader.join(5)
    assert not reader.is_alive()  # EOF: our end was closed at stop
    assert reader.lines == expected
    assert lines(copied) == expected
    assert not fifo.exists() and not vfifo.exists()  # we created them, we remove them


def test_fifo_without_reader_never_blocks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fifo = tmp_path / "notify.fifo"
    os.mkfifo(fifo)  # made by someone else: left in place at stop
    g = GlobalDefs(notify_fifo=str(fifo), vrrp_notify_fifo=str(fifo))

    async def body(n: Notifier) -> None:
        t0 = time.monotonic()
        for i in range(5000):  # ~150 kB: far more than a pipe buffer holds
            n.instance_transition(instance(), "MASTER" if i % 2 else "BACKUP", 100)
        assert time.monotonic() - t0 < 2
        assert n.dropped > 0

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run(body, g)
    assert fifo.exists()
    assert "vrrp_notify_fifo" in caplog.text and "ignored" in caplog.text  # same path twice
    assert "full (no reader?)" in caplog.text


def test_fifo_path_that_is_a_file_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "plain"
    path.write_text("")

    async def body(n: Notifier) -> None:
        n.instance_transition(instance(), "MASTER", 100)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run(body, GlobalDefs(notify_fifo=str(path)))
    assert "not a FIFO owned by us" in caplog.text
    assert path.read_text() == ""


def test_fifo_line_format() -> None:
    ev = Transition("GROUP", "VG 1", "FAULT", 0, 12, 0.0)
    assert fifo_line(ev) == 'GROUP "VG 1" FAULT 0 12\n'


# ---------------------------------------------------------------- mail


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def smtp_server() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def test_mail_alerts_to_a_real_smtp_server() -> None:
    with smtp_server() as (inbox, port):
        g = GlobalDefs(
            notification_email=("ops@example.com", "Admin <admin@example.com>"),
            notification_email_from="hakeeper <hk@example.com>",
            smtp_server=f"127.0.0.1:{port}",
            smtp_helo_name="lb1.example.com",
            smtp_connect_timeout=5,
            smtp_alert=True,  # the group takes this; the instance says so itself
            smtp_alert_vrrp=None,
        )
        inst = instance(smtp_alert=True)
        quiet = instance("VI_2", smtp_alert=False)

        async def body(n: Notifier) -> None:
            n.instance_transition(inst, "MASTER", 100)
            n.instance_transition(inst, "MASTER", 100)  # same state again: no second mail
            n.instance_transition(inst, "MASTER_RX_LOWER_PRI", 100)  # an event: no mail
            n.instance_transition(quiet, "MASTER", 100)
            n.instance_transition(inst, "BACKUP", 90)
            n.group_transition(group(), "FAULT")
            await until(lambda: n.mails_sent + n.mails_failed == 3)
            assert n.mails_failed == 0

        run(body, g)
        got = [(email.message_from_bytes(e.original_content), e) for e in inbox.envelopes]
    subjects = sorted(m["Subject"] for m, _ in got)
    assert subjects == [
        "[lb1] VRRP Group VG_1 - Entering FAULT state",
        "[lb1] VRRP Instance VI_1 - Entering BACKUP state",
        "[lb1] VRRP Instance VI_1 - Entering MASTER state",
    ]
    by_subject = {m["Subject"]: (m, e) for m, e in got}
    msg, env = by_subject["[lb1] VRRP Instance VI_1 - Entering MASTER state"]
    assert env.mail_from == "hk@example.com"
    assert env.rcpt_tos == ["ops@example.com", "admin@example.com"]
    assert msg["From"] == "hakeeper <hk@example.com>"
    assert msg["X-Mailer"] == "hakeeper"
    assert msg["Date"]
    assert " ".join(msg["To"].split()) == "ops@example.com, Admin <admin@example.com>"
    assert msg.get_payload().strip() == "=> VRRP Instance is now owning VRRP VIPs <="
    msg, _ = by_subject["[lb1] VRRP Instance VI_1 - Entering BACKUP state"]
    assert msg.get_payload().strip() == "=> VRRP Instance is no longer owning VRRP VIPs <="
    msg, _ = by_subject["[lb1] VRRP Group VG_1 - Entering FAULT state"]
    assert msg.get_payload().strip() == "=> All VRRP group instances are now in FAULT state <="


def test_smtp_server_down_or_silent_blocks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    s = script(tmp_path / "ok.sh", f'echo "$HAKEEPER_NOTIFY_NAME" >> "{out}"\n')
    # a server that accepts connections and never says a word
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    down_port = free_port()  # nothing listens there: connection refused
    try:
        for server in (f"127.0.0.1:{down_port}", f"127.0.0.1:{silent.getsockname()[1]}"):
            out.unlink(missing_ok=True)
            g = GlobalDefs(
                notification_email=("ops@example.com",),
                smtp_server=server,
                smtp_connect_timeout=0.5,
                smtp_alert=True,
            )

            async def body(n: Notifier) -> None:
                t0 = time.monotonic()
                n.instance_transition(instance(notify_master=(s,)), "MASTER", 100)
                assert time.monotonic() - t0 < 0.05  # the caller never waits on SMTP
                await until(lambda: out.exists())  # the script did not wait for the mail
                await until(lambda: n.mails_failed == 1)

            with caplog.at_level(logging.INFO, logger=LOGGER):
                run(body, g)
            assert lines(out) == ["VI_1"]
    finally:
        silent.close()
    failures = [r.getMessage() for r in caplog.records if "SMTP alert" in r.getMessage()]
    assert len(failures) == 2
    assert all("VI_1: SMTP alert '[lb1] VRRP Instance VI_1" in f for f in failures)
    assert f"127.0.0.1:{down_port} failed" in failures[0]
    assert "TimeoutError" in failures[1]


def test_reload_with_a_new_fifo_script_reopens_the_same_path(tmp_path: Path) -> None:
    fifo, first, second = tmp_path / "notify.fifo", tmp_path / "first", tmp_path / "second"
    reader = script(tmp_path / "reader.sh", 'exec cat "$2" >> "$1"\n')
    g1 = GlobalDefs(notify_fifo=str(fifo), notify_fifo_script=(reader, str(first)))
    g2 = GlobalDefs(notify_fifo=str(fifo), notify_fifo_script=(reader, str(second)))

    async def body(n: Notifier) -> None:
        n.instance_transition(instance(), "MASTER", 100)
        await until(lambda: len(lines(first)) == 1)
        n.reconfigure(g2)
        await asyncio.sleep(0.05)  # the old script's stop runs in the background
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        n.instance_transition(instance(), "BACKUP", 100)
        await until(lambda: len(lines(second)) == 1)

    run(body, g1)
    assert lines(first) == ['INSTANCE "VI_1" MASTER 100 1']
    assert lines(second) == ['INSTANCE "VI_1" BACKUP 100 2']
    assert not fifo.exists()
