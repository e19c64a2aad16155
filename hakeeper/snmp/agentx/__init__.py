"""AgentX (RFC 2741) subagent: wire codec, sans-IO session, asyncio shell."""

from __future__ import annotations

from hakeeper.snmp.agentx.pdu import AgentxError, Error, Oid, VarBind, parse_oid
from hakeeper.snmp.agentx.session import MibView, ReadOnlySets, Registration, Session, State
from hakeeper.snmp.agentx.transport import AgentxStats, Subagent, parse_address

__all__ = [
    "AgentxError",
    "AgentxStats",
    "Error",
    "MibView",
    "Oid",
    "ReadOnlySets",
    "Registration",
    "Session",
    "State",
    "Subagent",
    "VarBind",
    "parse_address",
    "parse_oid",
]
