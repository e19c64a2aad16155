"""Fixtures for lab tests: a fresh Lab per test, torn down whatever happens.

Lab tests never skip. Without root or `ip netns` they fail and say why: in CI they run as
root, and a suite that silently skipped its real-network tests would report green for
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.dbusbus import PrivateBus
from tests.lab.lab import LIVE_NAMESPACES, NS_PREFIX, Lab, _run, ip_netns_list, lab_unavailable


@pytest.fixture(scope="session")
def lab_session() -> Iterator[None]:
    """Fails the run if any namespace this test process made is still there at the end."""
    yield
    left = sorted({ns for ns in ip_netns_list() if ns.startswith(NS_PREFIX)} | LIVE_NAMESPACES)
    for ns in left:
        _run(["ip", "netns", "del", ns], check=False)
    if left:
        pytest.fail(f"lab namespaces left behind (now deleted): {', '.join(left)}")


@pytest.fixture
def lab(lab_session: None) -> Iterator[Lab]:
    why = lab_unavailable()
    if why is not None:
        pytest.fail(f"lab test cannot run: {why}", pytrace=False)
    with Lab() as the_lab:
        yield the_lab


@pytest.fixture
def bus() -> Iterator[PrivateBus]:
    """A private system-like dbus-daemon with the project's policy; ended by PID."""
    with PrivateBus() as the_bus:
        yield the_bus
