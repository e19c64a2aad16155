"""CheckRunner: the asyncio engine, with injected check functions and with real TCP servers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from hakeeper.check import runner as runner_mod
from hakeeper.check.base import Outcome
from hakeeper.check.runner import CheckRunner, CheckStatus, attempt_ceiling
from hakeeper.check.target import CheckKey, CheckTarget
from hakeeper.config.lvs_model import Checker, CheckUrl
from tests.unit.checkhelp import Recorder, free_port, make_target, until


def target(i: int = 0, port: int = 1, **kw: object) -> CheckTarget:
    key = ("127.0.0.1:80/TCP", f"127.0.0.1:{port}", i)
    kw = {"delay_loop": 0.05, "connect_timeout": 0.5, "delay_before_retry": 0.02, **kw}
    checker = kw.pop("checker", Checker("TCP_CHECK"))
    return make_target(checker, port, key=key, **kw)  # type: ignore[arg-type]


def scripted(results: dict[CheckKey, list[bool]]) -> Callable[[CheckTarget], Awaitable[Outcome]]:
    """Each key answers its list in order, then repeats its last answer."""

    async def check(t: CheckTarget) -> Outcome:
        seq = results[t.key]
        ok = seq.pop(0) if len(seq) > 1 else seq[0]
        return Outcome(ok, "scripted ok" if ok else "scripted fail")

    return check


def test_changes_follow_outcomes() -> None:
    async def main() -> None:
        rec = Recorder()
        a, b = target(0), target(1, alpha=True)
        r = CheckRunner(rec, check=scripted({a.key: [True, False, True], b.key: [True]}))
        r.update([a, b])
        await until(lambda: r.status(a.key).checks >= 4 and r.status(b.key).checks >= 2)
        await r.stop()
        # a: up (initial) -> down -> up; only the transitions are reported
        assert rec.ups(a.key) == [False, True]
        # b: alpha starts down, first success brings it up, then nothing more to report
        assert rec.ups(b.key) == [True]
        st = r.counters()
        assert st["errors"] == st["stuck"] == 0

    asyncio.run(main())


def test_retries_are_spaced_by_delay_before_retry() -> None:
    async def main() -> None:
        times: list[float] = []

        async def check(t: CheckTarget) -> Outcome:
            times.append(time.monotonic())
            return Outcome(len(times) == 1, "x")

        rec = Recorder()
        t = target(retry=2, delay_loop=0.3, delay_before_retry=0.05)
        r = CheckRunner(rec, check=check)
        r.update([t])
        await until(lambda: rec.ups(t.key) == [False])
        assert len(times) == 4  # down only after the attempt and its two retries
        assert r.status(t.key).failures == 3
        await r.stop()
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 0.28 <= gaps[0] < 0.45  # success, then delay_loop
        assert 0.04 <= gaps[1] < 0.2 and 0.04 <= gaps[2] < 0.2  # the two retries

    asyncio.run(main())


def test_reload_keeps_unchanged_restarts_changed_stops_removed() -> None:
    async def main() -> None:
        cancelled: list[CheckKey] = []
        started: dict[CheckKey, int] = {}

        async def check(t: CheckTarget) -> Outcome:
            started[t.key] = started.get(t.key, 0) + 1
            if t.port == 9:  # hangs until cancelled
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    cancelled.append(t.key)
                    raise
            return Outcome(t.port != 2, "x")

        rec = Recorder()
        same, changed, timing_only, gone = target(0, 1), target(1, 2), target(2, 2), target(3, 9)
        r = CheckRunner(rec, check=check)
        r.update([same, changed, timing_only, gone])
        await until(lambda: r.status(same.key).checks >= 3 and not r.status(changed.key).up)
        await until(lambda: not r.status(timing_only.key).up and started.get(gone.key) == 1)
        before = r.status(same.key).checks
        changed2 = dataclasses.replace(changed, port=3, alpha=True, delay_loop=5.0, warmup=5.0)
        timing2 = dataclasses.replace(timing_only, delay_loop=5.0, warmup=5.0)
        r.update([same, changed2, timing2])
        await asyncio.sleep(0)
        assert cancelled == [gone.key]
        assert gone.key not in r.statuses()
        # unchanged: same state, counters carry on, no restart
        s = r.status(same.key)
        assert s.checks >= before and s.restarts == 0
        # changed probe: afresh from its alpha state
        c = r.status(changed.key)
        assert (c.up, c.checks, c.restarts) == (False, 0, 1)
        # timing only (keepalived's migrate_checkers): keeps down, restarts its schedule
        m = r.status(timing_only.key)
        assert (m.up, m.checks, m.restarts) == (False, 0, 1)
        n = len(rec.changes)
        await r.stop()
        assert len(rec.changes) == n  # a reload reports nothing by itself

    asyncio.run(main())


def test_unchanged_update_keeps_the_schedule() -> None:
    async def main() -> None:
        calls: list[float] = []

        async def check(t: CheckTarget) -> Outcome:
            calls.append(time.monotonic())
            return Outcome(True, "ok")

        t = target(delay_loop=0.4)
        r = CheckRunner(Recorder(), check=check)
        r.update([t])
        await until(lambda: len(calls) == 1)
        for _ in range(5):  # reloads with the same set do not fire the check again
            r.update([t])
            await asyncio.sleep(0.02)
        assert len(calls) == 1
        await until(lambda: len(calls) == 2)
        assert calls[1] - calls[0] >= 0.38
        await r.stop()

    asyncio.run(main())


def test_stuck_attempt_is_cancelled_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_mod, "STUCK_GRACE", 0.1)

    async def main() -> None:
        async def check(t: CheckTarget) -> Outcome:
            await asyncio.sleep(3600)  # a kind that ignores its own timeout
            raise AssertionError

        rec = Recorder()
        t = target(connect_timeout=0.05, retry=0)
        assert attempt_ceiling(t) == pytest.approx(0.2)
        r = CheckRunner(rec, check=check)
        r.update([t])
        await until(lambda: r.counters()["stuck"] >= 2)
        s = r.status(t.key)
        assert not s.up and s.last_detail == "stuck: cancelled after 0.2s"
        assert 0.15 <= (s.last_duration or 0) < 0.5
        await r.stop()
        assert rec.ups(t.key) == [False]

    asyncio.run(main())


def test_raising_kind_is_an_internal_error_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async def check(t: CheckTarget) -> Outcome:
            if t.port == 1:
                raise RuntimeError("bug in a kind")
            if t.port == 2:
                return None  # type: ignore[return-value]
            return Outcome(True, "fine")

        rec = Recorder()
        bad, garbage, good = target(0, 1), target(1, 2), target(2, 3)
        r = CheckRunner(rec, check=check)
        r.update([bad, garbage, good])
        await until(lambda: r.status(bad.key).checks >= 4 and r.status(garbage.key).checks >= 4)
        assert r.status(good.key).up and r.status(good.key).checks >= 4
        s = r.status(bad.key)
        assert not s.up and s.last_detail.startswith("internal error")
        assert "RuntimeError: bug in a kind" in s.last_detail
        assert r.status(garbage.key).last_detail == "internal error: returned None"
        assert r.counters()["errors"] >= 8
        await r.stop()

    with caplog.at_level(logging.ERROR, logger="hakeeper.check"):
        asyncio.run(main())
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(logged) == 2  # once per check, however often it fails


def test_semaphore_makes_attempts_late_never_skipped() -> None:
    async def main() -> None:
        running = 0
        peak = 0
        done: dict[CheckKey, int] = {}

        async def check(t: CheckTarget) -> Outcome:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.03)
            running -= 1
            done[t.key] = done.get(t.key, 0) + 1
            return Outcome(True, "ok")

        targets = [target(i, delay_loop=0.01) for i in range(4)]
        r = CheckRunner(Recorder(), check=check, max_concurrent=2)
        r.update(targets)
        await until(lambda: len(done) == 4 and min(done.values()) >= 3)
        await r.stop()
        assert peak == 2
        assert r.late >= 2

    asyncio.run(main())


def test_dynamic_weight_is_reported() -> None:
    async def main() -> None:
        weights = [5, 5, 7]

        async def check(t: CheckTarget) -> Outcome:
            w = weights.pop(0) if len(weights) > 1 else weights[0]
            return Outcome(True, f"exit {w + 2}", weight=w)

        rec = Recorder()
        t = target(checker=Checker("MISC_CHECK", misc_path=("/bin/true",), misc_dynamic=True))
        r = CheckRunner(rec, check=check)
        r.update([t])
        await until(lambda: r.status(t.key).checks >= 4)
        await r.stop()
        assert [s.weight for _, s in rec.changes] == [5, 7]
        assert all(s.up for _, s in rec.changes)

    asyncio.run(main())


def test_a_failing_change_handler_does_not_stop_checks() -> None:
    async def main() -> None:
        def boom(key: CheckKey, status: CheckStatus) -> None:
            raise RuntimeError("handler bug")

        t = target()
        r = CheckRunner(boom, check=scripted({t.key: [False, True]}))
        r.update([t])
        await until(lambda: r.status(t.key).checks >= 3)
        assert r.status(t.key).up
        await r.stop()

    asyncio.run(main())


def test_ceiling_per_kind() -> None:
    http = target(
        connect_timeout=2.0, checker=Checker("HTTP_GET", url=(CheckUrl("/a"), CheckUrl("/b")))
    )
    assert attempt_ceiling(http) == 2.0 * 4 + runner_mod.STUCK_GRACE
    misc = target(delay_loop=6.0, checker=Checker("MISC_CHECK", misc_path=("x",)))
    assert attempt_ceiling(misc) == 6.0 + runner_mod.SCRIPT_GRACE
    misc_t = target(checker=Checker("MISC_CHECK", misc_path=("x",), misc_timeout=3.0))
    assert attempt_ceiling(misc_t) == 3.0 + runner_mod.SCRIPT_GRACE


def test_two_thousand_checks_on_one_timer() -> None:
    async def main() -> float:
        calls = 0

        async def check(t: CheckTarget) -> Outcome:
            nonlocal calls
            calls += 1
            return Outcome(True, "ok")

        targets = [target(i, delay_loop=0.2, warmup=0.2) for i in range(2000)]
        r = CheckRunner(Recorder(), check=check)
        t0 = time.process_time()
        r.update(targets)
        await asyncio.sleep(1.0)
        cpu = time.process_time() - t0
        tasks = len(asyncio.all_tasks())
        statuses = r.statuses()
        await r.stop()
        assert min(s.checks for s in statuses.values()) >= 3
        assert calls >= 2000 * 3
        assert tasks < 200  # attempts come and go; no task sleeps per check
        return cpu

    cpu = asyncio.run(main())
    assert cpu < 0.9  # ~10000 attempts in a second of wall time


def test_stop_cancels_attempts_in_flight() -> None:
    async def main() -> None:
        cancelled = 0
        entered = asyncio.Event()

        async def check(t: CheckTarget) -> Outcome:
            nonlocal cancelled
            entered.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled += 1
                raise
            raise AssertionError

        r = CheckRunner(Recorder(), check=check)
        r.update([target(i) for i in range(3)])
        await asyncio.wait_for(entered.wait(), 2)
        await asyncio.sleep(0.01)
        await r.stop()
        assert cancelled == 3
        assert r.statuses() == {}
        assert len(asyncio.all_tasks()) == 1  # only main()

    asyncio.run(main())


# -- the real TCP_CHECK against real listeners on 127.0.0.1 ------------------------------


def test_real_tcp_listener_closes_and_opens() -> None:
    async def main() -> None:
        port, closed_port = free_port(), free_port()

        async def serve() -> asyncio.Server:
            return await asyncio.start_server(
                lambda r, w: w.close(), "127.0.0.1", port, reuse_address=True
            )

        server = await serve()
        rec = Recorder()
        live = target(0, port, retry=1, delay_loop=0.1, delay_before_retry=0.05, alpha=True)
        dead = target(1, closed_port, delay_loop=0.1)
        r = CheckRunner(rec)  # the real kinds: TCP_CHECK
        r.update([live, dead])
        await until(lambda: rec.ups(live.key) == [True] and rec.ups(dead.key) == [False])
        assert "refused" in r.status(dead.key).last_detail
        server.close()
        await server.wait_closed()
        await until(lambda: rec.ups(live.key) == [True, False])
        assert r.status(live.key).failures == 2  # the attempt and its one retry
        server = await serve()
        await until(lambda: rec.ups(live.key) == [True, False, True])
        server.close()
        await r.stop()

    asyncio.run(main())
