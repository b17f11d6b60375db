#!/usr/bin/env bash
# The managed plugin: build the bundle, install it into the local dockerd, push it to a registry.
# The Makefile's plugin, plugin-install and plugin-push targets run this; settings come from the
# environment (the Makefile passes its variables):
#
#   scripts/plugin.sh build     Dockerfile → image $PLUGIN_IMAGE → $PLUGIN_DIR/rootfs + config.json
#   scripts/plugin.sh install   (re)creates and enables the plugin $PLUGIN_NAME from $PLUGIN_DIR,
#                               with its state in $STATE_DIR and its admin socket in $ADMIN_DIR
#   scripts/plugin.sh push      creates $REGISTRY/$PLUGIN_NAME:$PLUGIN_TAG from $PLUGIN_DIR and
#                               pushes it (the local copy is removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."

PLUGIN_NAME=${PLUGIN_NAME:-mynet}
PLUGIN_TAG=${PLUGIN_TAG:-latest}
PLUGIN_DIR=${PLUGIN_DIR:-plugin}
PLUGIN_IMAGE=${PLUGIN_IMAGE:-mynet-plugin-rootfs:latest}
BUILD_IMAGE=${BUILD_IMAGE:-mynet-base/node20-build:bookworm}
RUNTIME_IMAGE=${RUNTIME_IMAGE:-mynet-base/node20:bookworm}
STATE_DIR=${STATE_DIR:-/var/lib/mynet}
ADMIN_DIR=${ADMIN_DIR:-/run/mynet}
# Extra `docker plugin set` arguments for install, e.g. "MYNET_LOG_LEVEL=debug".
PLUGIN_SETTINGS=${PLUGIN_SETTINGS:-}
# auto: on a host run by systemd, install a tmpfiles.d entry that recreates $ADMIN_DIR at boot.
TMPFILES=${TMPFILES:-auto}
REGISTRY=${REGISTRY:-}
# A `docker save` tarball of an image this Dockerfile built: build loads it instead of building
# (the e2e tier builds once per run and bundles it on every engine: scripts/plugin-prebuild.sh).
PLUGIN_IMAGE_TAR=${PLUGIN_IMAGE_TAR:-}
# `docker build --network` (host: where dockerd runs without a bridge, as that one build does).
BUILD_NETWORK=${BUILD_NETWORK:-}
# What the image is built from: nothing else is sent to dockerd.
CONTEXT=(Dockerfile package.json package-lock.json tsconfig.json tsconfig.build.json src)

say() { echo "plugin: $*" >&2; }
die() { say "$*"; exit 1; }
took() { echo "$(($(date +%s%N) / 1000000 - $1))"; }
now() { echo "$(($(date +%s%N) / 1000000))"; }

bundle_ok() {
  [ -f "$PLUGIN_DIR/config.json" ] && [ -d "$PLUGIN_DIR/rootfs/app/dist" ] \
    || die "no plugin bundle in $PLUGIN_DIR: run \`make plugin\` first"
}

# $PLUGIN_IMAGE_TAR as $PLUGIN_IMAGE; not again when $PLUGIN_IMAGE is already that image (the
# install and push targets make the bundle again, each time).
load_image() {
  local id ref
  id=$(tar -xOf "$PLUGIN_IMAGE_TAR" manifest.json | sed -nE 's/.*"Config":"(blobs\/sha256\/)?([0-9a-f]{64})(\.json)?".*/\2/p')
  [ -n "$id" ] || die "$PLUGIN_IMAGE_TAR: no image in its manifest.json"
  [ "$(docker image inspect -f '{{.Id}}' "$PLUGIN_IMAGE" 2>/dev/null)" = "sha256:$id" ] && return 0
  ref=$(docker load -i "$PLUGIN_IMAGE_TAR" | sed -nE 's/^Loaded image( ID)?: //p' | tail -1)
  [ -n "$ref" ] || die "docker load -i $PLUGIN_IMAGE_TAR named no image"
  docker tag "$ref" "$PLUGIN_IMAGE"
  # The name it was saved under is not ours to keep here (a cleanup removes $PLUGIN_IMAGE).
  case $ref in sha256:* | "$PLUGIN_IMAGE") ;; *) docker rmi "$ref" >/dev/null ;; esac
}

