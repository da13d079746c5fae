# syntax=docker/dockerfile:1
# Studio Pro Auth image: build with dev dependencies, run on a slim image as a non-root user.
# The service applies pending database migrations itself when it starts.

# --- build: Prisma client generation and TypeScript compilation --------------------------
FROM node:20.20.2-bookworm AS build
WORKDIR /app
# What `npm ci` needs: its postinstall generates the Prisma client from the schema.
COPY package.json package-lock.json prisma.config.ts ./
COPY scripts/prisma-generate.mjs ./scripts/
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# prisma generate + tsc; the generated client is compiled into dist/generated.
RUN npm run build

# --- deps: production dependencies only -----------------------------------------------
# Scripts are skipped (no Prisma CLI work at install), then argon2's own install step runs:
# it keeps the prebuilt binary when it loads and compiles from source otherwise, which is
# why this stage uses the full image (python3, make, g++). Same Debian release as the
# runtime image, so the binary runs there.
FROM node:20.20.2-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild argon2 \
 && npm cache clean --force

# --- runtime ---------------------------------------------------------------------------
FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data \
    MALLOC_ARENA_MAX=1
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma/migrations ./prisma/migrations
# The code is owned by root and read-only to the service; only DATA_DIR is writable
# (used only by the embedded database, i.e. when DATABASE_URL is not set).
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
# No curl in the slim image: node's fetch probes the liveness route.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The CommonJS preload sizes the libuv thread pool before anything uses it (see src/thread-pool.cts).
# Memory (issue 6, measured with bench/heap-profile.ts): after load ~50 MB of the V8 heap is
# live, but with V8's default limit (a quarter of the host's memory) it lets the old space grow
# up to 4x its live size between full collections; under a 256 MB limit it grows it 1.3x, and
# the limit is still 5x the live heap. 4 MB semi-spaces keep the young generation at 8 MB, not 32.
# Native memory is mostly free malloc space that glibc keeps resident (~13 MB of ~100 MB in use):
# one arena (MALLOC_ARENA_MAX=1) keeps one such heap instead of two, argon2's 19 MiB blocks
# included, without slowing hashing. (Returning the blocks to the OS, with a fixed
# MALLOC_MMAP_THRESHOLD_ or jemalloc, costs a quarter of the hash rate in page faults.)
# `npm start` runs the same command; test/deploy checks that the two agree.
CMD ["node", "--max-old-space-size=256", "--max-semi-space-size=4", "--require", "./dist/thread-pool.cjs", "dist/server.js"]
