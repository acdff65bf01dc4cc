#!/usr/bin/env bash
# Installs, with apt-get, what the real-cluster end-to-end test (make e2e) runs
# besides what it builds itself: etcd, containerd with runc and the CNI plugins, a
# static busybox for the test image, and iptables (the kubelet manages its chains
# with it). kubectl comes with the machine image (/usr/bin/kubectl).
#
# Quiet and quick when everything is there; as a user other than root it only
# says what is missing (the test then skips, or fails under CI=true).
set -euo pipefail

# package:file it provides, to tell a missing package from an installed one
# without asking dpkg about every name.
wanted=(
  etcd-server:/usr/bin/etcd
  containerd:/usr/bin/containerd
  runc:/usr/sbin/runc
  containernetworking-plugins:/usr/lib/cni/bridge
  busybox-static:/bin/busybox
  iptables:/usr/sbin/iptables
  iproute2:/usr/sbin/ip
)

missing=()
for w in "${wanted[@]}"; do
  pkg=${w%%:*} file=${w#*:}
  if ! dpkg -s "$pkg" >/dev/null 2>&1 || [ ! -e "$file" ]; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "e2e/deps.sh: missing ${missing[*]}; as root: apt-get install -y ${missing[*]}" >&2
  exit 0
fi

echo "e2e/deps.sh: installing ${missing[*]}"
apt-get update -qq
# The machine's policy-rc.d keeps packages from starting their services (the
# test starts its own etcd and containerd on private ports and sockets).
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
