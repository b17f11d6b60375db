#!/usr/bin/env bash
# Installs what the three test tiers need on a fresh Debian machine (root): the host tools the
# plugin calls, a Docker engine for the e2e tier, busybox-static for the test image, and the
# npm packages. Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
command -v nft >/dev/null || need+=(nftables)
command -v dockerd >/dev/null || need+=(docker.io)
# The engine matrix (scripts/engines.sh) runs trixie's and sid's dockerd on bookworm's containerd,
# runc and docker-init (bookworm's docker.io brings them; a machine with another engine may lack them).
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v conntrack >/dev/null || need+=(conntrack)
command -v dig >/dev/null || need+=(dnsutils)
command -v curl >/dev/null || need+=(curl)
command -v debootstrap >/dev/null || need+=(debootstrap)
# dnsmasq: the DNS benchmark compares mynet's server with it (bench/dns.mjs).
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
# iperf3: the multi-host benchmark's cross-host / same-host TCP ratio (bench/cluster-throughput.mjs).
command -v iperf3 >/dev/null || need+=(iperf3)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v docker-registry >/dev/null || need+=(docker-registry)
# capsh names capability bits, setpriv runs the plugin with the unit's (test/host/unit-sandbox).
command -v capsh >/dev/null || need+=(libcap2-bin)
command -v setpriv >/dev/null || need+=(util-linux)
# Encrypted cluster networks (issue 24): wg sets keys and peers; wireguard-go runs WireGuard in
# user space on kernels without it (this one, CI's); tcpdump shows the host tier's underlay capture.
command -v wg >/dev/null || need+=(wireguard-tools)
command -v wireguard-go >/dev/null || need+=(wireguard-go)
command -v tcpdump >/dev/null || need+=(tcpdump)
# systemd-analyze verifies the repository's unit file (the e2e packaging test).
command -v systemd-analyze >/dev/null || need+=(systemd)

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# etcd for the cluster tests (test/helpers/etcd.ts starts private ones). Not `apt-get install
# etcd-server`: its postinst runs `invoke-rc.d etcd start`, which leaves a system etcd listening
# on 2379 on any machine with sysv init or systemd. The package is unpacked into a cache
# directory instead, and the tests find the binary there (or MYNET_TEST_ETCD, or etcd on PATH).
ETCD_CACHE=${MYNET_ETCD_CACHE:-/var/cache/mynet-tests/etcd}
if ! command -v etcd >/dev/null && [ ! -x "$ETCD_CACHE/usr/bin/etcd" ]; then
  echo "install-deps: unpacking etcd-server into $ETCD_CACHE (no service is installed or started)"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q etcd-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get download -q etcd-server >/dev/null; })
  mkdir -p "$ETCD_CACHE"
  dpkg -x "$tmp"/etcd-server_*.deb "$ETCD_CACHE"
  rm -rf "$tmp"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund --loglevel=error
  # npm leaves its record untouched when nothing changed: the Makefile's stamp must be newer.
  touch node_modules/.package-lock.json
fi
