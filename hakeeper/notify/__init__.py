"""Notifications of VRRP instance and sync-group transitions: scripts, FIFOs and mail.

`Notifier` is the one entry point the daemon uses; the modules beside it each own one
channel. Unlike keepalived, the notifications of one instance or group are delivered in
order and never overlap, and each carries a per-object sequence number.
"""

from __future__ import annotations

from hakeeper.notify.events import STATES, Transition
from hakeeper.notify.notifier import DEFAULT_SCRIPT_TIMEOUT, Notifier

__all__ = ["DEFAULT_SCRIPT_TIMEOUT", "STATES", "Notifier", "Transition"]
