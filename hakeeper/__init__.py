"""hakeeper: VRRP failover and LVS load balancing, with its live state on D-Bus and SNMP."""

__version__ = "0.1.0"
