# syntax=docker/dockerfile:1
# The gateway image: built with dev dependencies, run with production dependencies only.
# The base is pinned to an exact Node 24 LTS release on Debian 13 (trixie), the same release
# the test suite runs on (package.json devDependencies.node). Its digest cannot be read from
# this project's build machines (no registry access but npm's and Debian's); pin it in your
# registry mirror (ARG NODE_IMAGE=node:24.21.0-trixie-slim@sha256:…) for reproducible builds.
ARG NODE_IMAGE=node:24.21.0-trixie-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script is the `node` dev dependency's, which fetches the
# Node binary the test suite uses on machines with an older Node; the image has its own.
RUN npm ci --ignore-scripts --no-audit --no-fund
# Only the code that ships: tsconfig.build.json compiles the service without its tests, scripts
# and benchmarks (tsconfig.json's other folders, which stay out of the build context).
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routers ./routers
COPY services ./services
COPY middleware ./middleware
COPY schemas ./schemas
RUN npx tsc -p tsconfig.build.json

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Exactly the lockfile's production set; a runtime import of a dev dependency fails here and in
# the test suite (test/deploy/image.test.ts), not in production.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# Read at runtime: the schemas next to dist/, package.json for the version.
COPY --chown=root:root schemas ./schemas
COPY --chown=root:root package.json ./
# The node image's unprivileged user, by number so Kubernetes can verify runAsNonRoot. The
# files stay owned by root: the process cannot rewrite its own code.
USER 1000:1000
EXPOSE 8080
# Docker's own health report for users without Kubernetes (which ignores HEALTHCHECK and uses
# the chart's probes): the liveness probe, asked by a compiled node:http script, so the
# runtime image needs no curl or wget. It reads PORT and HOST like the service.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "dist/src/healthcheck.js"]
# Exec form: node is PID 1 and receives SIGTERM itself, so the graceful drain runs. The flag is
# package.json's `start` (see README, Performance: Node 24 grows the young generation to 128 MB).
CMD ["node", "--max-semi-space-size=16", "dist/src/server.js"]
