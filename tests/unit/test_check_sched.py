"""The per-check state machine against keepalived's checker rules, on a fake clock."""

from __future__ import annotations

import math

import pytest

from hakeeper.check.base import Outcome
from hakeeper.check.sched import CheckSched, Timing

OK = Outcome(True, "connected")
FAIL = Outcome(False, "connection refused")


def timing(**kw: object) -> Timing:
    base: dict[str, object] = dict(
        delay_loop=10.0, retry=1, delay_before_retry=1.0, warmup=0.0, alpha=False
    )
    base.update(kw)
    return Timing(**base)  # type: ignore[arg-type]


def run(sched: CheckSched, results: str, took: float = 0.0) -> list[tuple[float, bool, bool]]:
    """Drive attempts ('+' success, '-' failure) at each deadline; each attempt lasts `took`.
    Returns (start time, up afterwards, changed) per attempt."""
    out = []
    for r in results:
        start = sched.next_deadline()
        assert sched.on_timer(start)
        change = sched.on_result(OK if r == "+" else FAIL, start + took)
        out.append((start, sched.up, change is not None and change.up_changed))
    return out


# (name, timing overrides, results, expected start times, expected up after each attempt)
CASES = [
    # non-alpha starts up; before its first result one failure is enough (keepalived)
    ("first failure is enough", {}, "-", [0], [False]),
    ("first success keeps up", {}, "+", [0], [True]),
    # once it has run: retry=1 means one more attempt, delay_before_retry later
    ("retry 1", {}, "+--", [0, 10, 11], [True, True, False]),
    ("retry 3", {"retry": 3}, "+----", [0, 10, 11, 12, 13], [True, True, True, True, False]),
    ("retry 0", {"retry": 0}, "+-", [0, 10], [True, False]),
    ("retry spacing", {"retry": 2, "delay_before_retry": 2.5}, "+---", [0, 10, 12.5, 15],
     [True, True, True, False]),
    # a success during retries resets the count
    ("recovers during retries", {"retry": 2}, "+--+--", [0, 10, 11, 12, 22, 23],
     [True] * 6),
    # while down: no retries, failures spaced delay_loop, one success brings it up
    ("down is not retried", {"retry": 3}, "----", [0, 10, 20, 30], [False] * 4),
    ("one success recovers", {}, "+---+", [0, 10, 11, 21, 31], [True, True, False, False, True]),
    # alpha: down until the first success
    ("alpha first success", {"alpha": True}, "+", [0], [True]),
    ("alpha failures", {"alpha": True, "retry": 2}, "--+", [0, 10, 20], [False, False, True]),
    ("alpha then retries", {"alpha": True, "retry": 1}, "+--", [0, 10, 11], [True, True, False]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kw", "results", "starts", "ups"), CASES, ids=[c[0] for c in CASES]
)
def test_schedule_and_state(name: str, kw: dict, results: str, starts: list, ups: list) -> None:
    sched = CheckSched(timing(**kw), now=0.0, rng=lambda: 0.0)
    assert sched.up is not kw.get("alpha", False)
    got = run(sched, results)
    assert [round(t, 6) for t, _, _ in got] == starts
    assert [up for _, up, _ in got] == ups


def test_change_reported_only_on_transitions() -> None:
    sched = CheckSched(timing(retry=1), now=0.0, rng=lambda: 0.0)
    changed = [c for _, _, c in run(sched, "++--+-+")]
    # + + (up) - (retry) - (down) + (up) - (retry) + (still up)
    assert changed == [False, False, False, True, True, False, False]


def test_next_attempt_counts_from_the_end_of_the_last() -> None:
    sched = CheckSched(timing(delay_loop=10.0, delay_before_retry=1.0), now=0.0, rng=lambda: 0.0)
    got = run(sched, "+--", took=3.0)
    assert [t for t, _, _ in got] == [0.0, 13.0, 17.0]


@pytest.mark.parametrize(
    ("warmup", "r", "first"),
    [(0.0, 0.7, 100.0), (4.0, 0.0, 100.0), (4.0, 0.5, 102.0), (4.0, 1.0, 104.0), (4.0, 7.0, 104.0)],
)
def test_warmup_offset(warmup: float, r: float, first: float) -> None:
    sched = CheckSched(timing(warmup=warmup), now=100.0, rng=lambda: r)
    assert sched.next_deadline() == first
    assert not sched.on_timer(first - 0.001)
    assert sched.on_timer(first)


def test_timer_and_in_flight_attempt() -> None:
    sched = CheckSched(timing(), now=0.0, rng=lambda: 0.0)
    assert sched.on_timer(0.0)
    assert sched.running and sched.next_deadline() == math.inf
    assert not sched.on_timer(5.0)  # one attempt at a time
    sched.on_result(OK, 0.25)
    assert not sched.running and sched.next_deadline() == 10.25
    assert sched.on_result(FAIL, 1.0) is None  # no attempt in flight: ignored
    assert sched.checks == 1


def test_counters_and_details() -> None:
    sched = CheckSched(timing(retry=2), now=0.0, rng=lambda: 0.0)
    run(sched, "+--", took=0.5)
    assert (sched.checks, sched.failures, sched.consecutive_failures) == (3, 2, 2)
    assert sched.last_detail == "connection refused"
    assert sched.last_duration == 0.5 and sched.last_check == 12.5  # started at 12 (a retry)
    run(sched, "+")
    assert sched.consecutive_failures == 0
    due = sched.next_deadline()
    assert sched.on_timer(due)
    sched.on_result(OK, due + 3.0, duration=0.125)  # the runner measures the check itself
    assert sched.last_duration == 0.125 and sched.last_check == due + 3.0
    st = sched.status(last_check=1234.5, restarts=2)
    assert (st.up, st.checks, st.failures, st.last_check, st.restarts) == (True, 5, 2, 1234.5, 2)


def test_dynamic_weight() -> None:
    sched = CheckSched(timing(retry=0), now=0.0, rng=lambda: 0.0)
    assert sched.on_timer(0.0)
    c = sched.on_result(Outcome(True, "exit 7", weight=5), 0.0)
    assert c is not None and c.weight_changed and not c.up_changed and c.weight == 5
    assert "weight None -> 5" in c.reason
    assert sched.on_timer(10.0)
    assert sched.on_result(Outcome(True, "exit 7", weight=5), 10.0) is None  # unchanged
    assert sched.on_timer(20.0)
    c = sched.on_result(Outcome(True, "exit 4", weight=2), 20.0)
    assert c is not None and c.weight == 2
    # going down drops the checker's weight, as keepalived resets cur_weight
    assert sched.on_timer(30.0)
    c = sched.on_result(Outcome(False, "exit 1", weight=9), 30.0)
    assert c is not None and c.up_changed and not c.up and c.weight is None and c.weight_changed
    assert sched.on_timer(40.0)
    c = sched.on_result(Outcome(True, "exit 2", weight=0), 40.0)
    assert c is not None and c.up and c.weight == 0


def test_change_reason_names_retries() -> None:
    sched = CheckSched(timing(retry=2), now=0.0, rng=lambda: 0.0)
    changes = []
    for r in "+---+":
        assert sched.on_timer(sched.next_deadline())
        changes.append(sched.on_result(OK if r == "+" else FAIL, sched.started or 0.0))
    down, up = changes[3], changes[4]
    assert down is not None and down.reason == "failed after 2 retries: connection refused"
    assert up is not None and up.reason == "succeeded: connected"
    first = CheckSched(timing(retry=2), now=0.0, rng=lambda: 0.0)
    assert first.on_timer(0.0)
    c = first.on_result(FAIL, 0.0)
    assert c is not None and c.reason == "failed: connection refused"


@pytest.mark.parametrize(
    ("seed", "results", "ups"),
    [
        (False, "-+", [False, True]),  # known down: stays down on failure, one success is enough
        (True, "--", [True, False]),  # known up and has run: failures are retried
    ],
)
def test_seeded_state(seed: bool, results: str, ups: list[bool]) -> None:
    sched = CheckSched(timing(alpha=True), now=0.0, rng=lambda: 0.0, seed_up=seed, seed_weight=3)
    assert sched.up is seed and sched.weight == 3
    assert [up for _, up, _ in run(sched, results)] == ups
