# syntax=docker/dockerfile:1
# otel-health-sidecar image: the esbuild bundle of the compiled JavaScript
# (scripts/bundle.mjs: one minified file per package, ~3.6 MiB) and the three
# packages it keeps external, on Node 22 slim, non-root (docs/deploy.md,
# "Footprint": ~6 MiB on top of the Node image). No HEALTHCHECK: in Kubernetes
# the kubelet probes the container (see deploy/kustomize); `docker run` users
# can probe /-/healthy.
#
# test/deploy/dockerfile.test.ts lints this file and runs its stages natively
# (no Docker engine needed): keep RUN commands relative to WORKDIR.

ARG NODE_IMAGE=node:22-bookworm-slim

# ── compile TypeScript, then bundle it: scripts/bundle.mjs → ./bundle/ ──
FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
RUN npm run build
RUN npm run bundle

# ── the packages the bundle keeps external (ioredis, pg, pino: the require-hook
#    instrumentations patch them by name) from the lockfile cut the bundle wrote ──
FROM ${NODE_IMAGE} AS deps
WORKDIR /deps
COPY --from=build /build/bundle/package.json /build/bundle/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ── runtime ──
FROM ${NODE_IMAGE} AS runtime
# OCI image metadata. The release workflow (.github/workflows/release.yml)
# passes VERSION (from the v* tag, which must equal package.json's version) and
# REVISION (the commit); the defaults describe a local build of this checkout.
# test/deploy/dockerfile.test.ts checks them against package.json.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="otel-health-sidecar" \
      org.opencontainers.image.description="Kubernetes health-check sidecar: probes dependencies through cockatiel policies, answers kubelet probes from memory, exports OpenTelemetry metrics and traces" \
      org.opencontainers.image.source="https://github.com/otel-health-sidecar/otel-health-sidecar" \
      org.opencontainers.image.url="https://github.com/otel-health-sidecar/otel-health-sidecar" \
      org.opencontainers.image.documentation="https://github.com/otel-health-sidecar/otel-health-sidecar/blob/main/docs/quickstart.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# Two malloc arenas instead of glibc's 8 per core: V8's compiler and GC threads otherwise
# each keep an arena of freed memory (docs/deploy.md, "Footprint": the bundle 87.4 → 82.5 MiB
# RSS with 4 checks, dist + node_modules 86.6 → 83.4 MiB, side by side)
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
RUN groupadd --system --gid 10001 sidecar && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin sidecar
WORKDIR /app
COPY --from=deps /deps/node_modules ./node_modules
# version.ts reads the version from ../package.json beside the bundle directory
COPY --from=build /build/package.json ./
COPY --from=build /build/bundle/ ./bundle/
# a working default: probes itself, plus whatever APP_URL / REDIS_URL / DATABASE_URL name
COPY config/sidecar.yaml /etc/health-sidecar/sidecar.yaml
USER 10001:10001
EXPOSE 9464
# A 2 MiB semi-space (young generation 4 MiB instead of node's 32 MiB ceiling): under
# steady probing V8 otherwise grows the young generation to its maximum, ~30 MiB of RSS
# for nothing (bench/memory.bench.mjs: 112 → 90 MiB); the extra scavenges cost no CPU
# we could tell from noise in a side-by-side run.
# One V8 platform thread (node's default is 4) for background GC and compilation: 1.7-2.5 MiB
# less RSS with the same CPU in three side-by-side runs (docs/deploy.md, "Footprint").
ENTRYPOINT ["node", "--max-semi-space-size=2", "--v8-pool-size=1", "/app/bundle/cli.js"]
CMD ["run", "--config", "/etc/health-sidecar/sidecar.yaml"]
