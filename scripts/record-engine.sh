#!/usr/bin/env bash
# Records what one engine of the matrix sends to a plugin: starts that dockerd as the e2e tier
# does (scripts/engines.sh: its own data root, exec root and pidfile, the default socket),
# scripts/record-plugin.mjs on /run/docker/plugins/mynet.sock, runs the commands of
# test/fixtures/dockerd-20.10/README.md plus what is new in the engine, and stops both.
#
#   scripts/record-engine.sh LINE OUTDIR      e.g. 28.5 test/fixtures/dockerd-28.5
#
# OUTDIR/requests.jsonl is written anew, OUTDIR/commands.sh holds the commands that ran. Nothing
# else may use the plugin socket or the default docker socket meanwhile (take the tier's lock).
set -euo pipefail
cd "$(dirname "$0")/.."
LINE=${1:?usage: $0 LINE OUTDIR}
OUT=${2:?usage: $0 LINE OUTDIR}
SOCK=/run/docker/plugins/mynet.sock
say() { echo "record: $*" >&2; }

docker version --format '{{.Server.Version}}' >/dev/null 2>&1 && { say "a dockerd already answers on the default socket: stop it first"; exit 1; }
[ -e "$SOCK" ] && { say "$SOCK exists: is a mynet running?"; exit 1; }
./scripts/engines.sh fetch "$LINE" >/dev/null
eval "$(./scripts/engines.sh env "$LINE")"
mkdir -p "$OUT" /run/docker/plugins "$(dirname "$MNT_DOCKERD_PIDFILE")"
rm -f "$OUT/requests.jsonl"

work=$(mktemp -d /tmp/mnt-record-XXXXXX)
rec_pid=
dockerd_pid=
cleanup() {
  set +e
  if [ -n "$dockerd_pid" ]; then
    for c in c1 c2 c3 c4; do docker rm -f "$c" >/dev/null 2>&1; done
    for n in net_default_ipam net_mynet_ipam net_full net_internal net_attach net_v6only; do docker network rm "$n" >/dev/null 2>&1; done
    kill "$dockerd_pid"; for _ in $(seq 200); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [ -z "$rec_pid" ] || kill "$rec_pid"
  wait 2>/dev/null
  ip link del docker0 2>/dev/null
  [ -n "${MNT_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# shellcheck disable=SC2086
dockerd $MNT_DOCKERD_ARGS >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 120); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
docker version --format 'record: dockerd {{.Server.Version}} (API {{.Server.APIVersion}})' >&2

if ! docker image inspect localbusybox >/dev/null 2>&1; then
  mkdir -p "$work/root/bin" "$work/root/tmp"
  cp /bin/busybox "$work/root/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/root/bin/$a"; done
  tar -C "$work/root" -cf "$work/root.tar" .
  docker import -c 'CMD ["/bin/sh"]' "$work/root.tar" localbusybox >/dev/null
fi

node scripts/record-plugin.mjs "$SOCK" "$OUT/requests.jsonl" >"$work/recorder.log" 2>&1 &
rec_pid=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done

major=${LINE%%.*}
{
  cat <<'EOF'
docker network create -d mynet net_default_ipam
docker network create -d mynet --ipam-driver mynet net_mynet_ipam
docker network create -d mynet --ipam-driver mynet --subnet 10.150.0.0/16 --ip-range 10.150.5.0/24 --gateway 10.150.0.254 --aux-address host1=10.150.0.10 --ipam-opt foo=bar -o com.docker.network.driver.mtu=1400 -o com.docker.network.bridge.name=mybr0 -o mynet.custom=1 --label team=blue --ipv6 --subnet fd00:150::/64 net_full
docker network create -d mynet --internal --subnet 10.151.0.0/24 net_internal
docker network create -d mynet --attachable --subnet 10.152.0.0/24 net_attach
docker run -d --name c1 --network net_full --ip 10.150.5.20 --ip6 fd00:150::20 --network-alias web --hostname host-c1 -p 127.0.0.1:8080:80/udp -p 8000-8002:9000-9002 -p 7000 --expose 6000 --mac-address 02:42:0a:96:05:14 localbusybox sleep 600
docker network connect --alias extra --ip 10.152.0.9 net_attach c1
docker network disconnect net_attach c1
docker run -d --name c2 --network net_internal localbusybox sleep 600
EOF
  # New since 25: per-network MAC address and endpoint sysctls in the --network long form.
  echo "docker run -d --name c3 --network name=net_attach,mac-address=02:42:0a:98:00:33,driver-opt=com.docker.network.endpoint.sysctls=net.ipv4.conf.IFNAME.log_martians=1 localbusybox sleep 600"
  if [ "$major" -ge 28 ]; then
    # New in 28: IPv6-only networks (--ipv4=false) and the gateway priority of an endpoint.
    echo "docker network create -d mynet --ipv4=false --ipv6 --subnet fd00:153::/64 net_v6only"
    echo "docker run -d --name c4 --network name=net_v6only localbusybox sleep 600"
    echo "docker network connect --gw-priority 10 net_attach c1"
    echo "docker network disconnect net_attach c1"
  fi
  echo "docker rm -f c1 c2 c3"
  [ "$major" -ge 28 ] && echo "docker rm -f c4"
  echo "docker network rm net_default_ipam net_mynet_ipam net_full net_internal net_attach"
  [ "$major" -ge 28 ] && echo "docker network rm net_v6only"
} >"$OUT/commands.sh"

while read -r cmd; do
  say "$cmd"
  # shellcheck disable=SC2086
  if ! out=$(eval "$cmd" 2>&1); then say "  failed: $out"; fi
done <"$OUT/commands.sh"
sleep 1
say "$(wc -l <"$OUT/requests.jsonl") requests in $OUT/requests.jsonl"
