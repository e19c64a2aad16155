"""JSON on the checker worker's pipes: one message per line, targets down, statuses up.

Targets travel as their dataclass fields (a field at its default is left out): addresses as
text, bytes as hex, tuples as lists. Decoding follows the dataclasses' type hints, so a field
added to Checker or CheckTarget travels without a change here. A check's status travels as a
flat row `[vs, rs, index, up, weight, checks, failures, detail, duration, last_check, restarts,
consecutive_failures]`: the once-a-second snapshot of every status is the one regular message,
and rows keep it small and quick to parse.

Messages (each a JSON object on one line, `"t"` names it):
  parent → worker  {"t": "targets", "targets": [...], "seed": [[vs, rs, index, up, weight]...]}
  worker → parent  {"t": "hello", "pid": N}   {"t": "hb"}   {"t": "change", "row": [...]}
                   {"t": "statuses", "rows": [[...]...], "counters": {...}}
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import types
import typing
from typing import Any, Union

from hakeeper.check.sched import CheckStatus
from hakeeper.check.target import CheckKey, CheckTarget

_IP_TYPES = frozenset({ipaddress.IPv4Address, ipaddress.IPv6Address})
_NONE = type(None)
_STATUS_FIELDS = tuple(f.name for f in dataclasses.fields(CheckStatus))


class WireError(ValueError):
    """A line or value the other side should never have sent (the message says what)."""


# -- lines ------------------------------------------------------------------------------------


def dumps(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise WireError(f"not JSON: {e}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise WireError("not a message object")
    return msg


# -- targets ----------------------------------------------------------------------------------


def encode_target(target: CheckTarget) -> dict[str, Any]:
    return _encode(target)


def decode_target(data: Any) -> CheckTarget:
    target = _decode(CheckTarget, data, "target")
    assert isinstance(target, CheckTarget)
    return target


def targets_message(
    targets: typing.Iterable[CheckTarget | dict[str, Any]],
    seed: dict[CheckKey, tuple[bool, int | None]],
) -> bytes:
    """The message for a target set; targets may come already encoded (encode_target)."""
    return dumps(
        {
            "t": "targets",
            "targets": [t if isinstance(t, dict) else encode_target(t) for t in targets],
            "seed": [[*key, up, weight] for key, (up, weight) in seed.items()],
        }
    )


def decode_targets_message(
    msg: dict[str, Any],
) -> tuple[list[CheckTarget], dict[CheckKey, tuple[bool, int | None]], list[str]]:
    """The targets, the seed, and one error per target left out (the others still run)."""
    raw = msg.get("targets")
    if not isinstance(raw, list):
        raise WireError("targets: not a list")
    targets, errors = [], []
    for i, data in enumerate(raw):
        try:
            targets.append(decode_target(data))
        except WireError as e:
            errors.append(f"target #{i} left out: {e}")
    seed: dict[CheckKey, tuple[bool, int | None]] = {}
    rows = msg.get("seed") or []
    if not isinstance(rows, list):
        errors.append("seed: not a list")
        rows = []
    for row in rows:
        try:
            if not (isinstance(row, list) and len(row) == 5):
                raise WireError(f"seed: bad row {row!r}")
            up, weight = row[3], row[4]
            if type(up) is not bool or not (weight is None or type(weight) is int):
                raise WireError(f"seed: bad row {row!r}")
            seed[_key(row)] = (up, weight)
        except WireError as e:
            errors.append(str(e))
    return targets, seed, errors


# -- statuses ---------------------------------------------------------------------------------


def status_row(key: CheckKey, status: CheckStatus) -> list[Any]:
    return [*key, *(getattr(status, f) for f in _STATUS_FIELDS)]


def decode_status_row(row: Any) -> tuple[CheckKey, CheckStatus]:
    if not isinstance(row, list) or len(row) != 3 + len(_STATUS_FIELDS):
        raise WireError(f"status: bad row {row!r}")
    key = _key(row)
    up, weight, checks, failures, detail, duration, last_check, restarts, consec = row[3:]
    if not (
        type(up) is bool
        and (weight is None or type(weight) is int)
        and type(checks) is int
        and type(failures) is int
        and isinstance(detail, str)
        and (duration is None or type(duration) in (int, float))
        and (last_check is None or type(last_check) in (int, float))
        and type(restarts) is int
        and type(consec) is int
    ):
        raise WireError(f"status: bad row {row!r}")
    return key, CheckStatus(up, weight, checks, failures, detail, duration, last_check,
                            restarts, consec)  # fmt: skip


def _key(row: list[Any]) -> CheckKey:
    vs, rs, index = row[0], row[1], row[2]
    if not (isinstance(vs, str) and isinstance(rs, str) and type(index) is int):
        raise WireError(f"bad check key {row[:3]!r}")
    return (vs, rs, index)


# -- type-directed (de)serialising of frozen dataclasses --------------------------------------


def _wire_fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    # compare=False fields (origin) are bookkeeping of the config reader, not part of a check
    return tuple(f for f in dataclasses.fields(cls) if f.compare)


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if type(value) in _IP_TYPES:
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in _wire_fields(type(value)):
            v = getattr(value, f.name)
            if f.default is not dataclasses.MISSING and v == f.default:
                continue
            out[f.name] = _encode(v)
        return out
    raise WireError(f"cannot encode {type(value).__name__}")


_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hints_cache.get(cls)
    if hints is None:
        hints = _hints_cache[cls] = typing.get_type_hints(cls)
    return hints


def _decode(tp: Any, v: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if v is None:
            if _NONE in args:
                return None
            raise WireError(f"{where}: null is not allowed")
        rest = [a for a in args if a is not _NONE]
        if set(rest) <= _IP_TYPES:
            return _decode_ip(v, where)
        if len(rest) == 1:
            return _decode(rest[0], v, where)
        raise WireError(f"{where}: cannot decode {tp}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(v, list):
            raise WireError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], x, f"{where}[{i}]") for i, x in enumerate(v))
        if len(args) != len(v):
            raise WireError(f"{where}: expected {len(args)} items")
        return tuple(
            _decode(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v, strict=True))
        )
    if tp in _IP_TYPES:
        return _decode_ip(v, where)
    if tp is bool:
        if type(v) is not bool:
            raise WireError(f"{where}: expected true/false")
        return v
    if tp is int:
        if type(v) is not int:
            raise WireError(f"{where}: expected an integer")
        return v
    if tp is float:
        if type(v) not in (int, float):
            raise WireError(f"{where}: expected a number")
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise WireError(f"{where}: expected a string")
        return v
    if tp is bytes:
        try:
            return bytes.fromhex(v)
        except (TypeError, ValueError):
            raise WireError(f"{where}: expected hex bytes") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, v, where)
    raise WireError(f"{where}: cannot decode {tp}")


def _decode_dataclass(cls: type, v: Any, where: str) -> Any:
    if not isinstance(v, dict):
        raise WireError(f"{where}: expected an object")
    hints = _hints(cls)
    kwargs = {}
    for f in _wire_fields(cls):
        if f.name in v:
            kwargs[f.name] = _decode(hints[f.name], v[f.name], f"{where}.{f.name}")
    # unknown names are left out: a worker started from newer code on disk may know more
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise WireError(f"{where}: {e}") from None


def _decode_ip(v: Any, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(v)
    except ValueError:
        raise WireError(f"{where}: {v!r} is not an IP address") from None
