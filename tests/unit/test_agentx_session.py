"""AgentX session state machine, driven with PDUs and bytes only: open and register, the
read requests against an in-memory view (end of view, SearchRange bounds, GetBulk), the four
Set phases, notifications, timers, and a stream cut into any pieces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hakeeper.snmp.agentx import pdu as p
from hakeeper.snmp.agentx.pdu import Error, VarBind, encode
from hakeeper.snmp.agentx.session import (
    SNMP_TRAP_OID_0,
    Closed,
    Opened,
    OpenFailed,
    ParseFailed,
    ProtocolViolation,
    Registered,
    RegisterFailed,
    Registration,
    Session,
    State,
    TimedOut,
    ViewFailed,
)
from tests.unit.agentxhelp import DictView

ROOT = (1, 3, 6, 1, 3, 9999)
SID = 42


def oid(*tail: int) -> tuple[int, ...]:
    return (*ROOT, *tail)


def make_view() -> DictView:
    return DictView(
        {
            oid(1, 0): p.OctetString(b"hakeeper"),
            oid(2, 1, 1): p.Integer(100),
            oid(2, 1, 2): p.Integer(200),
            oid(2, 2, 1): p.Gauge32(7),
            oid(2, 2, 2): p.Gauge32(8),
            oid(3, 0): p.Counter64(2**40),
        },
        writable={
            oid(2, 1, 1): (p.Integer, lambda v: 1 <= v.value <= 254),
            oid(2, 1, 2): (p.Integer, None),
        },
    )


def feed(s: Session, *pdus: p.Pdu, now: float = 0.0) -> list[p.Pdu]:
    return s.receive_data(b"".join(encode(x) for x in pdus), now)


def ready_session(view: DictView | None = None) -> Session:
    s = Session(view or make_view(), [Registration(ROOT)], subagent_id=ROOT, description="t")
    [op] = s.start(0.0)
    [reg] = feed(s, p.Response(session_id=SID, packet_id=op.packet_id))
    feed(s, p.Response(session_id=SID, packet_id=reg.packet_id))
    assert s.state is State.READY
    s.drain_events()
    return s


def ask(s: Session, req: p.Pdu) -> p.Response:
    [resp] = feed(s, req)
    assert isinstance(resp, p.Response)
    assert (resp.session_id, resp.transaction_id, resp.packet_id) == (
        req.session_id,
        req.transaction_id,
        req.packet_id,
    )
    return resp


def get_next(*ranges: p.SearchRange, tx: int = 1) -> p.GetNext:
    return p.GetNext(session_id=SID, transaction_id=tx, packet_id=100 + tx, ranges=ranges)


# --- open and register -----------------------------------------------------------------------


def test_open_then_register_then_ready() -> None:
    regs = [Registration(ROOT, priority=100, timeout=3), Registration(oid(9), priority=5)]
    s = Session(make_view(), regs, subagent_id=ROOT, description="hakeeper", timeout=2)
    assert s.state is State.CLOSED
    [op] = s.start(0.0)
    assert op == p.Open(timeout=2, id=ROOT, descr=b"hakeeper", packet_id=op.packet_id)
    assert s.state is State.OPENING
    out = feed(s, p.Response(session_id=SID, packet_id=op.packet_id))
    assert [(r.subtree, r.priority, r.timeout, r.session_id) for r in out] == [
        (ROOT, 100, 3, SID),
        (oid(9), 5, 0, SID),
    ]
    assert len({op.packet_id, *(r.packet_id for r in out)}) == 3
    assert s.state is State.REGISTERING
    feed(s, p.Response(session_id=SID, packet_id=out[0].packet_id))
    assert s.state is State.REGISTERING
    feed(
        s,
        p.Response(session_id=SID, packet_id=out[1].packet_id, error=Error.DUPLICATE_REGISTRATION),
    )
    assert s.state is State.READY
    assert s.drain_events() == [
        Opened(SID),
        Registered(regs[0]),
        RegisterFailed(regs[1], Error.DUPLICATE_REGISTRATION),
    ]


def test_open_refused_closes() -> None:
    s = Session(make_view(), [Registration(ROOT)])
    [op] = s.start(0.0)
    assert feed(s, p.Response(packet_id=op.packet_id, error=Error.OPEN_FAILED)) == []
    assert s.state is State.CLOSED
    assert s.drain_events() == [OpenFailed(Error.OPEN_FAILED)]


def test_unanswered_open_times_out_and_restart_opens_again() -> None:
    s = Session(make_view(), [Registration(ROOT)], response_timeout=5.0)
    [op] = s.start(10.0)
    assert s.next_deadline() == 15.0
    assert s.handle_timer(14.9) == []
    assert s.handle_timer(15.0) == []  # nothing open yet, so no Close to send
    assert s.state is State.CLOSED
    assert TimedOut("open", op.packet_id) in s.drain_events()
    [op2] = s.start(20.0)
    assert isinstance(op2, p.Open) and op2.packet_id != op.packet_id


def test_master_close_and_connection_loss() -> None:
    s = ready_session()
    assert feed(s, p.Close(session_id=SID, reason=p.CloseReason.SHUTDOWN)) == []
    assert s.state is State.CLOSED
    assert s.drain_events() == [Closed(p.CloseReason.SHUTDOWN, by_master=True)]
    s = ready_session()
    s.connection_lost()
    assert s.state is State.CLOSED and s.session_id == 0


# --- reads -----------------------------------------------------------------------------------


def test_get_values_and_missing_objects() -> None:
    s = ready_session()
    req = p.Get(
        session_id=SID,
        transaction_id=5,
        packet_id=6,
        ranges=(p.SearchRange(oid(1, 0)), p.SearchRange(oid(2, 1, 9)), p.SearchRange(oid(7, 0))),
    )
    resp = ask(s, req)
    assert resp.error == 0
    assert resp.varbinds == (
        VarBind(oid(1, 0), p.OctetString(b"hakeeper")),
        VarBind(oid(2, 1, 9), p.NO_SUCH_INSTANCE),
        VarBind(oid(7, 0), p.NO_SUCH_OBJECT),
    )


def test_get_next_walks_in_order_and_ends_with_end_of_mib_view() -> None:
    s = ready_session()
    walked = []
    start, include = ROOT, False
    for tx in range(1, 20):
        [vb] = ask(s, get_next(p.SearchRange(start, (), include), tx=tx)).varbinds
        if vb.value == p.END_OF_MIB_VIEW:
            assert vb.name == start  # named by the range start (§7.2.3.2)
            break
        walked.append(vb.name)
        start = vb.name
    assert walked == sorted(s.view.values)  # type: ignore[attr-defined]


def test_get_next_honours_include_and_end() -> None:
    s = ready_session()
    resp = ask(
        s,
        get_next(
            p.SearchRange(oid(2, 1, 1), (), include=True),  # include: the start itself
            p.SearchRange(oid(2, 1, 1), ()),  # exclusive: the one after
            p.SearchRange(oid(2, 1, 2), oid(2, 2)),  # nothing left below end
            p.SearchRange(oid(2, 2, 2), oid(3, 0)),  # end is exclusive
            p.SearchRange(oid(3, 0)),  # past the last object
        ),
    )
    assert resp.varbinds == (
        VarBind(oid(2, 1, 1), p.Integer(100)),
        VarBind(oid(2, 1, 2), p.Integer(200)),
        VarBind(oid(2, 1, 2), p.END_OF_MIB_VIEW),
        VarBind(oid(2, 2, 2), p.END_OF_MIB_VIEW),
        VarBind(oid(3, 0), p.END_OF_MIB_VIEW),
    )


def test_get_bulk_non_repeaters_then_repetitions_until_the_end() -> None:
    s = ready_session()
    req = p.GetBulk(
        session_id=SID,
        transaction_id=3,
        packet_id=4,
        non_repeaters=1,
        max_repetitions=10,
        ranges=(
            p.SearchRange(ROOT),
            p.SearchRange(oid(2, 1), oid(2, 2)),  # the first column only
            p.SearchRange(oid(2, 2)),
        ),
    )
    vbs = ask(s, req).varbinds
    assert vbs[0] == VarBind(oid(1, 0), p.OctetString(b"hakeeper"))
    rows = [vbs[i : i + 2] for i in range(1, len(vbs), 2)]
    assert [tuple(vb.name for vb in row) for row in rows] == [
        (oid(2, 1, 1), oid(2, 2, 1)),
        (oid(2, 1, 2), oid(2, 2, 2)),
        (oid(2, 1, 2), oid(3, 0)),  # the first repeater stays at its end
        (oid(2, 1, 2), oid(3, 0)),  # both at the end: the last repetition
    ]
    assert [vb.value == p.END_OF_MIB_VIEW for vb in vbs[5:]] == [True, False, True, True]


def test_get_bulk_stops_at_max_repetitions_and_with_no_repeaters() -> None:
    s = ready_session()
    req = p.GetBulk(session_id=SID, packet_id=9, max_repetitions=2, ranges=(p.SearchRange(ROOT),))
    assert [vb.name for vb in ask(s, req).varbinds] == [oid(1, 0), oid(2, 1, 1)]
    req = p.GetBulk(
        session_id=SID,
        packet_id=10,
        non_repeaters=5,
        max_repetitions=9,
        ranges=(p.SearchRange(ROOT),),
    )
    assert [vb.name for vb in ask(s, req).varbinds] == [oid(1, 0)]


class _BadView(DictView):
    def next(self, oid_: tuple[int, ...], include: bool, end: tuple[int, ...]):  # type: ignore[override]
        if oid_ == ROOT:
            return ROOT[:-1], p.Integer(1)  # backwards: would loop the master
        raise RuntimeError("boom")


def test_a_broken_view_gives_end_of_view_or_gen_err_never_a_crash() -> None:
    s = ready_session(_BadView({}))
    resp = ask(s, get_next(p.SearchRange(ROOT)))
    assert resp.varbinds == (VarBind(ROOT, p.END_OF_MIB_VIEW),)
    resp = ask(s, get_next(p.SearchRange(ROOT), p.SearchRange(oid(1)), tx=2))
    assert (resp.error, resp.index) == (Error.GEN_ERR, 2)
    assert all(isinstance(e, ViewFailed) for e in s.drain_events())


# --- the four Set phases ---------------------------------------------------------------------


def set_pdus(tx: int, *vbs: VarBind) -> tuple[p.TestSet, p.CommitSet, p.UndoSet, p.CleanupSet]:
    ids = dict(session_id=SID, transaction_id=tx)
    return (
        p.TestSet(varbinds=vbs, packet_id=tx * 10 + 1, **ids),
        p.CommitSet(packet_id=tx * 10 + 2, **ids),
        p.UndoSet(packet_id=tx * 10 + 3, **ids),
        p.CleanupSet(packet_id=tx * 10 + 4, **ids),
    )


def test_set_test_commit_cleanup() -> None:
    s = ready_session()
    view = s.view
    test, commit, _, cleanup = set_pdus(1, VarBind(oid(2, 1, 1), p.Integer(150)))
    assert ask(s, test).error == 0
    assert view.values[oid(2, 1, 1)] == p.Integer(100)  # type: ignore[attr-defined]
    assert ask(s, commit).error == 0
    assert view.values[oid(2, 1, 1)] == p.Integer(150)  # type: ignore[attr-defined]
    assert feed(s, cleanup) == []  # §7.2.4.4: CleanupSet gets no answer
    assert [c[0] for c in view.calls] == ["test", "commit", "cleanup"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("vbs", "error", "index"),
    [
        ((VarBind(oid(2, 1, 2), p.Integer(1)), VarBind(oid(2, 1, 1), p.OctetString(b"x"))), 7, 2),
        ((VarBind(oid(2, 1, 1), p.Integer(999)),), Error.WRONG_VALUE, 1),
        ((VarBind(oid(1, 0), p.OctetString(b"x")),), Error.NOT_WRITABLE, 1),
        ((VarBind(oid(8, 0), p.Integer(1)),), Error.NO_CREATION, 1),
    ],
)
def test_test_set_errors_name_the_varbind(vbs: tuple[VarBind, ...], error: int, index: int) -> None:
    s = ready_session()
    test, _, _, cleanup = set_pdus(2, *vbs)
    resp = ask(s, test)
    assert (resp.error, resp.index) == (error, index)
    assert feed(s, cleanup) == []
    assert s.view.values[oid(2, 1, 2)] == p.Integer(200)  # type: ignore[attr-defined]


def test_failed_commit_is_undone() -> None:
    s = ready_session()
    view = s.view
    view.fail_commit.add(oid(2, 1, 2))  # type: ignore[attr-defined]
    test, commit, undo, cleanup = set_pdus(
        3, VarBind(oid(2, 1, 1), p.Integer(5)), VarBind(oid(2, 1, 2), p.Integer(6))
    )
    assert ask(s, test).error == 0
    resp = ask(s, commit)
    assert (resp.error, resp.index) == (Error.COMMIT_FAILED, 2)
    assert view.values[oid(2, 1, 1)] == p.Integer(5)  # type: ignore[attr-defined]
    assert ask(s, undo).error == 0
    assert view.values[oid(2, 1, 1)] == p.Integer(100)  # type: ignore[attr-defined]
    feed(s, cleanup)
    assert [c[0] for c in view.calls] == ["test", "test", "commit", "commit", "undo", "cleanup"]  # type: ignore[attr-defined]


def test_commit_for_unknown_transaction_and_cleanup_on_connection_loss() -> None:
    s = ready_session()
    _, commit, _, _ = set_pdus(4)
    assert ask(s, commit).error == Error.COMMIT_FAILED
    test, _, _, _ = set_pdus(5, VarBind(oid(2, 1, 1), p.Integer(9)))
    ask(s, test)
    s.connection_lost()  # the master never sends CleanupSet now: the view still gets it
    assert s.view.calls[-1] == ("cleanup", 5, ())  # type: ignore[attr-defined]


# --- notifications, ping, errors -------------------------------------------------------------


def test_notify_and_ping() -> None:
    s = ready_session()
    trap = oid(0, 1)
    [n] = s.notify(trap, [VarBind(oid(1, 0), p.OctetString(b"VI_1"))], now=1.0, uptime=500)
    assert isinstance(n, p.Notify) and n.session_id == SID
    assert n.varbinds == (
        VarBind((1, 3, 6, 1, 2, 1, 1, 3, 0), p.TimeTicks(500)),
        VarBind(SNMP_TRAP_OID_0, p.ObjectIdentifier(trap)),
        VarBind(oid(1, 0), p.OctetString(b"VI_1")),
    )
    [ping] = s.ping(2.0)
    feed(s, p.Response(session_id=SID, packet_id=n.packet_id))
    assert [e.kind for e in s.drain_events()] == ["notify"]  # type: ignore[union-attr]
    assert s.next_deadline() == 2.0 + s.response_timeout
    # An unanswered Ping means a stuck master: close and let the shell reconnect.
    [close] = s.handle_timer(10.0)
    assert close == p.Close(session_id=SID, reason=p.CloseReason.TIMEOUTS)
    assert s.state is State.CLOSED
    assert s.notify(trap) == [] and s.ping(11.0) == []
    assert ping.packet_id not in (n.packet_id, 0)


def test_malformed_request_answered_with_parse_error_and_session_survives() -> None:
    s = ready_session()
    good = encode(get_next(p.SearchRange(ROOT), tx=7))
    bad = bytearray(good)
    bad[20] = 200  # n_subid 200 > 128
    [resp] = s.receive_data(bytes(bad) + good, 0.0)[:1]
    assert isinstance(resp, p.Response)
    assert (resp.error, resp.packet_id) == (Error.PARSE_ERROR, 107)
    assert s.state is State.READY
    assert ParseFailed("bad_oid", "200 sub-identifiers") in s.drain_events()


def test_lost_framing_closes_the_session() -> None:
    s = ready_session()
    out = s.receive_data(bytes([9, 5, 0x10, 0]) + bytes(16), 0.0)
    assert out == [p.Close(session_id=SID, reason=p.CloseReason.PARSE_ERROR)]
    assert s.state is State.CLOSED


def test_unknown_type_skipped_and_stray_pdus_counted() -> None:
    s = ready_session()
    unknown = bytes([1, 77, 0x10, 0]) + bytes(12) + (4).to_bytes(4, "big") + bytes(4)
    out = s.receive_data(unknown + encode(get_next(p.SearchRange(ROOT))), 0.0)
    assert [type(x) for x in out] == [p.Response]
    feed(s, p.Response(session_id=SID, packet_id=999))  # nobody asked
    resp = ask(s, p.Get(session_id=SID + 1, packet_id=5, ranges=(p.SearchRange(ROOT),)))
    assert resp.error == Error.NOT_OPEN
    resp = ask(s, p.Get(session_id=SID, packet_id=6, context=b"other"))
    assert resp.error == Error.UNSUPPORTED_CONTEXT
    feed(s, p.Register(subtree=ROOT, session_id=SID))  # not a master's PDU
    kinds = [type(e) for e in s.drain_events()]
    assert kinds == [ParseFailed, ProtocolViolation, ProtocolViolation, ProtocolViolation]


# --- the stream in pieces --------------------------------------------------------------------


def _requests() -> list[p.Pdu]:
    return [
        get_next(p.SearchRange(ROOT), tx=1),
        p.Get(session_id=SID, transaction_id=2, packet_id=2, ranges=(p.SearchRange(oid(3, 0)),)),
        p.GetBulk(
            session_id=SID,
            transaction_id=3,
            packet_id=3,
            max_repetitions=3,
            ranges=(p.SearchRange(ROOT),),
        ),
        p.Close(session_id=SID, reason=p.CloseReason.SHUTDOWN),
    ]


def test_byte_by_byte_equals_all_at_once() -> None:
    wire = b"".join(encode(x) for x in _requests())
    whole = ready_session().receive_data(wire, 0.0)
    s = ready_session()
    pieces = [out for i in range(len(wire)) for out in s.receive_data(wire[i : i + 1], 0.0)]
    assert pieces == whole
    assert [x.packet_id for x in whole] == [101, 2, 3]
    assert s.state is State.CLOSED


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 200), max_size=12))
def test_any_split_gives_the_same_answers(cuts: list[int]) -> None:
    wire = b"".join(encode(x) for x in _requests())
    expected = ready_session().receive_data(wire, 0.0)
    s = ready_session()
    out: list[p.Pdu] = []
    pos = 0
    for n in [*cuts, len(wire)]:
        out += s.receive_data(wire[pos : pos + n], 0.0)
        pos += n
    assert out == expected


# --- the plain-read fast path (answer_plain_read) ---------------------------------------------

OIDS_NEAR = st.builds(
    lambda tail: oid(*tail), st.lists(st.integers(0, 4), min_size=0, max_size=4)
) | st.sampled_from([(), (1, 3), (1, 3, 6, 1, 3, 10000), (1, 3, 6, 1, 4, 1, 2**32 - 1)])


@settings(max_examples=400)
@given(
    kind=st.sampled_from([p.GetNext, p.Get]),
    ranges=st.lists(st.tuples(OIDS_NEAR, OIDS_NEAR, st.booleans()), max_size=4),
    session_id=st.sampled_from([SID, SID + 1]),
    tx=st.integers(0, 2**32 - 1),
    packet=st.integers(0, 2**32 - 1),
    context=st.sampled_from([None, None, b"other"]),
)
def test_plain_reads_answer_exactly_as_the_general_path(
    kind: type, ranges: list[tuple[tuple[int, ...], tuple[int, ...], bool]], session_id: int,
    tx: int, packet: int, context: bytes | None,
) -> None:  # fmt: skip
    """Whatever the fast path answers is byte for byte what receive_data answers; it leaves
    everything else (another session, a context) to receive_data."""
    req = kind(
        ranges=tuple(p.SearchRange(a, b, inc) for a, b, inc in ranges),
        session_id=session_id, transaction_id=tx, packet_id=packet, context=context,
    )  # fmt: skip
    wire = encode(req)
    fast, general = ready_session(), ready_session()
    answer = fast.answer_plain_read(wire)
    expected = b"".join(encode(x) for x in general.receive_data(wire, 0.0))
    if session_id != SID or context is not None:
        assert answer is None
    elif answer is not None:
        assert answer == expected
        assert not fast.has_events()
    else:  # only a view that broke its contract goes the long way
        assert any(isinstance(e, ViewFailed) for e in general.drain_events())


def test_plain_read_leaves_the_unusual_to_the_general_path() -> None:
    s = ready_session()
    req = get_next(p.SearchRange(oid(1)))
    wire = encode(req)
    assert s.answer_plain_read(wire) is not None
    assert s.answer_plain_read(encode(req, network_order=False)) is None
    assert s.answer_plain_read(wire + wire) is None  # two PDUs in one read
    assert s.answer_plain_read(wire[:-4]) is None
    assert s.answer_plain_read(encode(p.GetBulk(session_id=SID, max_repetitions=3))) is None
    # a view that breaks its contract: the general path answers and says so
    broken = DictView({oid(1, 0): p.NO_SUCH_INSTANCE})
    b = ready_session(broken)
    assert b.answer_plain_read(wire) is None
    assert ask(b, req).varbinds == (VarBind(oid(1), p.END_OF_MIB_VIEW),)
    assert any(isinstance(e, ViewFailed) for e in b.drain_events())
