"""A checker resolved against its real and virtual server: all a check run needs, as data.

Targets are plain frozen values so they can be compared on reload (an unchanged target keeps
its state and its task) and sent to the checker worker process as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from hakeeper.config.lvs_model import (
    Checker,
    RealServer,
    VirtualServer,
    effective_alpha,
    effective_connect_timeout,
    effective_delay_before_retry,
    effective_delay_loop,
    effective_misc_timeout,
    effective_retry,
    effective_virtualhost,
    effective_warmup,
)
from hakeeper.config.model import IPAddress

# (virtual server name, real server name, index of the checker in the real server)
CheckKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class CheckTarget:
    key: CheckKey
    checker: Checker
    address: IPAddress  # connect_ip, else the real server's address
    port: int | None  # connect_port, else the real server's port
    delay_loop: float
    connect_timeout: float
    retry: int
    delay_before_retry: float
    warmup: float
    alpha: bool  # start down until the first success (else start up)
    virtualhost: str | None = None
    rs_weight: int = 1  # the real server's configured weight (dynamic weights start there)
    misc_timeout: float | None = None  # MISC_CHECK: misc_timeout, else the VS's delay_loop
    script_security: bool = False  # MISC_CHECK: enable_script_security
    script_uid: int = 0  # MISC_CHECK: user the script runs as (its user/group or script_user;
    script_gid: int = 0  # -1: no user could be found, the script is refused)

    @classmethod
    def resolve(
        cls,
        vs: VirtualServer,
        rs: RealServer,
        index: int,
        *,
        script_security: bool = False,
        script_uid: int = 0,
        script_gid: int = 0,
    ) -> CheckTarget:
        ck = rs.checkers[index]
        return cls(
            key=(vs.name, rs.name, index),
            checker=ck,
            address=ck.connect_ip or rs.address,
            port=ck.connect_port if ck.connect_port is not None else rs.port,
            delay_loop=effective_delay_loop(vs, rs, ck),
            connect_timeout=effective_connect_timeout(vs, rs, ck),
            retry=effective_retry(vs, rs, ck),
            delay_before_retry=effective_delay_before_retry(vs, rs, ck),
            warmup=effective_warmup(vs, rs, ck),
            alpha=effective_alpha(vs, rs, ck),
            virtualhost=effective_virtualhost(vs, rs, ck),
            rs_weight=rs.weight,
            misc_timeout=effective_misc_timeout(vs, rs, ck) if ck.kind == "MISC_CHECK" else None,
            script_security=script_security,
            script_uid=script_uid,
            script_gid=script_gid,
        )
