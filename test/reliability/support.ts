/**
 * Shared plumbing for the reliability suite:
 * - Witness: every process a suite spawns goes through it, so that at the end every byte they
 *   wrote to stdout/stderr (but fetch results) can be scanned for the suite's canary payload;
 * - raw HTTP helpers that send bytes exactly as written (fetch would normalise paths);
 * - LostResponseProxy: a DynamoDB "network" that lets a request commit and then loses its answer;
 * - table helpers that read the stand-in's table directly, to check for lost, duplicated or
 *   partial items.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { CHANGES_NAME } from '../../src/core/changes';
import { spawn } from 'node:child_process';
import { CLI, type CliOptions, type CliResult, baseEnv } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { ADMIN_ACCESS_KEY_ID, REGION } from '../standins';

import { openBackend } from '../../src/backends/open-backend';
import type { SecretsService } from '../../src/core/secrets-service';

// The in-process SDK clients below would print the SDK's Node-version notice into the test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * Run `fn` with the product's own service, in this process, against stand-ins described by `env`
 * (the SDK reads AWS_* lazily, so the variables stay set until `fn` is done). For seeding and for
 * checking what was stored; never in parallel with another call of this.
 */
export async function withService<T>(
  app: string,
  env: Record<string, string>,
  fn: (s: SecretsService) => Promise<T>,
): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const b = await openBackend({ app, local: false });
  try {
    return await fn(b.service);
  } finally {
    await b.close();
    process.env = saved;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Time a promise; the result and how long it took. */
export async function timed<T>(p: Promise<T> | (() => Promise<T>)): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await (typeof p === 'function' ? p() : p);
  return { value, ms: Date.now() - t0 };
}

// ---- secret hygiene -----------------------------------------------------------------------

interface Output {
  what: string;
  text: string;
}

/**
 * One per test file. `canary` is the suite's secret: write and read it, then `finish()` stops the
 * daemons (flushing their buffered logs) and `leaks()` lists every place it was seen.
 */
export class Witness {
  readonly canary: string;
  private readonly outputs: Output[] = [];
  private readonly daemons: Array<{ label: string; d: SpawnedDaemon }> = [];
  /** fetch results that held the canary (they may: that is their job); counted to prove the canary was read. */
  canaryReads = 0;
  canaryWrites = 0;

  constructor(suite: string) {
    this.canary = `CANARY-${suite}-${randomBytes(8).toString('hex')}`;
  }

  /** Run the CLI and record what it wrote. A fetch/get's stdout is its result: checked, not scanned. */
  async cli(args: string[], opts: CliOptions & { killAfterMs?: number } = {}): Promise<BoundedResult> {
    const r = await runBounded(args, opts);
    const label = `cli ${args
      .filter((a) => !a.includes(this.canary))
      .join(' ')
      .slice(0, 120)}`;
    this.outputs.push({ what: `${label} [stderr]`, text: r.stderr });
    const isFetch = args.includes('fetch') || args.includes('get');
    if (isFetch && r.code === 0) this.checkFetchResult(r.stdout, label);
    else this.outputs.push({ what: `${label} [stdout]`, text: r.stdout });
    const input = opts.input === undefined ? '' : opts.input.toString();
    if (
      r.code === 0 &&
      (args.includes('create') || args.includes('store')) &&
      (args.some((a) => a.includes(this.canary)) || input.includes(this.canary))
    )
      this.canaryWrites++;
    return r;
  }

  /** Count a canary written another way (a daemon POST, in-process). */
  wrote(): void {
    this.canaryWrites++;
  }

  /** A fetch result may hold the canary only as the payload of the record it is. */
  checkFetchResult(stdout: string, label: string): void {
    if (!stdout.includes(this.canary)) return;
    const rec = JSON.parse(stdout) as { payload?: string };
    const { payload, ...rest } = rec;
    if (typeof payload !== 'string' || !payload.includes(this.canary) || JSON.stringify(rest).includes(this.canary))
      this.outputs.push({ what: `${label} [stdout, outside the payload field]`, text: stdout });
    else this.canaryReads++;
  }

  /** An HTTP response from a daemon: the canary may only appear as the payload of a 200 record. */
  checkHttpRead(status: number, text: string, label: string): void {
    if (!text.includes(this.canary)) return;
    if (status !== 200) {
      this.outputs.push({ what: `${label} [HTTP ${status} body]`, text });
      return;
    }
    this.checkFetchResult(text, label);
  }

  async daemon(label: string, args: string[], opts: Parameters<typeof spawnDaemon>[1] = {}): Promise<SpawnedDaemon> {
    const d = await spawnDaemon(args, opts);
    this.daemons.push({ label, d });
    return d;
  }

