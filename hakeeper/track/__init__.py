"""Trackers (vrrp_script, track_interface, track_file, track_process) and the effective
priority they give each VRRP instance; `Tracking` is the entry point for the daemon."""

from __future__ import annotations

from hakeeper.track.tracking import TrackerView, Tracking

__all__ = ["TrackerView", "Tracking"]
