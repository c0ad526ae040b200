# ecs-secrets: one image for `setup`, the one-shot commands (create, fetch, revoke, list, history)
# and the `daemon` sidecar:  docker run [--env-file aws.env] IMAGE <command> [flags]
#
# Not built where it was written (no Docker there): each RUN step below was run by hand in a
# scratch copy of the repository instead. See docs/operator-guide.md, "The Docker image".
#
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: every dependency, TypeScript compiled to dist/ ---------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY cloudformation ./cloudformation
COPY scripts ./scripts
# `ecs-secrets version` names the commit: the build context has no .git, so it comes as an argument
# (docker build --build-arg ECS_SECRETS_BUILD_COMMIT=$(git rev-parse --short=12 HEAD) .).
ARG ECS_SECRETS_BUILD_COMMIT=unknown
# dist/src/ecs-secrets.js: the CLI, one esbuild bundle (tsc type-checks and compiles, then `npm run
# bundle`), loaded by dist/src/cli.js; dist/src/vendor: packages bundled apart, loaded at first use;
# dist/cloudformation: the template (also inside the bundle); dist/scripts: the runtime stage's pruner.
RUN npm run build
# The bundle holds every module of dist/src: the per-module files tsc wrote are not needed at run time
# (its source map stays, for `--debug` stack traces that name our files). The build's code caches go
# too: the runtime's heap flags differ, so node's own compile cache does that job here (below).
RUN find dist/src -mindepth 1 ! -name cli.js ! -name ecs-secrets.js ! -name ecs-secrets.js.map ! -path 'dist/src/vendor*' -delete && rm -f dist/src/vendor/*.cache

# --- runtime: production dependencies only, non-root --------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=build /src/dist/scripts/runtime-deps.js /tmp/runtime-deps.js
# classic-level (the embedded store) ships prebuilt binaries for linux x64/arm64: no compiler needed.
# Then keep only what the bundles load from disk (classic-level, for --local, and its dependencies),
# in the same layer: about 10 MB of node_modules instead of 61 MB (docs/performance.md).
RUN npm ci --omit=dev --no-audit --no-fund && node /tmp/runtime-deps.js --prune && rm /tmp/runtime-deps.js && npm cache clean --force
COPY --from=build /src/dist ./dist
# /data is the working directory, so `--local` keeps its data in /data/.ecs-secrets: mount a volume there.
RUN mkdir -p /data && chown node:node /data
# The compile cache (below) is filled by the node user.
RUN mkdir -p /app/.compile-cache && chown node:node /app/.compile-cache
# /run/ecs-secrets: where `daemon --render` writes, on a task volume shared with the application.
# ECS copies a VOLUME path of the image into a bind-mount volume mounted at the same containerPath,
# so the volume starts owned by node (writable by this non-root sidecar) and readable by group node
# (the application joins it); see task-definitions/app-with-rendered-secrets.json.
RUN mkdir -p /run/ecs-secrets && chown node:node /run/ecs-secrets && chmod 0750 /run/ecs-secrets
VOLUME /run/ecs-secrets
USER node
# V8 settings measured with `npm run bench -- --node <node 24>` (docs/performance.md): a small young
# generation keeps the sidecar's memory down for a small cost in CPU per read.
ENV NODE_OPTIONS=--max-semi-space-size=2
# Node's compile cache (Node >= 22.1), filled at build time for the user the image runs as: the CLI's
# bundle starts without compiling its top level again (about 40 ms less per `docker run` on this machine).
ENV NODE_COMPILE_CACHE=/app/.compile-cache
RUN node /app/dist/src/cli.js --version >/dev/null
# The entrypoint gives the V8 old generation half of the container's memory limit (cgroup
# memory.max, read at each start), then runs the CLI (scripts/entrypoint.sh).
COPY --from=build /src/scripts/entrypoint.sh /app/entrypoint.sh
WORKDIR /data
# The daemon binds loopback by default; the image listens on every interface as the original did,
# so bridge-mode tasks (links, port mappings) keep working. A --host flag in a task's command wins.
ENV ECS_SECRETS_HOST=0.0.0.0
EXPOSE 8080
ENTRYPOINT ["/bin/sh", "/app/entrypoint.sh"]
CMD ["--help"]