  /** Stop one daemon now (SIGTERM: it flushes its logs) and record its output. */
  async stopDaemon(d: SpawnedDaemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const i = this.daemons.findIndex((x) => x.d === d);
    const code = await d.stop(signal);
    if (i >= 0) {
      const [{ label }] = this.daemons.splice(i, 1);
      this.outputs.push(
        { what: `daemon ${label} [stderr]`, text: d.logs() },
        { what: `daemon ${label} [stdout]`, text: d.stdout() },
      );
    }
    return code;
  }

  /** Stop every daemon still running. Safe to call twice (afterAll calls it as a backstop). */
  async finish(): Promise<void> {
    for (const { d } of [...this.daemons]) await this.stopDaemon(d);
  }

  /** Scan files too (a --local data dir). */
  addFiles(files: string[]): void {
    for (const f of files) this.outputs.push({ what: `file ${f}`, text: fs.readFileSync(f).toString('latin1') });
  }

  /** Every recorded output holding the canary, raw or encoded. Empty when clean. */
  leaks(): string[] {
    const forms = [
      this.canary,
      Buffer.from(this.canary).toString('base64').slice(0, 24),
      Buffer.from(this.canary).toString('hex'),
    ];
    return this.outputs
      .filter((o) => forms.some((f) => o.text.includes(f)))
      .map(
        (o) =>
          `${o.what}: ${o.text.slice(Math.max(0, o.text.indexOf(this.canary) - 200), o.text.indexOf(this.canary) + 200)}`,
      );
  }

  get recordedOutputs(): number {
    return this.outputs.length;
  }

  /** All process output recorded so far, for assertions such as "no stack trace anywhere". */
  allText(): string {
    return this.outputs.map((o) => o.text).join('\n');
  }
}

export interface BoundedResult extends CliResult {
  ms: number;
  /** The process did not end by itself within killAfterMs and was killed: it hung. */
  killed: boolean;
}

/**
 * runCli (test/helpers/cli.ts) with a kill switch: a CLI that hangs is killed after `killAfterMs`
 * and reported as such, so a broken timeout fails a test instead of stalling the suite.
 */
export function runBounded(args: string[], opts: CliOptions & { killAfterMs?: number } = {}): Promise<BoundedResult> {
  return new Promise((resolve, reject) => {
    const env = { ...baseEnv(), ...opts.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], {
      env: env as NodeJS.ProcessEnv,
      cwd: opts.cwd,
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, opts.killAfterMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0, killed });
    });
    child.stdin.on('error', () => undefined); // a child that exits before reading stdin
    child.stdin.end(opts.input ?? '');
  });
}

export function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

// ---- HTTP -------------------------------------------------------------------------------

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: () => Record<string, unknown>;
}

