"""SNMP views of the runtime model: HAKEEPER-MIB's OID map (`mib`) and the AgentX subagent."""
