# Two images from one build:
#   docker build --target webhook -t ghcr.io/mesh-injector/webhook:0.1.0 .        (manifests/deployment.yaml)
#   docker build --target init -t ghcr.io/mesh-injector/mesh-iptables:0.1.0 .    (images.init in values.yaml)
# test/dockerfile.test.ts checks what this file copies and runs against the repository.

ARG NODE_MAJOR=24

FROM node:${NODE_MAJOR}-bookworm-slim AS build
# jemalloc for the webhook image, copied to a path that is the same on every architecture.
RUN apt-get update \
  && apt-get install -y --no-install-recommends libjemalloc2 \
  && rm -rf /var/lib/apt/lists/* \
  && cp "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY common common
COPY webhook webhook
COPY init init
COPY cli cli
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# The admission webhook: `mesh-injector serve`. No shell, no package manager; uid 65532 as manifests/deployment.yaml
# runs it, numeric so that the kubelet can verify runAsNonRoot.
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS webhook
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Node on glibc's malloc kept about 30 MiB more RSS after load than on jemalloc: freed memory that glibc's arenas
# do not return (docs/benchmarks.md). The distroless base has the libraries jemalloc links.
COPY --from=build /usr/local/lib/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli/main.js"]
CMD ["serve"]

# The istio-init container: `mesh-iptables`, with Debian's iptables (both the nft and the legacy backend) and
# iproute2 (`ip -6 addr add ::6/128 dev lo`). It runs as root with NET_ADMIN and NET_RAW only, as in Istio. It holds
# node and the one self-contained file `npm run build` bundles (dist/mesh-iptables.cjs), no node_modules. The V8
# compile cache is filled here, when the image is built, so that every pod's run starts from compiled code.
FROM debian:bookworm-slim AS init
RUN apt-get update \
  && apt-get install -y --no-install-recommends iptables iproute2 libstdc++6 \
  && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /app/dist/mesh-iptables.cjs ./dist/mesh-iptables.cjs
ENV NODE_COMPILE_CACHE=/var/cache/mesh-iptables
# The sidecar template runs `command: [mesh-iptables]`, so the bin must be on PATH.
RUN chmod 755 /app/dist/mesh-iptables.cjs \
  && ln -s /app/dist/mesh-iptables.cjs /usr/local/bin/mesh-iptables \
  && mesh-iptables --help > /dev/null \
  && mesh-iptables --dry-run --ipv6=false --log_output_level=default:none > /dev/null
ENTRYPOINT ["mesh-iptables"]
