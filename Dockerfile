# ecs-secrets: one image for `setup`, the one-shot commands (create, fetch, revoke, list, history)
# and the `daemon` sidecar:  docker run [--env-file aws.env] IMAGE <command> [flags]
#
# Not built where it was written (no Docker there): each RUN step below was run by hand in a
# scratch copy of the repository instead. See the README, "The Docker image".
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
# dist/src: the CLI; dist/cloudformation: the template, which setup imports.
RUN npm run build

# --- runtime: production dependencies only, non-root --------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# classic-level (the embedded store) ships prebuilt binaries for linux x64/arm64: no compiler needed.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
# /data is the working directory, so `--local` keeps its data in /data/.ecs-secrets: mount a volume there.
RUN mkdir -p /data && chown node:node /data
# /run/ecs-secrets: where `daemon --render` writes, on a task volume shared with the application.
# ECS copies a VOLUME path of the image into a bind-mount volume mounted at the same containerPath,
# so the volume starts owned by node (writable by this non-root sidecar) and readable by group node
# (the application joins it); see task-definitions/app-with-rendered-secrets.json.
RUN mkdir -p /run/ecs-secrets && chown node:node /run/ecs-secrets && chmod 0750 /run/ecs-secrets
VOLUME /run/ecs-secrets
USER node
WORKDIR /data
EXPOSE 8080
ENTRYPOINT ["node", "/app/dist/src/cli.js"]
CMD ["--help"]
