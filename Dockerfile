# The managed plugin's root filesystem (`make plugin`, packaging issue). Base images are build
# arguments because no registry may be reachable where it is built.
ARG BUILD_IMAGE=node:20-bookworm-slim
ARG RUNTIME_IMAGE=node:20-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM ${RUNTIME_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 iptables nftables conntrack \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /run/docker/plugins /var/lib/mynet
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
ENTRYPOINT ["node", "/app/dist/main.js"]
