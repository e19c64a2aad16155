"""The Notifier: turns instance and group transitions into scripts, FIFO lines and mail.

The VRRP side calls `instance_transition` / `group_transition` from the event loop; each
call numbers the transition, writes the FIFO line(s) at once (non-blocking, so they are in
transition order across all objects), and queues the scripts and the mail of that object.
It never awaits: a hung script or a dead SMTP server cannot delay an advert.

Scripts and mail have separate per-object queues so a slow SMTP server never holds back a
script, and vice versa. Which transitions are reported is the caller's business: keepalived
skips an instance's own notifies when its sync group already is in that state
(vrrp_notify.c send_instance_notifies), and that rule belongs with the sync-group logic.

Notify script timeout: keepalived runs notify scripts with no timeout at all (only
notify_stop at shutdown is killed after one second). With ordered delivery a hung script
would block that object's notifications for ever, so each script is killed after
DEFAULT_SCRIPT_TIMEOUT (30 s): long enough for the usual "restart a service" script, short
enough that one hang delays the next notification by half a minute, not indefinitely.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from hakeeper.config.model import GlobalDefs, Notify, VrrpInstance, VrrpSyncGroup
from hakeeper.notify import mail, scripts
from hakeeper.notify.events import STATES, Kind, Transition
from hakeeper.notify.fifo import NotifyFifo, fifo_line
from hakeeper.notify.queue import DEFAULT_MAX_PENDING, OrderedQueues
from hakeeper.notify.scripts import ScriptPolicy

log = logging.getLogger("hakeeper.notify")

DEFAULT_SCRIPT_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 5.0
LVS_KEYWORDS = {
    ("RS", "UP"): "notify_up",
    ("RS", "DOWN"): "notify_down",
    ("VS", "UP"): "quorum_up",
    ("VS", "DOWN"): "quorum_down",
}


@dataclass(frozen=True)
class _FifoSpec:
    keyword: str
    path: str
    script: tuple[str, ...] | None


def _fifo_specs(g: GlobalDefs) -> list[_FifoSpec]:
    specs = []
    if g.notify_fifo:
        specs.append(_FifoSpec("notify_fifo", g.notify_fifo, g.notify_fifo_script))
    if g.vrrp_notify_fifo:
        if g.vrrp_notify_fifo == g.notify_fifo:
            # keepalived (global_data.c): the same FIFO twice would get every line twice
            log.warning("vrrp_notify_fifo %s is also notify_fifo; vrrp_notify_fifo ignored",
                        g.vrrp_notify_fifo)  # fmt: skip
        else:
            specs.append(
                _FifoSpec("vrrp_notify_fifo", g.vrrp_notify_fifo, g.vrrp_notify_fifo_script)
            )
    return specs


def smtp_alert_enabled(notify: Notify, g: GlobalDefs) -> bool:
    """keepalived (vrrp.c): the object's own smtp_alert, else global smtp_alert_vrrp, else
    global smtp_alert, else off."""
    for value in (notify.smtp_alert, g.smtp_alert_vrrp, g.smtp_alert):
        if value is not None:
            return value
    return False


class Notifier:
    """One per daemon. `start` it in the loop, feed it transitions, `await stop()` at exit."""

    def __init__(
        self,
        global_defs: GlobalDefs,
        router_id: str,
        *,
        script_timeout: float = DEFAULT_SCRIPT_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.script_timeout = script_timeout
        self._clock = clock
        self._seq: dict[tuple[str, str], int] = {}
        self._last_mailed: dict[tuple[str, str], str] = {}
        self._scripts = OrderedQueues("notify scripts", max_pending=max_pending)
        self._mail = OrderedQueues("notify mail", max_pending=max_pending)
        self._fifos: dict[_FifoSpec, NotifyFifo] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # FIFO closes started by reconfigure
        self._loop: asyncio.AbstractEventLoop | None = None
        self.mails_sent = 0
        self.mails_failed = 0
        self._configure(global_defs, router_id)

    def _configure(self, g: GlobalDefs, router_id: str | None) -> None:
        self.global_defs = g
        # keepalived: router_id defaults to the host name
        self.router_id = router_id or g.router_id or socket.gethostname()
        self.policy = ScriptPolicy.from_global_defs(g, self.script_timeout)
        if self.policy.user_error is not None:
            log.error("notify scripts will not run: %s", self.policy.user_error)
        self.mail = mail.MailSettings.from_global_defs(g, self.router_id)

    # -- life cycle

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._open_fifos()
        self._scripts.start(self._loop)
        self._mail.start(self._loop)

    async def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Let queued notifications finish for up to `timeout` (the STOP notifies the daemon
        sends at exit among them), then kill what is left and close the FIFOs."""
        deadline = time.monotonic() + timeout
        done = await self._scripts.drain(timeout)
        done = await self._mail.drain(max(0.0, deadline - time.monotonic())) and done
        if not done:
            abandoned = await self._scripts.close() + await self._mail.close()
            log.warning("notify: %d notification(s) not delivered within %gs at stop; "
                        "scripts killed", abandoned, timeout)  # fmt: skip
        for fifo in self._fifos.values():
            await fifo.close()
        self._fifos.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def reconfigure(self, global_defs: GlobalDefs, router_id: str | None = None) -> None:
        """Take a reloaded global_defs. Sequence numbers and queued notifications carry on;
        a FIFO whose path and script are unchanged stays open with its script running."""
        self._configure(global_defs, router_id)
        if self._loop is not None:
            self._open_fifos()

    def _open_fifos(self) -> None:
        assert self._loop is not None
        wanted = _fifo_specs(self.global_defs)
        for spec in list(self._fifos):
            if spec not in wanted:
                old = self._fifos.pop(spec)
                old.close_fifo()  # now: the same path may be reopened just below
                task = self._loop.create_task(old.close())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for spec in wanted:
            if spec in self._fifos:
                self._fifos[spec].policy = self.policy
                continue
            fifo = NotifyFifo(spec.keyword, spec.path, spec.script, self.policy)
            if fifo.open(self._loop):
                self._fifos[spec] = fifo

    # -- transitions

    def instance_transition(self, inst: VrrpInstance, state: str, priority: int) -> Transition:
        """Report that `inst` entered `state` (or MASTER_RX_LOWER_PRI) at `priority`."""
        return self._transition("INSTANCE", inst.name, state, priority, inst.notify)

    def group_transition(self, group: VrrpSyncGroup, state: str) -> Transition:
        """Report that sync group `group` entered `state`; its priority is 0, as keepalived."""
        return self._transition("GROUP", group.name, state, 0, group.notify)

    def _transition(
        self, kind: Kind, name: str, state: str, priority: int, notify: Notify
    ) -> Transition:
        if state not in STATES:
            raise ValueError(f"{name}: unknown notify state {state!r}")
        key = (kind, name)
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        event = Transition(kind, name, state, priority, seq, self._clock())
        line = fifo_line(event)
        for fifo in self._fifos.values():
            fifo.write(line)
        todo = scripts.scripts_for(notify, event)
        if todo:
            policy = self.policy

            async def run_scripts() -> None:
                await scripts.deliver(event, notify, policy)

            self._scripts.put(key, run_scripts, f"{state} seq {seq}")
        self._queue_mail(event, notify)
        return event

    def lvs_transition(
        self, kind: Kind, name: str, state: str, line: str, argv: tuple[str, ...] | None
    ) -> None:
        """A real server (kind "RS") or virtual server quorum ("VS") went UP or DOWN.

        keepalived writes `RS <rs> <vs> UP` / `VS <vs> DOWN` to notify_fifo (not to
        vrrp_notify_fifo) and runs notify_up/notify_down or quorum_up/quorum_down as given,
        with no arguments added; scripts of one object run in order, as for instances."""
        for fifo in self._fifos.values():
            if fifo.keyword == "notify_fifo":
                fifo.write(line)
        if not argv:
            return
        key = (kind, name)
        seq = self._seq.get(key, 0) + 1
        self._seq[key] = seq
        event = Transition(kind, name, state, 0, seq, self._clock())
        keyword = LVS_KEYWORDS[(kind, state)]
        policy = self.policy

        async def run() -> None:
            await scripts.run_notify_script(keyword, argv, event, policy)

        self._scripts.put(key, run, f"{state} seq {seq}")

    def _queue_mail(self, event: Transition, notify: Notify) -> None:
        if not smtp_alert_enabled(notify, self.global_defs) or not self.mail.enabled:
            return
        text = mail.alert_text(self.router_id, event.kind, event.name, event.state)
        # keepalived mails a state once (last_email_state), not every repeated entry
        if text is None or self._last_mailed.get(event.key) == event.state:
            return
        self._last_mailed[event.key] = event.state
        settings = self.mail
        subject, body = text

        async def send() -> None:
            try:
                await mail.send_mail(settings, subject, body)
            except (OSError, TimeoutError, mail.SmtpError) as e:
                self.mails_failed += 1
                host, port = settings.server or ("?", 0)
                reason = str(e) or type(e).__name__
                log.error("%s: SMTP alert '%s' to %s:%d failed: %s",
                          event.label, subject, host, port, reason)  # fmt: skip
            else:
                self.mails_sent += 1
                log.info("%s: SMTP alert '%s' sent", event.label, subject)

        self._mail.put(event.key, send, f"mail {event.state} seq {event.seq}")

    # -- reading (metrics, D-Bus, tests)

    def queue_depth(self, kind: str | None = None, name: str | None = None) -> int:
        """Notifications waiting or running: in total, or for one object (kind, name)."""
        if kind is None:
            return self._scripts.total() + self._mail.total()
        key = (kind, name)
        return self._scripts.depth(key) + self._mail.depth(key)

    def last_seq(self, kind: str, name: str) -> int:
        return self._seq.get((kind, name), 0)

    @property
    def dropped(self) -> int:
        """Notifications dropped from full queues plus FIFO lines dropped (no reader)."""
        fifo = sum(f.dropped for f in self._fifos.values())
        return self._scripts.dropped + self._mail.dropped + fifo


__all__ = ["DEFAULT_SCRIPT_TIMEOUT", "DEFAULT_STOP_TIMEOUT", "Notifier", "smtp_alert_enabled"]
