"""SMTP alerts for VRRP transitions, spoken over asyncio streams so nothing ever waits on them.

Facts from keepalived:
- core/smtp.c smtp_alert(): subject `[router_id] VRRP Instance VI_1 - Entering MASTER state`
  (`VRRP Group VG_1 - ...` for a sync group); nothing is sent without `notification_email`
  and `smtp_server` (default port 25).
- core/smtp.c dialogue: wait 220, `HELO <smtp_helo_name>`, `MAIL FROM:<from>`, one
  `RCPT TO:<addr>` per recipient, `DATA`, headers Date/From/Subject/X-Mailer/To, a blank line,
  the body, `.`, `QUIT`; every step (connect and each reply) is bounded by
  `smtp_connect_timeout`. An address written `Name <a@b>` is sent as `<a@b>`.
- vrrp/vrrp_notify.c vrrp_smtp_notifier / vrrp_sync_smtp_notifier: the subject's tail and the
  body line per state, and one mail per state change (`last_email_state`), none for
  MASTER_RX_LOWER_PRI.
- core/global_data.c: `notification_email_from` defaults to `<user>@<hostname>`,
  `smtp_helo_name` to the host name.

hakeeper's X-Mailer is `hakeeper`, and body lines starting with '.' are dot-stuffed (RFC 5321
section 4.5.2; keepalived's fixed bodies never need it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import pwd
import socket
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from hakeeper.config.model import GlobalDefs

SMTP_PORT = 25

# state -> (subject tail, body) as vrrp_notify.c words them
INSTANCE_TEXT = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
}
GROUP_TEXT = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}


class SmtpError(Exception):
    """The server answered something unexpected; the message names the step and the reply."""


def parse_server(text: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port`, `[v6]` or a bare IPv6 address -> (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else SMTP_PORT
    with contextlib.suppress(ValueError):
        ipaddress.IPv6Address(text)
        return text, SMTP_PORT
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return text, SMTP_PORT


def _envelope_addr(addr: str) -> str:
    """keepalived's mail_cmd/rcpt_cmd: `Name <a@b>` -> `<a@b>`, `a@b` -> `<a@b>`."""
    if addr.endswith(">") and "<" in addr:
        return addr[addr.rindex("<") :]
    return f"<{addr}>"


def _default_from() -> str:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class MailSettings:
    """Everything one alert needs, taken from global_defs once per (re)configuration."""

    server: tuple[str, int] | None
    recipients: tuple[str, ...]
    mail_from: str
    helo: str
    timeout: float
    router_id: str

    @classmethod
    def from_global_defs(cls, g: GlobalDefs, router_id: str) -> MailSettings:
        return cls(
            server=parse_server(g.smtp_server) if g.smtp_server else None,
            recipients=g.notification_email,
            mail_from=g.notification_email_from or _default_from(),
            helo=g.smtp_helo_name or socket.gethostname(),
            # keepalived turns 0 into 1 second ("must be greater than 0")
            timeout=g.smtp_connect_timeout or 1.0,
            router_id=router_id,
        )

    @property
    def enabled(self) -> bool:
        return self.server is not None and bool(self.recipients)


def alert_text(router_id: str, kind: str, name: str, state: str) -> tuple[str, str] | None:
    """(subject, body) of the alert for a transition, or None if that state sends none."""
    table = INSTANCE_TEXT if kind == "INSTANCE" else GROUP_TEXT
    if state not in table:
        return None
    tail, body = table[state]
    what = "Instance" if kind == "INSTANCE" else "Group"
    return f"[{router_id}] VRRP {what} {name} - {tail}", body


def format_message(settings: MailSettings, subject: str, body: str, now: datetime) -> bytes:
    """The DATA payload, terminated by the lone dot, as keepalived's body_cmd lays it out."""
    to = ",\r\n ".join(settings.recipients)
    lines = [
        f"Date: {format_datetime(now)}",
        f"From: {settings.mail_from}",
        f"Subject: {subject}",
        "X-Mailer: hakeeper",
        f"To: {to}",
        "",
        *("." + line if line.startswith(".") else line for line in body.splitlines()),
        "",
        ".",
        "",
    ]
    return "\r\n".join(lines).encode()


async def _reply(reader: asyncio.StreamReader, timeout: float) -> tuple[int, str]:
    """One SMTP reply, multi-line ones included (`250-...` continues, `250 ...` ends)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise SmtpError("server closed the connection")
        text = line.decode(errors="replace").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise SmtpError(f"not an SMTP reply: {text!r}")
        if text[3:4] != "-":
            return int(text[:3]), text


async def send_mail(settings: MailSettings, subject: str, body: str) -> None:
    """One mail to every recipient. Raises SmtpError, OSError or TimeoutError (each step,
    connecting included, is bounded by smtp_connect_timeout)."""
    assert settings.server is not None
    host, port = settings.server
    t = settings.timeout
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), t)
    try:

        async def step(name: str, command: bytes | None, expect: int) -> None:
            if command is not None:
                writer.write(command)
                await asyncio.wait_for(writer.drain(), t)
            code, text = await _reply(reader, t)
            if code != expect:
                raise SmtpError(f"{name}: expected {expect}, got {text!r}")

        await step("greeting", None, 220)
        await step("HELO", f"HELO {settings.helo}\r\n".encode(), 250)
        await step("MAIL", f"MAIL FROM:{_envelope_addr(settings.mail_from)}\r\n".encode(), 250)
        for rcpt in settings.recipients:
            await step("RCPT", f"RCPT TO:{_envelope_addr(rcpt)}\r\n".encode(), 250)
        await step("DATA", b"DATA\r\n", 354)
        message = format_message(settings, subject, body, datetime.now().astimezone())
        await step("message", message, 250)
        with contextlib.suppress(SmtpError, OSError, TimeoutError):
            await step("QUIT", b"QUIT\r\n", 221)  # the mail is accepted: QUIT is a courtesy
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), t)


__all__ = [
    "GROUP_TEXT",
    "INSTANCE_TEXT",
    "SMTP_PORT",
    "MailSettings",
    "SmtpError",
    "alert_text",
    "format_message",
    "parse_server",
    "send_mail",
]
