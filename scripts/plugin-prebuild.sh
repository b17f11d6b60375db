#!/usr/bin/env bash
# The managed plugin's image, built once per e2e run and saved to TARBALL, so that each engine's
# plugin-managed.test.ts bundles that image (make plugin PLUGIN_IMAGE_TAR=TARBALL) instead of
# building it again (a cold build is about a minute of CPU and network per engine):
#
#   scripts/plugin-prebuild.sh TARBALL
#
# scripts/engines.sh runs it with an engine's environment (PATH, MNT_DOCKERD_ARGS) inside
# `scripts/engine-ns.sh --host-net` (private /run and /tmp, this host's network: the Dockerfile's
# npm ci and apt-get need it). Its dockerd makes no bridge, no firewall rule and no forwarding
# change (the build runs with --network host), and is stopped at the end; the image and the
# build stage's cache images are removed, the base images (a cache) stay.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# = 1 ] || { echo "usage: $0 TARBALL" >&2; exit 2; }
tar=$1
image=mncs-prebuilt-rootfs:$$
work=$(mktemp -d /tmp/mncs-prebuild-XXXXXX)

say() { echo "plugin-prebuild: $*" >&2; }

# shellcheck disable=SC2086 # the engine's flags, word-split as engines.sh writes them
dockerd $MNT_DOCKERD_ARGS --bridge=none --iptables=false --ip6tables=false --ip-forward=false >"$work/dockerd.log" 2>&1 &
dpid=$!
stop() {
  local r=$?
  docker rmi -f "$image" >/dev/null 2>&1 || true
  docker image prune -f --filter label=io.mynet.stage=build >/dev/null 2>&1 || true
  kill "$dpid" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
  [ "$r" = 0 ] || tail -20 "$work/dockerd.log" >&2
  rm -rf "$work"
  exit "$r"
}
trap stop EXIT
for _ in $(seq 120); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
t0=$(date +%s)
make -s plugin PLUGIN_DIR="$work/bundle" PLUGIN_IMAGE="$image" BUILD_NETWORK=host
docker save -o "$tar" "$image"
say "image built and saved to $tar ($(du -h "$tar" | cut -f1)) in $(($(date +%s) - t0)) s"
