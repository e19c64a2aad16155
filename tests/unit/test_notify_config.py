"""The global keywords notifications read (FIFOs, SMTP), and the pure pieces of mail/alerts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hakeeper.config.convert import to_yaml
from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.config.model import GlobalDefs, Notify
from hakeeper.config.yaml_reader import parse_yaml_text
from hakeeper.notify.mail import MailSettings, alert_text, format_message, parse_server
from hakeeper.notify.notifier import smtp_alert_enabled

CONF = """
global_defs {
  router_id lb1
  notification_email {
    ops@example.com
  }
  smtp_server fd00:198:18::25 2525
  smtp_helo_name mx.example.com
  smtp_alert
  smtp_alert_vrrp false
  notify_fifo /run/hakeeper.fifo
  notify_fifo_script "/usr/local/bin/fifo reader"
  vrrp_notify_fifo /run/hakeeper_vrrp.fifo
  vrrp_notify_fifo_script /usr/local/bin/vrrp_reader
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  smtp_alert
}
"""


def test_global_notify_keywords_parse_and_round_trip() -> None:
    config = parse_keepalived_text(CONF)
    g = config.global_defs
    assert g.smtp_server == "[fd00:198:18::25]:2525"
    assert g.smtp_helo_name == "mx.example.com"
    assert (g.smtp_alert, g.smtp_alert_vrrp) == (True, False)
    assert g.notify_fifo == "/run/hakeeper.fifo"
    assert g.notify_fifo_script == ("/usr/local/bin/fifo", "reader")
    assert g.vrrp_notify_fifo == "/run/hakeeper_vrrp.fifo"
    assert g.vrrp_notify_fifo_script == ("/usr/local/bin/vrrp_reader",)
    assert not config.warnings
    assert parse_yaml_text(to_yaml(config)) == config


def test_defaults_are_keepalived_unset() -> None:
    g = parse_keepalived_text("global_defs {\n router_id x\n}\n").global_defs
    assert g.smtp_alert is None and g.smtp_alert_vrrp is None
    assert g.notify_fifo is None and g.vrrp_notify_fifo is None and g.smtp_helo_name is None


def test_fifo_owner_is_warned_not_silently_dropped() -> None:
    config = parse_keepalived_text("global_defs {\n notify_fifo /run/f keepalived_script\n}\n")
    assert config.global_defs.notify_fifo == "/run/f"
    assert any("owner 'keepalived_script' not supported" in str(w) for w in config.warnings)


@pytest.mark.parametrize(
    ("own", "vrrp", "glob", "expected"),
    [
        (None, None, None, False),
        (None, None, True, True),
        (None, False, True, False),  # smtp_alert_vrrp beats smtp_alert
        (True, False, False, True),  # the object's own setting beats both
        (False, True, True, False),
    ],
)
def test_smtp_alert_precedence(
    own: bool | None, vrrp: bool | None, glob: bool | None, expected: bool
) -> None:
    g = GlobalDefs(smtp_alert=glob, smtp_alert_vrrp=vrrp)
    assert smtp_alert_enabled(Notify(smtp_alert=own), g) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail.example.com", ("mail.example.com", 25)),
        ("mail.example.com:2525", ("mail.example.com", 2525)),
        ("198.18.0.25", ("198.18.0.25", 25)),
        ("198.18.0.25:587", ("198.18.0.25", 587)),
        ("fd00:198:18::25", ("fd00:198:18::25", 25)),
        ("[fd00:198:18::25]:2525", ("fd00:198:18::25", 2525)),
        ("[fd00:198:18::25]", ("fd00:198:18::25", 25)),
    ],
)
def test_parse_server(text: str, expected: tuple[str, int]) -> None:
    assert parse_server(text) == expected


def test_alert_texts_are_keepalived_words() -> None:
    assert alert_text("lb1", "INSTANCE", "VI_1", "STOP") == (
        "[lb1] VRRP Instance VI_1 - Stopping",
        "=> VRRP Instance stopping <=",
    )
    assert alert_text("lb1", "GROUP", "VG_1", "MASTER") == (
        "[lb1] VRRP Group VG_1 - Entering MASTER state",
        "=> All VRRP group instances are now in MASTER state <=",
    )
    assert alert_text("lb1", "INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI") is None


def test_message_layout() -> None:
    settings = MailSettings(
        server=("127.0.0.1", 25),
        recipients=("a@example.com", "B <b@example.com>"),
        mail_from="hk@example.com",
        helo="lb1",
        timeout=1.0,
        router_id="lb1",
    )
    when = datetime(2024, 3, 1, 9, 44, 8, tzinfo=timezone(timedelta(hours=1)))
    data = format_message(settings, "[lb1] subject", "line\n.dot", when).decode()
    assert data == (
        "Date: Fri, 01 Mar 2024 09:44:08 +0100\r\n"
        "From: hk@example.com\r\n"
        "Subject: [lb1] subject\r\n"
        "X-Mailer: hakeeper\r\n"
        "To: a@example.com,\r\n B <b@example.com>\r\n"
        "\r\n"
        "line\r\n"
        "..dot\r\n"  # dot-stuffed
        "\r\n"  # keepalived's body_cmd leaves a blank line before the end
        ".\r\n"
    )


def test_mail_settings_defaults() -> None:
    s = MailSettings.from_global_defs(GlobalDefs(smtp_connect_timeout=0), "lb1")
    assert not s.enabled  # no server, no recipients
    assert s.timeout == 1.0  # keepalived: 0 means 1 second
    assert "@" in s.mail_from  # user@hostname
