#!/bin/sh
# Capture real keepalived adverts for the golden tests (run as root; needs keepalived, tcpdump).
# Builds a throwaway namespace with a veth pair, runs keepalived on one end and tcpdump on the
# other, then tears everything down by PID and namespace name, even on failure.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ns=hk-pkt-$$
tmp=$(mktemp -d)
kpid= tpid=
cleanup() {
    [ -n "$kpid" ] && kill "$kpid" 2>/dev/null || true
    [ -n "$tpid" ] && kill "$tpid" 2>/dev/null || true
    sleep 0.5
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add veth0 type veth peer name veth1
# fixed MACs so the IPv6 link-local source is stable: fe80::ff:fe00:1
ip -n "$ns" link set veth0 address 02:00:00:00:00:01
ip -n "$ns" link set veth1 address 02:00:00:00:00:02
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip -n "$ns" addr add 198.18.0.1/24 dev veth0
ip -n "$ns" addr add 198.18.0.2/24 dev veth1
ip -n "$ns" link set veth0 up
ip -n "$ns" link set veth1 up
sleep 1

cat > "$tmp/keepalived.conf" <<CONF
global_defs {
    router_id hk-golden
    vrrp_garp_master_delay 0
}
vrrp_instance V2_PASS {
    version 2
    state MASTER
    interface veth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret1
    }
    virtual_ipaddress {
        198.18.0.100/24
        198.18.0.101/24
    }
}
vrrp_instance V3_V4 {
    version 3
    state MASTER
    interface veth0
    virtual_router_id 52
    priority 200
    advert_int 0.5
    virtual_ipaddress {
        198.18.0.110/24
    }
}
vrrp_instance V3_V6 {
    version 3
    state MASTER
    interface veth0
    virtual_router_id 53
    priority 100
    advert_int 1
    virtual_ipaddress {
        fe80::53/64
        2001:db8::53/64
    }
}
CONF

ip netns exec "$ns" tcpdump -U -n -i veth1 -w "$tmp/all.pcap" 'ip proto 112 or ip6 proto 112' \
    >"$tmp/tcpdump.log" 2>&1 &
tpid=$!
sleep 1
ip netns exec "$ns" keepalived -n -l -D -P -f "$tmp/keepalived.conf" \
    -p "$tmp/k.pid" -r "$tmp/v.pid" >"$tmp/keepalived.log" 2>&1 &
kpid=$!
sleep 7
kill "$kpid"; wait "$kpid" 2>/dev/null || true; kpid=
sleep 0.5
kill "$tpid"; wait "$tpid" 2>/dev/null || true; tpid=
cp "$tmp/all.pcap" "$here/keepalived-2.2.7.pcap"
tail -5 "$tmp/keepalived.log"
tcpdump -n -v -r "$here/keepalived-2.2.7.pcap" 2>/dev/null | tail -12
