"""Log lines: `<N>LEVEL message` for journald under systemd, timestamped elsewhere."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

from hakeeper.logfmt import JournalFormatter, make_formatter, under_journal

HAKEEPER = [sys.executable, "-m", "hakeeper.cli"]
STAMPED = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ERROR ")


def record(level: int, msg: str, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            info = sys.exc_info()
    return logging.LogRecord("hakeeper", level, __file__, 1, msg, (), info)


def dev_ino(f) -> str:
    st = os.fstat(f.fileno())
    return f"{st.st_dev}:{st.st_ino}"


def test_journal_stream_must_be_this_stream(tmp_path):
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        assert under_journal({"JOURNAL_STREAM": dev_ino(a)}, a)
        # inherited by a child whose stderr went elsewhere: not the journal
        assert not under_journal({"JOURNAL_STREAM": dev_ino(a)}, b)
        assert not under_journal({"JOURNAL_STREAM": "garbage"}, a)
        assert under_journal({"INVOCATION_ID": "0123abcd"}, b)
        assert not under_journal({}, a)


def test_journal_lines_carry_the_syslog_priority_and_no_stamp():
    f = JournalFormatter()
    assert f.format(record(logging.INFO, "VI_1: BACKUP -> MASTER (x)")) == (
        "<6>INFO VI_1: BACKUP -> MASTER (x)"
    )
    assert f.format(record(logging.WARNING, "w")) == "<4>WARNING w"
    assert f.format(record(logging.ERROR, "e")) == "<3>ERROR e"
    assert f.format(record(logging.DEBUG, "d")) == "<7>DEBUG d"
    assert f.format(record(logging.CRITICAL, "c")) == "<2>CRITICAL c"
    assert f.format(record(25, "between")).startswith("<4>")
    # a traceback stays at the record's level on every line it spans
    lines = f.format(record(logging.ERROR, "fatal", exc=True)).splitlines()
    assert len(lines) > 2 and all(line.startswith("<3>") for line in lines)


def test_terminal_lines_are_stamped(tmp_path):
    with open(tmp_path / "log", "w") as out:
        text = make_formatter({}, out).format(record(logging.ERROR, "e"))
    assert STAMPED.match(text), text


def _run_bad_config(tmp_path, journal: bool, **env: str) -> list[str]:
    """The real command with a broken config: its errors are what a user sees first."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 300\n}\n")
    log = tmp_path / "stderr"
    with open(log, "w") as err:
        if journal:
            env["JOURNAL_STREAM"] = dev_ino(err)
        base = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "INVOCATION_ID")}
        r = subprocess.run(
            [*HAKEEPER, "-f", str(conf), "-p", str(tmp_path / "pid"), "--dbus-address", "none"],
            stderr=err, stdout=subprocess.DEVNULL, env={**base, **env}, timeout=30,
        )  # fmt: skip
    assert r.returncode == 1
    return log.read_text().splitlines()


def test_daemon_under_systemd_logs_priority_prefixed_lines(tmp_path):
    lines = _run_bad_config(tmp_path, journal=True)
    assert lines and all(line.startswith("<3>ERROR ") for line in lines), lines
    assert any(f"{tmp_path}/keepalived.conf:3:" in line for line in lines), lines


def test_daemon_in_a_terminal_logs_stamped_lines(tmp_path):
    lines = _run_bad_config(tmp_path, journal=False)
    assert lines and all(STAMPED.match(line) for line in lines), lines
