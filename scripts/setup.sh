#!/usr/bin/env bash
# Installs what hakeeper's demo and tests need on a bare Debian 12 machine (run as root):
# Debian packages, then a venv in .venv with hakeeper and its Python dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc   # the venv; gcc for any wheel that must build
  iproute2 nftables procps iputils-ping  # namespaces, veth, bridge; nft for lab faults; ping
  keepalived                             # the reference VRRP peer for interop and benchmarks
  dbus snmp snmpd tcpdump                # real peers for the D-Bus and SNMP views; captures
  systemd                                # busctl: the D-Bus client the lab tests drive
  smitools snmptrapd                     # smilint (MIB checks), the trap receiver
  meson ninja-build                      # the distro install path (meson install)
  openssl libnftables1                   # lab TLS certificates; nftables' JSON API (LVS)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keepalived's package enables its own service; the lab runs it by hand in namespaces only
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet keepalived 2>/dev/null; then
  systemctl stop keepalived || true
fi

# The IETF base MIB modules (SNMPv2-SMI, SNMPv2-TC, SNMPv2-CONF) that smilint and net-snmp
# need to read HAKEEPER-MIB: Debian strips them from net-snmp and libsmi (IETF licence), but
# its main archive carries them in erlang-snmp. Take those three files, not the Erlang runtime.
MIB_BASE=/usr/local/share/snmp/mibs/ietf
if [ ! -f "$MIB_BASE/SNMPv2-CONF" ]; then
  tmp=$(mktemp -d)
  chmod 755 "$tmp"  # apt's _apt user writes the download there
  if ! (cd "$tmp" && apt-get download -qq erlang-snmp 2>/dev/null); then
    apt-get update -qq
    (cd "$tmp" && apt-get download -qq erlang-snmp)
  fi
  dpkg-deb -x "$tmp"/erlang-snmp_*.deb "$tmp/x"
  install -d "$MIB_BASE"
  for m in SNMPv2-SMI SNMPv2-TC SNMPv2-CONF; do
    install -m 0644 "$tmp"/x/usr/lib/erlang/lib/snmp-*/mibs/"$m".mib "$MIB_BASE/$m"
  done
  rm -rf "$tmp"
  echo "setup: IETF base MIB modules in $MIB_BASE (from Debian's erlang-snmp)"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.hakeeper-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
echo "setup: ready ($(.venv/bin/hakeeper --version))"