/** One request with node:http (the path is sent exactly as written). */
export function request(
  port: number,
  opts: {
    method?: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    agent?: http.Agent;
    timeoutMs?: number;
  },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers: opts.headers,
        agent: opts.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 20_000, () =>
      req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 20_000} ms`)),
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const get = (port: number, p: string, headers: Record<string, string> = {}) =>
  request(port, { path: p, headers });
export const postJson = (port: number, p: string, body: unknown, headers: Record<string, string> = {}) =>
  request(port, {
    method: 'POST',
    path: p,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/**
 * Write raw bytes on a fresh connection and collect what comes back. Done when the server closes,
 * or `idleMs` after the last data. If nothing at all comes back within `quietMs` (the server waits
 * for the rest of an incomplete request), the client half-closes, and the server must then answer
 * or close within `timeoutMs`; `timedOut` means it did neither. (No half-close up front: Node
 * drops in-flight answers of a connection whose client has ended it.)
 */
export function rawExchange(
  port: number,
  bytes: Buffer | string,
  opts: { timeoutMs?: number; idleMs?: number; quietMs?: number } = {},
): Promise<{ reply: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(hard);
      clearTimeout(idle);
      sock.destroy();
      resolve({ reply: Buffer.concat(chunks).toString('latin1'), timedOut });
    };
    const quiet = setTimeout(() => chunks.length === 0 && sock.end(), opts.quietMs ?? 250);
    const hard = setTimeout(() => finish(chunks.length === 0), (opts.quietMs ?? 250) + (opts.timeoutMs ?? 5_000));
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      clearTimeout(idle);
      idle = setTimeout(() => finish(false), opts.idleMs ?? 300);
    });
    sock.on('end', () => finish(false));
    sock.on('close', () => finish(false));
    sock.on('error', () => finish(false));
  });
}

/** Status codes of every HTTP response in a raw reply (pipelined requests give several). */
export function statusesOf(reply: string): number[] {
  return [...reply.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}

// ---- DynamoDB, read directly ----------------------------------------------------------------

export function adminDynamo(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
  });
}

export type RawItem = Record<string, AttributeValue>;

/**
 * Every item of the table but the change record (meta/changes): it is no version, and every write
 * updates it, so the checks on what was written (complete versions, nothing written) leave it out.
 */
export async function scanTable(ddb: DynamoDBClient, table: string): Promise<RawItem[]> {
  return (await scanAll(ddb, table)).filter((i) => i.Name?.S !== CHANGES_NAME);
}

async function scanAll(ddb: DynamoDBClient, table: string): Promise<RawItem[]> {
  const items: RawItem[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const out = await ddb.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }));
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Serials per name, sorted. */
export function serialsByName(items: RawItem[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const i of items) {
    const name = i.Name.S as string;
    m.set(
      name,
      [...(m.get(name) ?? []), Number(i.Serial.N)].sort((a, b) => a - b),
    );
  }
  return m;
}

/** A complete item as this project writes it: every attribute present and well-formed. */
export function isComplete(i: RawItem): boolean {
  return (
    typeof i.Name?.S === 'string' &&
    /^[1-9][0-9]*$/.test(i.Serial?.N ?? '') &&
    typeof i.EncryptedData?.S === 'string' &&
    Buffer.from(i.EncryptedData.S, 'base64').length >= 12 + 16 + 1 &&
    typeof i.EncryptedDataKey?.S === 'string' &&
    i.EncryptedDataKey.S.length > 0 &&
    typeof i.Active?.BOOL === 'boolean' &&
    i.Format?.N === '2' &&
    !Number.isNaN(Date.parse(i.CreatedAt?.S ?? ''))
  );
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---- a network that loses answers ----------------------------------------------------------

/**
 * An HTTP proxy in front of the DynamoDB stand-in. Normally it forwards. `loseNext(op, n)` makes
 * the next n requests for `op` (e.g. PutItem) reach DynamoDB and be *processed*, and then cuts
 * the client's connection before the answer arrives: what a client sees when a response is lost
 * or arrives after its timeout. The SDK then retries a write that already happened.
 */
export class LostResponseProxy {
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly toLose = new Map<string, number>();
  /** Per operation: lose one answer in every `every` (the others go through), while some are left to lose. */
  private readonly spacing = new Map<string, { every: number; seen: number }>();
  readonly lost: string[] = [];
  private port = 0;

  constructor(upstream: string) {
    const target = new URL(upstream);
    this.server = http.createServer((req, res) => {
      const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const up = http.request(
          { host: target.hostname, port: Number(target.port), method: req.method, path: req.url, headers: req.headers },
          (upRes) => {
            const body: Buffer[] = [];
            upRes.on('data', (c: Buffer) => body.push(c));
            upRes.on('end', () => {
              const left = this.toLose.get(op) ?? 0;
              const spaced = this.spacing.get(op);
              const lose = left > 0 && (!spaced || spaced.seen++ % spaced.every === 0);
              if (lose) {
                this.toLose.set(op, left - 1);
                this.lost.push(op);
                req.socket.destroy(); // processed upstream; the answer never arrives
                return;
              }
              res.writeHead(upRes.statusCode ?? 502, upRes.headers);
              res.end(Buffer.concat(body));
            });
          },
        );
        up.on('error', () => req.socket.destroy());
        up.end(Buffer.concat(chunks));
      });
    });
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Lose the answers of the next `n` requests for `op`; with `every` > 1, only one in every `every` of them. */
  loseNext(op: string, n = 1, every = 1): void {
    this.toLose.set(op, n);
    if (every > 1) this.spacing.set(op, { every, seen: 0 });
    else this.spacing.delete(op);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

// ---- CLI assertions -------------------------------------------------------------------------

/** Exit 1 or 2 with one clear `ecs-secrets: ...` line and nothing else, nothing on stdout, no stack. */
export function expectCleanFailure(r: BoundedResult, code: number, pattern: RegExp): void {
  expect({ code: r.code, killed: r.killed, stdout: r.stdout }).toEqual({ code, killed: false, stdout: '' });
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^ecs-secrets: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at |unexpected error|internal error/);
  expect(lines).toHaveLength(1);
}

/** Request log lines (JSON, one per line) with a status >= `min`, /health excepted (it is 503 until the backend was reached). */
export function loggedErrors(logs: string, min = 500): string[] {
  return logs
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .filter((l) => {
      try {
        const j = JSON.parse(l) as { status?: number; route?: string };
        return typeof j.status === 'number' && j.status >= min && !/\/health$/.test(j.route ?? '');
      } catch {
        return false;
      }
    });
}
