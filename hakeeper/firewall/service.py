"""The firewall's I/O: install or remove hakeeper's table, read the ruleset and log the check.

Runs in the daemon's network namespace through libnftables (lvs/libnft.py). A firewall
that cannot be read or written is logged and left alone: VRRP goes on without it.
"""

from __future__ import annotations

import logging

from hakeeper.config.model import Config
from hakeeper.firewall.audit import Finding, Local, audit
from hakeeper.firewall.table import FAMILY, TABLE, remove_batch, replace_batch
from hakeeper.lvs.libnft import Nft, NftError

log = logging.getLogger("hakeeper.firewall")

HINT = "accept it there: an accept in hakeeper's own table cannot undo another table's drop"


class Firewall:
    """hakeeper's `inet hakeeper` table (with `vrrp_firewall`) and the ruleset check."""

    def __init__(self) -> None:
        self._nft: Nft | None = None
        self.installed = False

    def _ctx(self) -> Nft:
        if self._nft is None:
            self._nft = Nft()
        return self._nft

    def apply(self, config: Config) -> None:
        """Make the table match `config`: replaced whole in one transaction when on (also
        over a table a killed daemon left), removed when off."""
        if not config.global_defs.vrrp_firewall:
            try:
                if self.installed or self._table_exists():
                    self.remove()
            except NftError as e:  # not asked for: no nftables here is no news
                log.debug("firewall: cannot look for table %s %s: %s", FAMILY, TABLE, e)
            return
        batch = replace_batch(config)
        try:
            self._ctx().json({"nftables": batch})
        except NftError as e:
            log.error("firewall: cannot install table %s %s: %s", FAMILY, TABLE, e)
            return
        self.installed = True
        rules = sum(1 for cmd in batch if "rule" in cmd.get("add", {}))
        log.info("firewall: table %s %s holds %d rule(s)", FAMILY, TABLE, rules)

    def _table_exists(self) -> bool:
        reply = self._ctx().json({"nftables": [{"list": {"tables": None}}]})
        return any(
            item.get("table", {}).get("family") == FAMILY
            and item.get("table", {}).get("name") == TABLE
            for item in reply.get("nftables", [])
        )

    def remove(self) -> None:
        try:
            self._ctx().json({"nftables": remove_batch()})
            log.info("firewall: table %s %s removed", FAMILY, TABLE)
        except NftError as e:
            log.error("firewall: cannot remove table %s %s: %s", FAMILY, TABLE, e)
        self.installed = False

    def check(self, config: Config, local: Local) -> list[Finding]:
        """Read the live ruleset and log, one line each, what drops VRRP or a VIP's traffic:
        ERROR where sure, WARNING where it may. Blocks (one netlink dump): run in a thread."""
        # its own libnftables context: a context is not safe to share with the loop's thread
        nft = None
        try:
            nft = Nft()
            doc = nft.json({"nftables": [{"list": {"ruleset": None}}]})
            findings = audit(doc, config, local, skip=[(FAMILY, TABLE)])
        except NftError as e:
            log.warning("firewall check: cannot read the ruleset: %s", e)
            return []
        except Exception:  # a ruleset the check does not understand must not go unnoticed
            log.exception("firewall check failed")
            return []
        finally:
            if nft is not None:
                nft.close()
        for f in findings:
            hint = f" ({HINT})" if not f.flow.vip else ""
            log.log(logging.ERROR if f.sure else logging.WARNING, "firewall: %s%s", f, hint)
        if not findings:
            log.info("firewall check: no rule drops VRRP or traffic to the VIPs")
        return findings

    def close(self, remove: bool = True) -> None:
        if remove and self.installed:
            self.remove()
        if self._nft is not None:
            self._nft.close()
            self._nft = None
