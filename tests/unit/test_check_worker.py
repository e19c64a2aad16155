"""The checker worker process and its parent-side proxy: a real child process running the
real TCP_CHECK against real listeners on 127.0.0.1, killed, stopped and replaced."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hakeeper.check import wire
from hakeeper.check.process import CheckProcess
from hakeeper.check.sched import CheckStatus
from hakeeper.check.target import CheckKey, CheckTarget
from hakeeper.config.lvs_model import Checker, CheckUrl
from tests.unit.checkhelp import Recorder, free_port, make_target
from tests.unit.checkhelp import until as wait_until

ROOT = Path(__file__).resolve().parents[2]


def target(i: int, port: int, **kw: object) -> CheckTarget:
    key = ("127.0.0.1:80/TCP", f"127.0.0.1:{port}", i)
    kw = {"delay_loop": 0.1, "connect_timeout": 0.5, "delay_before_retry": 0.05, **kw}
    return make_target(Checker("TCP_CHECK"), port, key=key, **kw)


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    await wait_until(cond, timeout, step=0.02)


async def listen(port: int) -> asyncio.Server:
    return await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port, reuse_address=True)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- the parent-side proxy over a real worker -------------------------------------------------


def test_changes_arrive_and_unchanged_update_keeps_state() -> None:
    async def main() -> None:
        port, closed = free_port(), free_port()
        server = await listen(port)
        rec = Recorder()
        live = target(0, port, alpha=True)
        dead = target(1, closed)
        proc = CheckProcess(rec)
        await proc.start()
        try:
            pid = proc.pid
            assert pid is not None
            proc.update([live, dead])
            # before the worker reports: each check as it starts
            assert not proc.status(live.key).up and proc.status(dead.key).up
            await until(lambda: rec.ups(live.key) == [True] and rec.ups(dead.key) == [False])
            assert "refused" in proc.status(dead.key).last_detail
            assert Path(f"/proc/{pid}/comm").read_text().strip() == "hakeeper-check"

            server.close()
            await server.wait_closed()
            await until(lambda: rec.ups(live.key) == [True, False])
            server = await listen(port)
            await until(lambda: rec.ups(live.key) == [True, False, True])

            # the same set again: state and counters carry on, nothing restarts
            checks = proc.status(live.key).checks
            proc.update([live, dead])
            await until(lambda: proc.status(live.key).checks > checks)  # the next snapshot
            st = proc.status(live.key)
            assert st.up and st.restarts == 0 and rec.ups(live.key) == [True, False, True]
            assert proc.pid == pid and proc.restarts == 0
            # a changed target starts afresh (alpha: down until it succeeds again)
            proc.update([dataclasses.replace(live, connect_timeout=0.4), dead])
            await until(lambda: proc.status(live.key).restarts == 1)
            await until(lambda: rec.ups(live.key) == [True, False, True, True])
            proc.update([dead])
            with pytest.raises(KeyError):
                proc.status(live.key)
            counters = proc.counters()
            assert counters["checks"] >= 1 and counters["bad_lines"] == 0
        finally:
            server.close()
            await proc.stop()
        assert gone(pid)

    asyncio.run(main())


def test_killed_worker_is_restarted_and_checks_resume() -> None:
    async def main() -> None:
        port, closed = free_port(), free_port()
        server = await listen(port)
        rec = Recorder()
        live, dead = target(0, port), target(1, closed)
        proc = CheckProcess(rec, backoff=(0.1, 1.0))
        await proc.start()
        proc.update([live, dead])
        try:
            await until(lambda: rec.ups(dead.key) == [False] and proc.status(live.key).checks >= 2)
            old = proc.pid
            assert old is not None
            os.kill(old, signal.SIGKILL)
            await until(lambda: proc.pid not in (None, old))
            assert proc.restarts == 1 and gone(old)
            # the new worker got the targets again and runs them, from the state we saw:
            # the dead server is not brought back while its check runs again
            await until(lambda: proc.status(dead.key).checks >= 2)
            await until(lambda: proc.status(live.key).checks >= 2)
            assert proc.status(live.key).up and not proc.status(dead.key).up
            assert proc.status(live.key).restarts == 1
            assert rec.ups(dead.key) == [False] and rec.ups(live.key) == []
            # and it still reports changes
            server.close()
            await server.wait_closed()
            await until(lambda: rec.ups(live.key) == [False])
        finally:
            server.close()
            pid = proc.pid
            await proc.stop()
        assert pid is not None and gone(pid)

    asyncio.run(main())


def test_stopped_worker_is_detected_by_heartbeat_and_replaced() -> None:
    async def main() -> None:
        port = free_port()
        server = await listen(port)
        live = target(0, port)
        proc = CheckProcess(Recorder(), heartbeat_timeout=1.0, backoff=(0.1, 1.0))
        await proc.start()
        proc.update([live])
        try:
            await until(lambda: proc.status(live.key).checks >= 1)
            old = proc.pid
            assert old is not None
            t0 = time.monotonic()
            os.kill(old, signal.SIGSTOP)
            await until(lambda: proc.pid not in (None, old))
            assert 0.9 <= time.monotonic() - t0 < 3.0
            assert proc.restarts == 1 and gone(old)
            await until(lambda: proc.status(live.key).checks >= 1 and proc.status(live.key).up)
        finally:
            server.close()
            await proc.stop()

    asyncio.run(main())


def test_stop_leaves_no_child_and_the_worker_leaves_on_eof() -> None:
    async def main() -> None:
        proc = CheckProcess(Recorder())
        await proc.start()
        child = proc._proc
        assert child is not None
        t = target(0, free_port())
        proc.update([t])
        await until(lambda: proc.status(t.key).checks >= 1)
        await proc.stop()
        assert child.returncode == 0  # left by itself on stdin's EOF, not killed
        assert gone(child.pid) and proc.pid is None

    asyncio.run(main())


# -- the worker on its own: bad input never stops it ------------------------------------------


def test_worker_survives_bad_input_and_exits_on_eof() -> None:
    port = free_port()
    good = target(0, port)
    good_json = wire.encode_target(good)
    bad_json = {**good_json, "address": "not-an-address"}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "hakeeper.check.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        lines = [
            b"this is not json\n",
            b'{"t": "launch"}\n',
            b'{"t": "targets", "targets": 7}\n',
            json.dumps({"t": "targets", "targets": [bad_json, good_json], "seed": 3}).encode()
            + b"\n",
        ]
        child.stdin.write(b"".join(lines))
        child.stdin.flush()
        seen: dict[str, object] = {}
        end = time.monotonic() + 5
        while time.monotonic() < end:
            msg = wire.loads(child.stdout.readline())
            if msg["t"] == "statuses" and msg["rows"]:
                seen = msg
                if msg["rows"][0][5] >= 1:  # checks
                    break
        rows = seen["rows"]
        assert isinstance(rows, list) and len(rows) == 1
        key, status = wire.decode_status_row(rows[0])
        assert key == good.key and not status.up and status.checks >= 1
        counters = seen["counters"]
        assert isinstance(counters, dict) and counters["bad_input"] == 5
        child.stdin.close()
        assert child.wait(timeout=5) == 0
        err = child.stderr.read().decode() if child.stderr else ""
        assert "not an IP address" in err and "unknown message 'launch'" in err
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()


# -- the wire format --------------------------------------------------------------------------


def test_targets_round_trip() -> None:
    ck = Checker(
        "HTTP_GET",
        connect_ip=ipaddress.ip_address("fd00:198:18::10"),
        bindto=ipaddress.ip_address("fd00:198:18::1"),
        connect_timeout=2.5,
        url=(CheckUrl("/health", digest="9b3a", status_code=((200, 204), (301, 302))),),
        virtualhost="www.example",
        misc_path=("/bin/sh", "-c", "exit 0"),
        payload=b"\x00\xffping",
        require_reply=b"",
    )
    t = CheckTarget(
        key=("[fd00:198:18::100]:80/TCP", "[fd00:198:18::10]:80", 2),
        checker=ck,
        address=ipaddress.ip_address("fd00:198:18::10"),
        port=None,
        delay_loop=3,  # an int from a config travels as a number and comes back a float
        connect_timeout=2.5,
        retry=2,
        delay_before_retry=1.0,
        warmup=0.0,
        alpha=True,
        virtualhost="www.example",
        script_security=True,
        script_uid=1000,
        script_gid=1000,
    )
    line = wire.targets_message([t], {t.key: (False, 7)})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    targets, seed, errors = wire.decode_targets_message(wire.loads(line))
    assert targets == [t] and seed == {t.key: (False, 7)} and errors == []
    back = targets[0]
    assert back.checker.payload == b"\x00\xffping" and back.checker.require_reply == b""
    assert back.checker.url[0].status_code == ((200, 204), (301, 302))
    assert isinstance(back.delay_loop, float) and back.address.version == 6


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"address": "198.18.0.300"}, "not an IP address"),
        ({"retry": "2"}, "expected an integer"),
        ({"alpha": 1}, "expected true/false"),
        ({"key": ["vs", "rs"]}, "expected 3 items"),
        ({"checker": {"kind": "TCP_CHECK", "payload": "zz"}}, "expected hex bytes"),
        ({"checker": {"url": []}}, "kind"),  # a required field missing
    ],
)
def test_bad_targets_are_refused_with_a_reason(change: dict[str, object], error: str) -> None:
    data = {**wire.encode_target(target(0, 80)), **change}
    with pytest.raises(wire.WireError, match=error):
        wire.decode_target(data)


def test_status_rows() -> None:
    st = CheckStatus(False, 3, 10, 4, "connection refused", 0.002, 1700000000.5, 1, 2)
    key: CheckKey = ("vs", "rs", 0)
    row = json.loads(json.dumps(wire.status_row(key, st)))
    assert wire.decode_status_row(row) == (key, st)
    for bad in ([], [*row[:3], "yes", *row[4:]], [1, *row[1:]], "row"):
        with pytest.raises(wire.WireError):
            wire.decode_status_row(bad)
    with pytest.raises(wire.WireError):
        wire.loads(b"[1, 2]\n")
