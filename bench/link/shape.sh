#!/usr/bin/env bash
# A shaped link on this machine for the benchmarks: a network namespace joined to the host
# by a veth pair, both ends limited by tc (token bucket) to RATE. The platform runs inside
# the namespace at NS_ADDR, the gateway outside, so every byte between them crosses the link.
#   shape.sh up   NAME RATE   e.g. shape.sh up arteria-bench 1gbit   (prints HOST_ADDR NS_ADDR)
#   shape.sh down NAME        removes the namespace and its veth pair (idempotent)
#   shape.sh check            exit 0 when namespaces, veth and tc work here (needs root)
set -euo pipefail
cmd=${1:-}
name=${2:-arteria-bench}
# veth names are at most 15 characters; addresses from a /30 of TEST-NET-style private space.
host_if="${name:0:10}-h"
ns_if="${name:0:10}-n"
host_addr=10.213.7.1
ns_addr=10.213.7.2

down() {
  ip netns del "$name" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
}

case "$cmd" in
  check)
    [ "$(id -u)" = 0 ] || { echo "not root: network namespaces need root" >&2; exit 1; }
    probe="arteria-probe-$$"
    ip netns add "$probe" 2>/dev/null || { echo "ip netns add failed: no network namespaces here" >&2; exit 1; }
    ok=0
    if ip link add "ap$$-h" type veth peer name "ap$$-n" 2>/dev/null; then
      tc qdisc add dev "ap$$-h" root tbf rate 1gbit burst 256kb latency 50ms 2>/dev/null && ok=1
      ip link del "ap$$-h" 2>/dev/null || true
    fi
    ip netns del "$probe"
    [ "$ok" = 1 ] || { echo "veth or tc unavailable" >&2; exit 1; }
    ;;
  up)
    rate=${3:?rate, e.g. 1gbit}
    down
    trap down ERR
    ip netns add "$name"
    ip link add "$host_if" type veth peer name "$ns_if"
    ip link set "$ns_if" netns "$name"
    ip addr add "$host_addr/30" dev "$host_if"
    ip link set "$host_if" up
    ip netns exec "$name" ip addr add "$ns_addr/30" dev "$ns_if"
    ip netns exec "$name" ip link set "$ns_if" up
    ip netns exec "$name" ip link set lo up
    # Both directions: the token bucket holds each end to RATE; a burst of a few
    # hundred KiB lets TCP keep the link full without exceeding the rate on average.
    tc qdisc add dev "$host_if" root tbf rate "$rate" burst 512kb latency 50ms
    ip netns exec "$name" tc qdisc add dev "$ns_if" root tbf rate "$rate" burst 512kb latency 50ms
    echo "$host_addr $ns_addr"
    ;;
  down)
    down
    ;;
  *)
    echo "usage: shape.sh up NAME RATE | down NAME | check" >&2
    exit 2
    ;;
esac
