#!/bin/sh
# dtap lab: until kube-proxy has programmed its DNAT rules, a pod's connection to a ClusterIP
# (10.96.0.1:443 first of all) is routed like any other address: out of the node, through the
# host's default route, off the machine. Reject service-range traffic that was not translated
# instead, so it fails fast and stays local. Translated traffic no longer has a service-range
# destination when it reaches filter FORWARD/OUTPUT, so kube-proxy's work is unaffected.
# 10.96.0.0/12 is kubeadm's default service range and covers kind's 10.96.0.0/16.
set -eu
range=${SERVICE_RANGE:-10.96.0.0/12}
for chain in FORWARD OUTPUT; do
  iptables -C "$chain" -d "$range" -m comment --comment "dtap-lab service guard" -j REJECT 2>/dev/null ||
    iptables -I "$chain" 1 -d "$range" -m comment --comment "dtap-lab service guard" -j REJECT
done
