#!/usr/bin/env bash
# The engine matrix of the e2e tier: Docker engines from Debian's archive, each run on its own
# data root, all at the same time, each in namespaces of its own (scripts/engines-test.sh).
#
#   scripts/engines.sh fetch [LINE...]   fetch and unpack the engines (and compose v2) if missing
#   scripts/engines.sh test [LINE...]    the whole e2e tier once per engine, the engines at once
#                                        (fetches first; MYNET_E2E_JOBS=1: one after another)
#   scripts/engines.sh env LINE          the environment a run on LINE uses (for a shell: eval)
#   scripts/engines.sh run LINE CMD...   CMD with that engine's dockerd running (e.g. a bench)
#
# LINE is 20.10 (bookworm's docker.io), 26.1 (trixie's) or 28.5 (sid's); default all three, or
# MYNET_ENGINES="28.5" (space-separated) for a quick local run. Each line runs with one of
# dockerd's common production settings, so the tier sees the firewall each of them makes:
#   20.10  defaults (the userland proxy on)
#   26.1   --userland-proxy=false (dockerd then sets hairpin mode on its own bridge ports)
#   28.5   --ip-forward-no-drop (new in 28: the FORWARD policy is left alone)
# sid replaces versions over time: the newest docker.io there is taken, and the run refuses one
# that is not of the 28.5 line rather than test an engine nobody asked for.
#
# The .debs come from the mirror this machine's apt already uses, with a private apt state,
# cache and sources list under $MYNET_ENGINE_CACHE/apt: the machine's own apt sources, lists
# and installed packages are not changed. `dpkg -x` unpacks each into
# $MYNET_ENGINE_CACHE/<line>/root; <line>/bin holds the commands a run puts first in PATH
# (dockerd, docker-proxy, docker: the engine's own CLI). containerd, runc and docker-init are
# bookworm's (installed by scripts/install-deps.sh). Compose v2 (sid's docker-compose, a CLI
# plugin) is unpacked into $MYNET_ENGINE_CACHE/compose-v2; the compose tests use it from there.
#
# Every run is a dockerd the tests start and stop (global-setup.ts) on the default socket, with
# --data-root, --exec-root and --pidfile of its own under /var/lib/mynet-engines/<line> and
# /run/mynet-engines/<line>; a dockerd that already answers on the default socket is refused.
# For `test`, the default socket and /run are the engine's namespace's own (engine-ns.sh).
# MYNET_TIER_LOCK=FILE: the test command takes `flock FILE` (the tier's machine-wide lock) once.
# MYNET_TEST_SUMMARY=FILE: the closing line of each engine's run is also written there
# (scripts/test.sh prints them at the end of `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${MYNET_ENGINE_CACHE:-/var/cache/mynet-engines}
DATA=${MYNET_ENGINE_DATA:-/var/lib/mynet-engines}
RUN=${MYNET_ENGINE_RUN:-/run/mynet-engines}
ALL_LINES="20.10 26.1 28.5"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "engines: $*" >&2; }
die() { say "$*"; exit 1; }

suite_of() {
  case $1 in
    20.10) echo bookworm ;;
    26.1) echo trixie ;;
    28.5) echo sid ;;
    *) die "unknown engine line '$1' (one of: $ALL_LINES)" ;;
  esac
}
flags_of() {
  case $1 in
    20.10) echo "" ;;
    26.1) echo "--userland-proxy=false" ;;
    28.5) echo "--ip-forward-no-drop" ;;
  esac
}

# The mirror this machine's apt uses for Debian itself (deb822 .sources or one-line lists).
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'tolower($1)=="uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1=="deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
  done
}

APT_DIR=$CACHE/apt
apt_priv() { apt-get -c "$APT_DIR/apt.conf" "$@"; }

