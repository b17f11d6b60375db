#!/usr/bin/env bash
# Runs CMD as if on a host of its own, so that the e2e tier can run on several engines at once
# (scripts/engines.sh test):
#
#   scripts/engine-ns.sh [--host-net] DIR CMD...
#
# CMD gets a network namespace of its own (only loopback, up: no route out, and nothing it does
# to links, addresses, firewall or net sysctls reaches this host's) and a private mount
# namespace in which:
#   - /run is a fresh tmpfs, with everything of the host's /run bound back except what two
#     engines would share: the default Docker socket and pid file, /run/docker (legacy plugin
#     discovery is hard-coded to /run/docker/plugins), /run/containerd, /run/netns (the tests
#     name their namespaces the same on every engine), /run/mynet, /run/mynet-engines, the
#     xtables lock (whose tables live in the namespace) and /run/wireguard (wireguard-go's
#     control sockets, named by interface: the engines' tests name theirs alike);
#   - /tmp is DIR/tmp (the tests' temp dirs, dockerd's log dirs, which a test finds by prefix);
#   - /sys is a sysfs of the new namespace (the plugin reads its links there), with the cgroup
#     tree bound back (dockerd needs it).
# --host-net keeps this host's network namespace (and /sys): the private mounts only (the
# plugin image's one build per run, which needs the network: scripts/plugin-prebuild.sh).
# The namespaces have no name: they go away with the last process in them, so nothing of them
# is left on the host. DIR must exist; its subdirectories are made here.
set -euo pipefail

PRIVATE_RUN=" docker docker.sock docker.pid containerd netns mynet mynet-engines xtables.lock wireguard "

inside() {
  local dir=$1 net=$2 e n
  shift 2
  if [ "$net" = own ]; then
    # Which namespace it is, for engines-test.sh's check that no process is left in it.
    readlink /proc/self/ns/net >"$dir/netns"
    ip link set lo up
    mount --rbind /sys/fs/cgroup "$dir/cg"
    mount -t sysfs sysfs /sys
    mount --rbind "$dir/cg" /sys/fs/cgroup
  fi
  mount --rbind /run "$dir/hostrun"
  mount -t tmpfs -o mode=0755 tmpfs /run
  for e in "$dir/hostrun"/* "$dir/hostrun"/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n=${e##*/}
    case $PRIVATE_RUN in *" $n "*) continue ;; esac
    if [ -L "$e" ]; then
      cp -P "$e" "/run/$n"
    elif [ -d "$e" ]; then
      mkdir -p "/run/$n" && mount --rbind "$e" "/run/$n"
    else
      touch "/run/$n" && mount --bind "$e" "/run/$n"
    fi
  done
  chmod 1777 "$dir/tmp"
  mount --bind "$dir/tmp" /tmp
  exec "$@"
}

if [ "${1:-}" = --inside ]; then
  shift
  inside "$@"
fi

net=own
if [ "${1:-}" = --host-net ]; then
  net=host
  shift
fi
[ $# -ge 2 ] || { echo "usage: $0 [--host-net] DIR CMD..." >&2; exit 2; }
dir=$(realpath "$1")
shift
mkdir -p "$dir/cg" "$dir/hostrun" "$dir/tmp"
flags=(--mount --propagation private)
[ "$net" = host ] || flags+=(--net)
exec unshare "${flags[@]}" "$(realpath "$0")" --inside "$dir" "$net" "$@"