build() {
  local t0 t id
  t0=$(now)
  if [[ $BUILD_IMAGE == mynet-base/* || $RUNTIME_IMAGE == mynet-base/* ]]; then
    BASE_BUILD_IMAGE=$BUILD_IMAGE BASE_RUNTIME_IMAGE=$RUNTIME_IMAGE ./scripts/base-image.sh
    say "base images ready in $(took "$t0") ms"
  fi
  t=$(now)
  if [ -n "$PLUGIN_IMAGE_TAR" ]; then
    load_image
    say "image $PLUGIN_IMAGE loaded from $PLUGIN_IMAGE_TAR in $(took "$t") ms"
  else
    tar -c "${CONTEXT[@]}" | docker build --force-rm -t "$PLUGIN_IMAGE" ${BUILD_NETWORK:+--network "$BUILD_NETWORK"} \
      --build-arg BUILD_IMAGE="$BUILD_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" -
    say "image $PLUGIN_IMAGE built in $(took "$t") ms"
  fi
  t=$(now)
  rm -rf "$PLUGIN_DIR/rootfs" "$PLUGIN_DIR/config.json"
  mkdir -p "$PLUGIN_DIR/rootfs"
  id=$(docker create "$PLUGIN_IMAGE")
  docker export "$id" | tar --numeric-owner -x -C "$PLUGIN_DIR/rootfs" || { docker rm "$id" >/dev/null; die "docker export failed"; }
  docker rm "$id" >/dev/null
  mkdir -p "$PLUGIN_DIR/rootfs/run/docker/plugins" # dockerd mounts the plugin's socket dir here
  cp config.json "$PLUGIN_DIR/config.json"
  say "bundle $PLUGIN_DIR (rootfs $(du -sh "$PLUGIN_DIR/rootfs" | cut -f1)) exported in $(took "$t") ms; total $(took "$t0") ms"
}

plugin_exists() { docker plugin inspect "$1" >/dev/null 2>&1; }

remove_plugin() {
  if plugin_exists "$1"; then
    say "removing the installed $1 (its networks stay; the new plugin takes them over from the state)"
    [ "$(docker plugin inspect -f '{{.Enabled}}' "$1")" = true ] && docker plugin disable -f "$1" >/dev/null
    docker plugin rm -f "$1" >/dev/null
  fi
}

install_tmpfiles() {
  [ "$TMPFILES" = no ] && return 0
  if [ "$TMPFILES" = auto ] && [ ! -d /run/systemd/system ]; then return 0; fi
  mkdir -p /etc/tmpfiles.d
  printf '# mynet managed plugin: the admin socket directory it mounts must exist before dockerd starts.\nd %s 0755 root root -\nd %s 0700 root root -\n' \
    "$ADMIN_DIR" "$STATE_DIR" >/etc/tmpfiles.d/mynet.conf
  say "wrote /etc/tmpfiles.d/mynet.conf ($ADMIN_DIR is recreated at boot)"
}

install() {
  local t0 t settings
  bundle_ok
  t0=$(now)
  remove_plugin "$PLUGIN_NAME"
  # dockerd bind-mounts these into the plugin and refuses to start it when they are missing.
  mkdir -p "$STATE_DIR" "$ADMIN_DIR"
  chmod 0700 "$STATE_DIR"
  install_tmpfiles
  t=$(now)
  docker plugin create "$PLUGIN_NAME" "$PLUGIN_DIR" >/dev/null
  say "created $PLUGIN_NAME in $(took "$t") ms"
  read -r -a settings <<<"$PLUGIN_SETTINGS"
  docker plugin set "$PLUGIN_NAME" state.source="$STATE_DIR" admin.source="$ADMIN_DIR" "${settings[@]}"
  t=$(now)
  docker plugin enable "$PLUGIN_NAME" >/dev/null
  say "enabled $PLUGIN_NAME in $(took "$t") ms (install $(took "$t0") ms); use -d $PLUGIN_NAME:latest --ipam-driver $PLUGIN_NAME:latest"
}

push() {
  local ref t0
  [ -n "$REGISTRY" ] || die "usage: make plugin-push REGISTRY=host:port [PLUGIN_TAG=tag]"
  bundle_ok
  ref=$REGISTRY/$PLUGIN_NAME:$PLUGIN_TAG
  t0=$(now)
  plugin_exists "$ref" && docker plugin rm -f "$ref" >/dev/null
  # dockerd 20.10 refuses to create a plugin whose rootfs is byte-identical to an installed one
  # ("content sha256:…: already exists"), e.g. `mynet` from the same bundle. So push a hard-linked
  # copy that also records its own reference, which makes the layer distinct.
  PUSH_DIR=$(mktemp -d "$(dirname "$PLUGIN_DIR")/.mynet-push.XXXXXX")
  trap 'rm -rf "$PUSH_DIR"' EXIT
  cp -al "$PLUGIN_DIR/rootfs" "$PUSH_DIR/rootfs" 2>/dev/null || { rm -rf "$PUSH_DIR/rootfs"; cp -a "$PLUGIN_DIR/rootfs" "$PUSH_DIR/rootfs"; }
  cp "$PLUGIN_DIR/config.json" "$PUSH_DIR/config.json"
  echo "$ref" >"$PUSH_DIR/rootfs/app/PLUGIN_REFERENCE"
  docker plugin create "$ref" "$PUSH_DIR" >/dev/null
  docker plugin push "$ref" || { docker plugin rm -f "$ref" >/dev/null; die "push of $ref failed"; }
  docker plugin rm -f "$ref" >/dev/null
  say "pushed $ref in $(took "$t0") ms; install it with: docker plugin install --alias $PLUGIN_NAME --grant-all-permissions $ref"
}

case ${1:-} in
  build) build ;;
  install) install ;;
  push) push ;;
  *) die "usage: $0 build|install|push" ;;
esac