# A private apt: its own sources list (bookworm, trixie, sid from the machine's mirror), lists,
# cache and an empty dpkg status, so nothing of the machine's apt is read or written.
apt_setup() {
  local mirror
  mirror=${DEBIAN_MIRROR:-$(host_mirror | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)}
  [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*; set DEBIAN_MIRROR"
  mkdir -p "$APT_DIR/state/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/parts" "$APT_DIR/debs"
  : >"$APT_DIR/status"
  {
    for s in bookworm trixie sid; do echo "deb [signed-by=$KEYRING] $mirror $s main"; done
  } >"$APT_DIR/sources.list"
  cat >"$APT_DIR/apt.conf" <<EOF
Dir::State "$APT_DIR/state";
Dir::State::status "$APT_DIR/status";
Dir::Cache "$APT_DIR/cache";
Dir::Etc::SourceList "$APT_DIR/sources.list";
Dir::Etc::SourceParts "$APT_DIR/parts";
Dir::Etc::Preferences "$APT_DIR/preferences";
Dir::Etc::PreferencesParts "$APT_DIR/parts";
Acquire::Languages "none";
APT::Sandbox::User "root";
EOF
  say "updating the private package lists ($APT_DIR)"
  apt_priv -q update >/dev/null
}

# The candidate version of PACKAGE in SUITE, from the private lists.
version_in() {
  apt-cache -c "$APT_DIR/apt.conf" madison "$1" | awk -v s="$2/main" '$0 ~ " "s" " { print $3; exit }'
}

# Downloads PACKAGE=VERSION into the private cache and unpacks it into DIR.
unpack() {
  local pkg=$1 ver=$2 dir=$3 deb
  (cd "$APT_DIR/debs" && apt_priv -q download "$pkg=$ver" >/dev/null)
  deb=$(ls "$APT_DIR/debs/${pkg}_${ver/*:/}"_*.deb)
  dpkg -x "$deb" "$dir"
  rm -f "$deb"
}

# The private lists are refreshed once per run (a few seconds), so a run takes what the suites
# have now; without the archive, engines already unpacked are used as they are.
lists=unknown
have_lists() {
  if [ "$lists" = unknown ]; then
    if apt_setup; then lists=yes; else lists=no; say "the archive does not answer: using the engines in $CACHE as they are"; fi
  fi
  [ "$lists" = yes ]
}

fetch_line() {
  local line=$1 suite ver dir tmp
  suite=$(suite_of "$line")
  dir=$CACHE/$line
  if ! have_lists; then [ -x "$dir/bin/dockerd" ] || die "no engine $line in $CACHE"; return 0; fi
  ver=$(version_in docker.io "$suite")
  [ -n "$ver" ] || die "no docker.io in $suite"
  case $ver in "$line".*) ;; *) die "$suite's docker.io is $ver, not of the $line line" ;; esac
  if [ -x "$dir/bin/dockerd" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$ver" ]; then return 0; fi
  say "unpacking docker.io $ver ($suite) into $dir"
  tmp=$dir.new
  rm -rf "$tmp" && mkdir -p "$tmp/root" "$tmp/bin"
  unpack docker.io "$ver" "$tmp/root"
  # From 23 on the CLI is its own package; bookworm's docker.io still carries it.
  [ -x "$tmp/root/usr/bin/docker" ] || unpack docker-cli "$(version_in docker-cli "$suite")" "$tmp/root"
  ln -s "$dir/root/usr/sbin/dockerd" "$tmp/bin/dockerd"
  ln -s "$dir/root/usr/sbin/docker-proxy" "$tmp/bin/docker-proxy"
  ln -s "$dir/root/usr/bin/docker" "$tmp/bin/docker"
  echo "$ver" >"$tmp/version"
  rm -rf "$dir" && mv "$tmp" "$dir"
}

fetch_compose() {
  local dir=$CACHE/compose-v2 ver
  if ! have_lists; then [ -x "$dir/cli-plugins/docker-compose" ] || die "no compose v2 in $CACHE"; return 0; fi
  ver=$(version_in docker-compose sid)
  case $ver in 2.*) ;; *) die "sid's docker-compose is '$ver', not a compose v2" ;; esac
  if [ -x "$dir/cli-plugins/docker-compose" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$ver" ]; then return 0; fi
  say "unpacking docker-compose $ver (sid) into $dir"
  rm -rf "$dir.new" && mkdir -p "$dir.new/root" "$dir.new/cli-plugins"
  unpack docker-compose "$ver" "$dir.new/root"
  # A DOCKER_CONFIG directory whose cli-plugins/ holds it: `docker compose` with that config.
  ln -s "$dir/root/usr/libexec/docker/cli-plugins/docker-compose" "$dir.new/cli-plugins/docker-compose"
  echo "$ver" >"$dir.new/version"
  rm -rf "$dir" && mv "$dir.new" "$dir"
}

