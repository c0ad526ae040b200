/**
 * The Dockerfile cannot be built here (no Docker); its steps were run by hand (docs/operator-guide.md, "The Docker image").
 * What can be checked without Docker is checked here: the image's required shape, and that every
 * file it copies exists and gets through .dockerignore.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');
const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
  .map((l) => l.trim());
const allowed = fs
  .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l.startsWith('!'))
  .map((l) => l.slice(1));

test('multi-stage on a Node LTS slim image, production dependencies only at run time', () => {
  expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:(22|24)-[a-z]+-slim$/m);
  const froms = instructions.filter((l) => l.startsWith('FROM '));
  expect(froms).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE}']);
  const [build, runtime] = dockerfile.split(/^FROM \$\{NODE_IMAGE\}$/m);
  expect(build).toMatch(/^RUN npm (ci|install) /m);
  expect(build).toMatch(/^RUN npm run build$/m);
  expect(runtime).toMatch(/^RUN npm (ci|install) --omit=dev /m);
  expect(runtime).toMatch(/^COPY --from=build \/src\/dist \.\/dist$/m);
});

test('runs the CLI as a non-root user, exposes 8080', () => {
  const last = (k: string) => instructions.filter((l) => l.startsWith(`${k} `)).pop();
  expect(last('USER')).toBe('USER node');
  expect(last('EXPOSE')).toBe('EXPOSE 8080');
  expect(last('ENTRYPOINT')).toBe('ENTRYPOINT ["/bin/sh", "/app/entrypoint.sh"]');
  expect(instructions).toContain('COPY --from=build /src/scripts/entrypoint.sh /app/entrypoint.sh');
  // ... which runs the CLI the image built.
  expect(fs.readFileSync(path.join(ROOT, 'scripts', 'entrypoint.sh'), 'utf8')).toMatch(
    /^exec node \/app\/dist\/src\/cli\.js "\$@"$/m,
  );
  // /app/dist is the build's dist/: the CLI and the template setup imports must be there.
  expect(fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli.js'))).toBe(true);
  expect(fs.existsSync(path.join(ROOT, 'dist', 'cloudformation', 'ecs-secrets.json'))).toBe(true);
});

test('every file it copies from the context exists and is allowed by .dockerignore', () => {
  const sources = instructions
    .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
    .flatMap((l) => l.split(/\s+/).slice(1, -1));
  expect(sources).toEqual(
    expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'cloudformation']),
  );
  for (const s of sources) {
    expect(fs.existsSync(path.join(ROOT, s))).toBe(true);
    expect(allowed).toContain(s);
  }
  // Nothing that could hold secrets or local data is in the allow-list.
  expect(allowed.filter((a) => /ecs-secrets|node_modules|\.git|dist|test/.test(a))).toEqual([]);
});

test('the image keeps only what the bundled CLI loads, and sets the measured V8 options and a compile cache', () => {
  const [build, runtime] = dockerfile.split(/^FROM \$\{NODE_IMAGE\}$/m);
  // The build stage compiles the pruner and drops tsc's per-module files (the bundle holds them).
  expect(build).toMatch(/^COPY scripts \.\/scripts$/m);
  expect(build).toMatch(
    /^RUN find dist\/src -mindepth 1 ! -name cli\.js ! -name ecs-secrets\.js ! -name ecs-secrets\.js\.map ! -path 'dist\/src\/vendor\*' -delete && rm -f dist\/src\/vendor\/\*\.cache$/m,
  );
  // Pruned in the same layer as the install, or the image would still carry every package.
  expect(runtime).toMatch(/^RUN npm ci --omit=dev [^\n]*&& node \/tmp\/runtime-deps\.js --prune && /m);
  expect(runtime).toMatch(/^COPY --from=build \/src\/dist\/scripts\/runtime-deps\.js \/tmp\/runtime-deps\.js$/m);
  expect(fs.existsSync(path.join(ROOT, 'dist', 'scripts', 'runtime-deps.js'))).toBe(true);
  const env = (k: string) => instructions.filter((l) => l.startsWith(`ENV ${k}=`)).pop();
  expect(env('NODE_OPTIONS')).toMatch(/^ENV NODE_OPTIONS="?--max-semi-space-size=\d+( --[a-z-]+=\d+)*"?$/);
  expect(env('NODE_COMPILE_CACHE')).toBe('ENV NODE_COMPILE_CACHE=/app/.compile-cache');
  // The daemon's default is loopback; the image keeps the original's every-interface listener (drop-in).
  expect(env('ECS_SECRETS_HOST')).toBe('ENV ECS_SECRETS_HOST=0.0.0.0');
  // Filled as the user the image runs as (Node keys the cache folder by uid).
  const afterUser = runtime.slice(runtime.lastIndexOf('USER node'));
  expect(afterUser).toMatch(/^RUN node \/app\/dist\/src\/cli\.js --version >\/dev\/null$/m);
});

test('no parser directive: "# syntax=" makes BuildKit pull a frontend image the build does not need', () => {
  // Directives are only read at the very top, before any other line; none may be there.
  const head = dockerfile.split('\n').filter((l) => l.trim() !== '');
  expect(head.filter((l) => /^#\s*(syntax|escape|check)\s*=/i.test(l))).toEqual([]);
  expect(dockerfile).not.toMatch(/docker\/dockerfile:/);
});

test('the operator guide says how to mount /data so that the image\'s user (uid 1000, "node") can write it', () => {
  const guide = fs.readFileSync(path.join(ROOT, 'docs', 'operator-guide.md'), 'utf8');
  const section = guide.slice(guide.indexOf('## 1. The Docker image'), guide.indexOf('## 2. Setup'));
  expect(dockerfile).toMatch(/^RUN mkdir -p \/data && chown node:node \/data$/m);
  expect(section).toMatch(/-v [\w-]+:\/data/); // a named volume
  expect(section).toMatch(/chown 1000:1000/); // a host directory
  expect(section).toMatch(/--user "\$\(id -u\):\$\(id -g\)"/);
  expect(section).toMatch(/not writable by\s+uid 1000/);
});

describe('the entrypoint: the heap limit from the container memory limit', () => {
  const script = path.join(ROOT, 'scripts', 'entrypoint.sh');
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-entrypoint-'));
    // A stand-in for node on PATH: prints what it would have run with.
    fs.writeFileSync(path.join(dir, 'node'), '#!/bin/sh\necho "NODE_OPTIONS=${NODE_OPTIONS:-}"\necho "ARGS=$*"\n', {
      mode: 0o755,
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** What the entrypoint runs when the limit file holds `limit` (undefined: no such file). */
  function run(limit: string | undefined, nodeOptions?: string): string[] {
    const file = path.join(dir, 'memory.max');
    fs.rmSync(file, { force: true });
    if (limit !== undefined) fs.writeFileSync(file, `${limit}\n`);
    const env: NodeJS.ProcessEnv = { PATH: `${dir}:/usr/bin:/bin`, ECS_SECRETS_MEMORY_LIMIT_FILE: file };
    if (nodeOptions !== undefined) env.NODE_OPTIONS = nodeOptions;
    return execFileSync('/bin/sh', [script, 'daemon', '--port', '8080'], { env, encoding: 'utf8' }).trim().split('\n');
  }

  test("half of the limit, after the image's own options, and the arguments passed on", () => {
    expect(run(String(256 * 1024 ** 2), '--max-semi-space-size=2')).toEqual([
      'NODE_OPTIONS=--max-semi-space-size=2 --max-old-space-size=128',
      'ARGS=/app/dist/src/cli.js daemon --port 8080',
    ]);
    expect(run(String(512 * 1024 ** 2))[0]).toBe('NODE_OPTIONS=--max-old-space-size=256');
    expect(run(String(48 * 1024 ** 2))[0]).toBe('NODE_OPTIONS=--max-old-space-size=32'); // the floor
  });

  test("no limit, an unreadable limit or an operator's own --max-old-space-size: nothing added", () => {
    const image = '--max-semi-space-size=2';
    expect(run('max', image)[0]).toBe(`NODE_OPTIONS=${image}`); // cgroup v2, no limit
    expect(run('9223372036854771712', image)[0]).toBe(`NODE_OPTIONS=${image}`); // cgroup v1, no limit
    expect(run(undefined, image)[0]).toBe(`NODE_OPTIONS=${image}`);
    expect(run('garbage')[0]).toBe('NODE_OPTIONS=');
    const own = `${image} --max-old-space-size=90`;
    expect(run(String(256 * 1024 ** 2), own)[0]).toBe(`NODE_OPTIONS=${own}`);
  });
});
