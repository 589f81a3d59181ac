# syntax=docker/dockerfile:1
# zava-mcp: a build stage compiles the TypeScript with the dev dependencies; the runtime stage holds the compiled
# server, the production dependencies and the catalog only, and runs as the unprivileged `node` user.
# Production is jwt mode on all interfaces (dev mode refuses a non-loopback address); mount the issuer's public
# key (or set ZAVA_JWT_JWKS_URL) and point DATABASE_URL at PostgreSQL, or keep the embedded database in /data.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No lifecycle scripts yet: `prepare` would build before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# pg_dump/pg_restore for `zava-mcp db backup|restore` against a PostgreSQL server (Debian 12: version 15).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    ZAVA_HOST=0.0.0.0 \
    PORT=8000 \
    ZAVA_AUTH=jwt \
    ZAVA_DATA_DIR=/data/pglite \
    ZAVA_LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; none of them has an install script (checked with `npm query`).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/src ./dist/src
COPY catalog ./catalog
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8000
# Ready, not merely alive: the database answers at this build's schema version and the catalog is embedded.
HEALTHCHECK --interval=15s --timeout=8s --start-period=180s --retries=3 CMD ["node", "dist/src/cli/main.js", "health"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
