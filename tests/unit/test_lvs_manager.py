"""What the nftables backend cannot serve is refused up front, naming the config line."""

from __future__ import annotations

import pytest

from hakeeper.config.keepalived import parse_keepalived_text
from hakeeper.lvs.manager import LvsError, LvsManager
from hakeeper.lvs.nft import NftBackend


def conf(sched: str, method: str = "NAT", sorry_method: str | None = None) -> str:
    sorry = ""
    if sorry_method is not None:
        sorry = f"sorry_server 198.18.2.1 80\n    sorry_server_lvs_method {sorry_method}\n"
    return f"""
virtual_server 198.18.0.100 80 {{
    protocol TCP
    lvs_sched {sched}
    lvs_method {method}
    {sorry}
    real_server 198.18.1.10 80 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""


@pytest.mark.parametrize("sched", ["rr", "wrr", "sh", "mh", "dh", "fo"])
def test_what_nftables_can_do_passes(sched: str) -> None:
    LvsManager.check_supported(parse_keepalived_text(conf(sched)), NftBackend())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (conf("wlc"), "wlc"),
        (conf("lc"), "lc"),
        (conf("rr", method="DR"), "DR"),
        (conf("rr", sorry_method="TUN"), "TUN"),  # the sorry server counts too
    ],
)
def test_what_nftables_cannot_do_is_refused_with_file_and_line(text: str, words: str) -> None:
    with pytest.raises(LvsError) as e:
        LvsManager.check_supported(parse_keepalived_text(text, "lb.conf"), NftBackend())
    message = str(e.value)
    assert message.startswith("lb.conf:2: virtual_server 198.18.0.100:80/TCP: "), message
    assert words in message
