/**
 * The embedded DynamoDB (`--local`): dynalite on an on-disk LevelDB in the data dir, reached over
 * HTTP by the same SecretStore code as real DynamoDB.
 *
 * LevelDB admits one process at a time, yet a CLI command must work while a --local daemon (or
 * another CLI command) runs on the same data dir. So one process at a time is the *owner*: it
 * holds an OS lock (a second tiny LevelDB, `owner.lock`, whose lock the kernel drops if the owner
 * dies), serves the store on 127.0.0.1 and records its port in `endpoint.json`. Every other
 * process is a client of that port. When an owner exits, a client's next request is refused; the
 * request handler then elects a new owner (possibly itself) and the SDK's retry sends the request
 * there. Clients do not keep connections alive, so a refused connection always means the request
 * was never processed and retrying it cannot write twice.
 */
import * as fs from 'node:fs';
import type { Server } from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ClassicLevel } from 'classic-level';
import { AppError } from '../core/errors';
import { CONNECT_TIMEOUT_MS, HTTP_HANDLER_OPTIONS } from './aws';

// dynalite ships no types; this is the one call we make.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dynalite: (opts: Record<string, unknown>) => Server = require('dynalite');

const ENDPOINT_FILE = 'endpoint.json';
const ACQUIRE_TIMEOUT_MS = 10_000;

interface Owned {
  server: Server;
  lock: ClassicLevel;
}

export class EmbeddedDynamo {
  private port: number | undefined;
  private owned: Owned | undefined;
  private acquiring: Promise<number> | undefined;
  readonly requestHandler: NodeHttpHandler;

  constructor(readonly dataDir: string) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    class EmbeddedHttpHandler extends NodeHttpHandler {
      override async handle(...args: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
        const [request] = args;
        request.hostname = '127.0.0.1';
        request.port = await self.currentPort();
        try {
          return await super.handle(...args);
        } catch (err) {
          // The owner went away: forget its port; the SDK retries and we elect a new owner.
          // (Match the message too: across realms, e.g. under jest, the SDK may wrap the error.)
          const e = err as NodeJS.ErrnoException;
          if (e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(String(e.message))) self.port = undefined;
          throw err;
        }
      }
    }
    this.requestHandler = new EmbeddedHttpHandler({ ...HTTP_HANDLER_OPTIONS, httpAgent: { keepAlive: false } });
  }

  /** A placeholder the SDK needs; the handler rewrites host and port on every request. */
  get endpoint(): string {
    return 'http://127.0.0.1:1';
  }

  async currentPort(): Promise<number> {
    if (this.port !== undefined) return this.port;
    this.acquiring ??= this.acquire().finally(() => (this.acquiring = undefined));
    return this.acquiring;
  }

  /** Stop serving (if we own the store) and release the lock; clients elsewhere re-elect. */
  async close(): Promise<void> {
    const owned = this.owned;
    this.owned = undefined;
    this.port = undefined;
    this.requestHandler.destroy();
    if (!owned) return;
    removeEndpointFileIfOurs(this.dataDir);
    await new Promise<void>((resolve) => owned.server.close(() => resolve()));
    await owned.lock.close();
  }

  private async acquire(): Promise<number> {
    fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    const deadline = Date.now() + ACQUIRE_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const lock = await tryLock(path.join(this.dataDir, 'owner.lock'));
      if (lock) return (this.port = await this.serve(lock));
      const ep = readEndpointFile(this.dataDir);
      if (ep && ep.pid !== process.pid && (await canConnect(ep.port))) return (this.port = ep.port);
      await new Promise((r) => setTimeout(r, 25 + Math.random() * 50));
    }
    throw new AppError(
      'unavailable',
      `the embedded store in ${this.dataDir} is locked by another process that does not serve it; is an older version running?`,
    );
  }

  private async serve(lock: ClassicLevel): Promise<number> {
    const server = dynalite({ path: path.join(this.dataDir, 'dynamodb'), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    // The store must not keep a finished one-shot command alive: close() ends it explicitly.
    server.unref();
    const port = (server.address() as net.AddressInfo).port;
    const tmp = path.join(this.dataDir, `${ENDPOINT_FILE}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify({ pid: process.pid, port }), { mode: 0o600 });
    fs.renameSync(tmp, path.join(this.dataDir, ENDPOINT_FILE));
    this.owned = { server, lock };
    return port;
  }
}

async function tryLock(dir: string): Promise<ClassicLevel | undefined> {
  const db = new ClassicLevel(dir);
  try {
    await db.open();
    return db;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') return undefined;
    throw new AppError('unavailable', `cannot open the embedded store lock in ${dir}: ${(err as Error).message}`);
  }
}

function readEndpointFile(dataDir: string): { pid: number; port: number } | undefined {
  try {
    const ep = JSON.parse(fs.readFileSync(path.join(dataDir, ENDPOINT_FILE), 'utf8'));
    return Number.isInteger(ep.port) && Number.isInteger(ep.pid) ? ep : undefined;
  } catch {
    return undefined;
  }
}

function removeEndpointFileIfOurs(dataDir: string): void {
  if (readEndpointFile(dataDir)?.pid === process.pid) fs.rmSync(path.join(dataDir, ENDPOINT_FILE), { force: true });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setTimeout(CONNECT_TIMEOUT_MS);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}
