"""VRRP and the host firewall: hakeeper's own nftables table and a check of the live ruleset.

nftables runs every base chain hooked at a point, table after table in priority order, and a
drop in any of them is final: an accept in hakeeper's table cannot let through what another
table drops. So the table (table.py) makes hakeeper's traffic explicit and counted, and the
check (audit.py) names the chain or rule of any other table that drops it.
"""
