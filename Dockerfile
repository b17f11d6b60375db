# The managed plugin's root filesystem: `make plugin` builds this image, exports a container of
# it as plugin/rootfs and adds config.json. The base images are build arguments because no image
# registry may be reachable where it is built: `make base-images` (scripts/base-image.sh) makes
# mynet-base/node20-build:bookworm and mynet-base/node20:bookworm locally, and the Makefile
# passes them. Where a registry is reachable, the defaults work as they are.
ARG BUILD_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${BUILD_IMAGE} AS build
# Marks the build stage's (untagged) cache images: docker image prune --filter label=io.mynet.stage=build
LABEL io.mynet.stage=build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm ci` refuses a lock file that lacks entries package.json needs (e.g. other platforms'
# optional packages pruned from it); then install from the lock as far as it goes, and say so.
RUN npm ci --no-audit --no-fund --loglevel=error \
    || { echo 'Dockerfile: package-lock.json is out of sync with package.json (see above); using npm install' >&2; \
         npm install --no-audit --no-fund --loglevel=error; }
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
    && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
    && find dist -name '*.map' -delete

FROM ${RUNTIME_IMAGE}
# The host tools the plugin runs. iptables must use the nf_tables backend, as the host's does
# (Debian bookworm's default; set explicitly so that a base image with legacy chosen still works):
# the plugin's FORWARD jump must land in the same tables dockerd's rules are in.
RUN apt-get update -q \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
       iproute2 iptables nftables conntrack \
    && update-alternatives --set iptables /usr/sbin/iptables-nft \
    && update-alternatives --set ip6tables /usr/sbin/ip6tables-nft \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
    && mkdir -p /run/docker/plugins /var/lib/mynet /run/mynet
WORKDIR /app
ENV NODE_ENV=production
COPY package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# node is PID 1: main.ts handles SIGTERM/SIGINT itself (saves state, removes its sockets, exits 0).
ENTRYPOINT ["node", "/app/dist/main.js"]
