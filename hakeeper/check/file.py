"""FILE_CHECK: the number in a track_file, times the checker's weight (check_file.c,
track_file.c process_update_checker_track_file_status).

keepalived reads the file as a vrrp_track_file (hakeeper.track.files.read_value: strtol of
the first 127 bytes; missing or empty is 0; a value out of range is ignored and the last one
kept). With `weight 0`, a non-zero value is down (`reverse`: zero is down). Otherwise the
real server's weight moves by value * weight (negated with `reverse`), and the one value
that reaches keepalived's fault weight (-2^31 after clamping) is down.
"""

from __future__ import annotations

from hakeeper.check.base import Outcome, clamp_weight
from hakeeper.check.target import CheckTarget
from hakeeper.track.files import read_value

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
FAULT = INT32_MIN  # keepalived's IPVS_WEIGHT_FAULT

# keepalived keeps a file's last good value when a new one is out of range
_last_values: dict[str, int] = {}


def file_outcome(value: int, *, weight: int, reverse: bool, base: int) -> Outcome:
    """Up or down, and the real server's weight, for a file holding `value`; `base` is the
    real server's configured weight, to which keepalived adds the file's share."""
    if weight == 0:
        down = value == 0 if reverse else value != 0
        return Outcome(not down, f"file holds {value}")
    share = max(INT32_MIN, min(INT32_MAX, value * weight * (-1 if reverse else 1)))
    if share == FAULT:
        return Outcome(False, f"file holds {value}: fault weight")
    return Outcome(True, f"file holds {value}: weight {share:+d}", clamp_weight(base + share))


def read_file_value(path: str) -> int:
    value = read_value(path)
    if value is None:
        return _last_values.get(path, 0)
    _last_values[path] = value
    return value


async def check(target: CheckTarget) -> Outcome:
    ck = target.checker
    if not ck.file:
        return Outcome(False, "FILE_CHECK has no file")
    value = read_file_value(ck.file)
    return file_outcome(value, weight=ck.weight, reverse=ck.weight_reverse, base=target.rs_weight)
