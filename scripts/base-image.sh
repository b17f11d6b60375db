#!/usr/bin/env bash
# Makes the two base images the Dockerfile builds from, without an image registry:
#
#   mynet-base/node20:bookworm        Debian bookworm (debootstrap, minbase) + this host's Node 20
#   mynet-base/node20-build:bookworm  the same + this host's npm (the build stage)
#
# Debian's own nodejs is 18 in bookworm, so the node binary (and npm) are copied from the host,
# which must run Node 20 on a bookworm-compatible libc (checked: node runs inside the rootfs).
# The debootstrapped rootfs is cached as a tarball under $MYNET_BASE_CACHE, and images that
# already exist are kept: FORCE=1 remakes them from the cached rootfs; delete the cache to
# debootstrap again. `make base-images` runs this; `make plugin` runs it when needed.
#
# Settings (environment): BASE_RUNTIME_IMAGE, BASE_BUILD_IMAGE (image names), MYNET_BASE_CACHE
# (default /var/cache/mynet-base), DEBIAN_MIRROR (default: this host's apt mirror), FORCE=1.
set -euo pipefail

RUNTIME_IMAGE=${BASE_RUNTIME_IMAGE:-mynet-base/node20:bookworm}
BUILD_IMAGE=${BASE_BUILD_IMAGE:-mynet-base/node20-build:bookworm}
CACHE=${MYNET_BASE_CACHE:-/var/cache/mynet-base}
SUITE=bookworm
ROOTFS_TAR=$CACHE/debian-$SUITE-minbase.tar
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "base-image: $*" >&2; }
die() { say "$*"; exit 1; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and docker import need it)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "dockerd does not answer"

if [ "${FORCE:-}" != 1 ] && have_image "$RUNTIME_IMAGE" && have_image "$BUILD_IMAGE"; then
  say "$RUNTIME_IMAGE and $BUILD_IMAGE exist (FORCE=1 rebuilds them)"
  exit 0
fi

NODE=$(command -v node) || die "node is not installed on this host"
NODE=$(readlink -f "$NODE")
NODE_VERSION=$("$NODE" -v)
case $NODE_VERSION in v20.*) ;; *) die "this host's node is $NODE_VERSION; the images need Node 20" ;; esac
NPM_DIR=$(dirname "$NODE")/../lib/node_modules/npm
[ -f "$NPM_DIR/bin/npm-cli.js" ] || NPM_DIR=/usr/lib/node_modules/npm
[ -f "$NPM_DIR/bin/npm-cli.js" ] || NPM_DIR=/usr/share/nodejs/npm
[ -f "$NPM_DIR/bin/npm-cli.js" ] || die "cannot find npm next to $NODE"
NPM_DIR=$(readlink -f "$NPM_DIR")

# The mirror this host's apt uses (deb822 .sources or one-line sources.list), else Debian's CDN.
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
MIRROR=${DEBIAN_MIRROR:-$(host_mirror | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=$(host_mirror | grep -m1 -- '-security/\?$' || true)
SECURITY_MIRROR=${SECURITY_MIRROR:-${MIRROR%/debian*}/debian-security}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one builder at a time; a second one waits and then finds the cache
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/rootfs

t0=$SECONDS
if [ -f "$ROOTFS_TAR" ]; then
  say "using the cached rootfs $ROOTFS_TAR"
else
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
  }
  say "debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  }
  cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # Keep images small; dockerd provides resolv.conf, hosts and hostname at run time.
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
    "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/* \
    "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/log/* "$ROOT"/etc/resolv.conf "$ROOT"/etc/hostname
  printf 'path-exclude /usr/share/%s/*\n' doc man info locale >"$ROOT/etc/dpkg/dpkg.cfg.d/01-nodoc"
  tar --numeric-owner -C "$ROOT" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$ROOT"
  say "rootfs cached as $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1), $((SECONDS - t0)) s)"
fi

mkdir -p "$ROOT"
tar --numeric-owner -C "$ROOT" -xf "$ROOTFS_TAR"
install -m 0755 "$NODE" "$ROOT/usr/bin/node"
# Node must run on the rootfs's own libraries; copy any that `ldd` lists and the rootfs lacks.
for lib in $(ldd "$NODE" | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  [ -e "$ROOT$lib" ] || { say "adding $lib from the host"; install -D "$(readlink -f "$lib")" "$ROOT$lib"; }
done
got=$(chroot "$ROOT" env -i /usr/bin/node -v) || die "node $NODE_VERSION does not run inside the $SUITE rootfs"
[ "$got" = "$NODE_VERSION" ] || die "node in the rootfs says $got, expected $NODE_VERSION"

import_image() { # image, description, extra `docker import -c` changes...
  local image=$1 description=$2
  shift 2
  local changes=()
  for c in "$@"; do changes+=(-c "$c"); done
  tar --numeric-owner -C "$ROOT" -c . | docker import \
    -c "ENV PATH=$IMAGE_PATH" -c 'CMD ["node"]' "${changes[@]}" \
    -c "LABEL org.opencontainers.image.title=$image" \
    -c "LABEL org.opencontainers.image.description=\"$description\"" \
    -c "LABEL io.mynet.base.node=$NODE_VERSION" \
    - "$image" >/dev/null
  say "made $image ($description)"
}
import_image "$RUNTIME_IMAGE" "Debian $SUITE minbase + Node $NODE_VERSION, made by scripts/base-image.sh"

mkdir -p "$ROOT/usr/lib/node_modules"
cp -a "$NPM_DIR" "$ROOT/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/bin/npx"
# The build stage fetches npm packages. Where HTTPS goes through an intercepting proxy, this
# host trusts its CA in the system bundle: the build image trusts what the host trusts.
build_env=()
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
  build_env+=("ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt")
fi
NPM_VERSION=$(chroot "$ROOT" env -i /usr/bin/npm -v) || die "npm does not run inside the rootfs"
import_image "$BUILD_IMAGE" "Debian $SUITE minbase + Node $NODE_VERSION + npm $NPM_VERSION, made by scripts/base-image.sh" "${build_env[@]}"
say "done in $((SECONDS - t0)) s"