lines() {
  local l=${*:-${MYNET_ENGINES:-$ALL_LINES}}
  for x in $l; do suite_of "$x" >/dev/null && echo "$x"; done
}

env_of() {
  local line=$1
  echo "PATH=$CACHE/$line/bin:$PATH"
  echo "MNT_DOCKERD_ARGS=--data-root $DATA/$line --exec-root $RUN/$line/exec --pidfile $RUN/$line/docker.pid --userland-proxy-path $CACHE/$line/bin/docker-proxy $(flags_of "$line")"
  echo "MNT_DOCKERD_PIDFILE=$RUN/$line/docker.pid"
  echo "MNT_ENGINE=dockerd $("$CACHE/$line/bin/dockerd" --version | sed -E 's/^Docker version ([^,]+),.*/\1/')${2:+ $2}"
  echo "MNT_COMPOSE_V2=$CACHE/compose-v2"
}

# The test command: every engine at once, each in namespaces of its own (engines-test.sh).
# shellcheck source=scripts/engines-test.sh
. scripts/engines-test.sh

cmd=${1:-}
shift || true
case $cmd in
  fetch)
    for l in $(lines "$@"); do fetch_line "$l"; done
    fetch_compose
    ;;
  env)
    [ $# = 1 ] || die "usage: $0 env LINE"
    env_of "$1" "$(flags_of "$1")" | sed 's/^/export /; s/=\(.*\)$/="\1"/'
    ;;
  run)
    [ $# -ge 2 ] || die "usage: $0 run LINE CMD..."
    l=$1
    shift
    fetch_line "$l"
    docker version >/dev/null 2>&1 && die "a dockerd already answers on the default socket: stop it first"
    mkdir -p "$DATA/$l" "$RUN/$l"
    mapfile -t vars < <(env_of "$l" "$(flags_of "$l")")
    for v in "${vars[@]}"; do export "${v?}"; done
    had_docker0=$(ip link show docker0 >/dev/null 2>&1 && echo yes || echo no)
    policy=$(iptables -S FORWARD | awk '$1=="-P" { print $3; exit }')
    log=$(mktemp /tmp/mnt-dockerd-XXXXXX.log)
    # shellcheck disable=SC2086
    dockerd $MNT_DOCKERD_ARGS >"$log" 2>&1 &
    dpid=$!
    stop_engine() {
      kill "$dpid" 2>/dev/null || true
      for _ in $(seq 200); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
      [ "$had_docker0" = yes ] || ip link del docker0 2>/dev/null || true
      # dockerd set the FORWARD policy to DROP (unless --ip-forward-no-drop): put back what was.
      [ -z "$policy" ] || iptables -P FORWARD "$policy"
      rm -f "$log"
    }
    trap stop_engine EXIT
    for _ in $(seq 120); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
    docker version --format "engines: running on dockerd {{.Server.Version}} ($MNT_ENGINE)" >&2
    "$@"
    ;;
  test)
    # The tier's machine-wide lock, once for all engines (they run at the same time).
    [ -z "${MYNET_TIER_LOCK:-}" ] || exec flock "$MYNET_TIER_LOCK" env MYNET_TIER_LOCK= "$0" test "$@"
    for l in $(lines "$@"); do fetch_line "$l"; done
    fetch_compose
    # Built once here, before the engines start: their `make run` must find nothing to build (a
    # build then would rewrite dist/ under the other engines' plugins as they start).
    { make -s build && make -q build; } || die "the build is not up to date after make build"
    # shellcheck disable=SC2046
    e2e_parallel $(lines "$@")
    ;;
  *)
    die "usage: $0 fetch|test|env [LINE...]"
    ;;
esac
