/**
 * The embedded DynamoDB (`--local`): dynalite on an on-disk LevelDB in the data dir, reached
 * through the SDK's DynamoDB client by the same SecretStore code as real DynamoDB.
 *
 * LevelDB admits one process at a time, yet a CLI command must work while a --local daemon (or
 * another CLI command) runs on the same data dir. So one process at a time is the *owner*: it
 * holds an OS lock (a second tiny LevelDB, `owner.lock`, whose lock the kernel drops if the owner
 * dies), serves the store on 127.0.0.1 and records its port in `endpoint.json`. Every other
 * process is a client of that port; the owner's own requests go to dynalite's listener in process
 * (in-process-http.ts), the same requests and answers without a socket. When an owner exits, a
 * client's next request is refused; the request handler then elects a new owner (possibly itself)
 * and the SDK's retry sends the request there. Clients do not keep connections alive, so a
 * refused connection always means the request was never processed and retrying it cannot write
 * twice.
 *
 * The store belongs to whoever can read the data dir. A TCP port on 127.0.0.1 is open to every
 * local user, so the owner draws a random 256-bit store key, writes it into endpoint.json beside
 * the port (mode 0600, in the 0700 data dir), and refuses every request that does not prove it
 * (header `x-ecs-secrets-store-auth`: a fresh nonce and its HMAC under the key) before dynalite
 * sees the request. A process that cannot read the data dir can find the port (ss,
 * /proc/net/tcp) but cannot read or change the store. The proof runs both ways: the owner answers
 * with the HMAC of the same nonce under another label, and a client accepts no answer without it.
 * Otherwise a local user who binds the port after its owner exits would be taken for the store by
 * the clients still holding that port (and the key itself is never sent, so it learns nothing).
 * (Chosen over a unix socket in the data dir: socket paths are limited to 107 bytes, which a deep
 * --data-dir exceeds, and the key works the same on every platform.) Every file the store writes
 * is private too: the process umask is 077 once the embedded store is opened.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { AGE_IDENTITY_FILE } from '../config/age-identities';
import { writeFileAtomic } from '../core/atomic-file';
import { AppError } from '../core/errors';
import { MASTER_KEY_FILE } from '../core/keys';
import { raiseDescriptorLimit } from '../core/descriptor-limit';
import { ensurePrivateDir, tightenTree } from '../core/private-files';
import { CONNECT_TIMEOUT_MS, HTTP_HANDLER_OPTIONS } from './aws';
import { type RequestListener, dispatchInProcess, dispatchable } from './in-process-http';
import { AbstractIterator, AbstractKeyIterator, AbstractValueIterator, ClassicLevel } from './leveldb';

// dynalite ships no types; this is the one call we make.
const dynalite: (opts: Record<string, unknown>) => Server = require('dynalite');

/**
 * dynalite reads LevelDB through Node streams over level iterators and ends each stream by calling
 * the iterator's `return()`, the async-iterator way to stop early. abstract-level 3 iterators have
 * no `return()`, only `close()`, so every Query and Scan left its iterators open: each holds a
 * native LevelDB iterator and the implicit snapshot under it, which pins memtables and table
 * files, and the database keeps a reference to it until it closes. Under steady reads and writes
 * the owner's memory grew without bound outside the V8 heap (docs/embedded-store.md). Give the
 * iterators of the abstract-level that classic-level loads the `return()` dynalite expects:
 * dynalite opens LevelDB through classic-level, and so does leveldb.ts (its bundle is the one both
 * load), so this is the copy its iterators come from. Left alone if one exists already.
 */
function closeLevelIteratorsOnReturn(): void {
  for (const iterator of [AbstractIterator, AbstractKeyIterator, AbstractValueIterator]) {
    const proto = iterator.prototype as { return?: unknown; close(): Promise<void> };
    if (typeof proto.return === 'function') continue;
    Object.defineProperty(proto, 'return', {
      configurable: true,
      writable: true,
      value: async function (this: { close(): Promise<void> }) {
        await this.close();
        return { done: true, value: undefined };
      },
    });
  }
}

const ENDPOINT_FILE = 'endpoint.json';
const ACQUIRE_TIMEOUT_MS = 10_000;
/** The header every request to the store carries: `NONCE.HMAC(key, "request" NONCE)` (see above). */
export const STORE_AUTH_HEADER = 'x-ecs-secrets-store-auth';
/** The header every answer of the owner carries: HMAC(key, "response" NONCE). */
export const STORE_PROOF_HEADER = 'x-ecs-secrets-store-proof';

/** The MAC of one side of the exchange; the labels keep a request's MAC from serving as an answer's. */
export function storeMac(key: string, side: 'request' | 'response', nonce: string): string {
  return createHmac('sha256', key).update(`${side}\n${nonce}`).digest('hex');
}

/** Where the store is served, as endpoint.json records it. */
interface Endpoint {
  pid: number;
  port: number;
  key: string;
}

interface Owned {
  server: Server;
  lock: ClassicLevel;
  /** dynalite's own request listener, behind the key check the port has: this process's requests go here. */
  serveDynamo: RequestListener;
  /** This process's requests being served in process: close() lets them finish, as server.close() does its connections'. */
  inFlight: Set<Promise<unknown>>;
}

/**
 * How long a request waits for the owner's answer. The AWS limit (REQUEST_TIMEOUT_MS, 2 s) says a
 * remote service that slow is broken; the owner is a process on this machine, and on a loaded
 * machine (many CLI processes starting beside a daemon on two cores) it can go unscheduled for
 * seconds while alive and about to answer. A client that spent the AWS budget on it failed a
 * create that would have succeeded, and a timed-out write sent again may already be applied. A
 * dead owner is seen at once (refused or reset), so only a hung owner waits this long.
 */
export const STORE_REQUEST_TIMEOUT_MS = 20_000;

/** Sends of one request to owners that refused it (each refusal: the owner had just exited). */
const REFUSED_RESENDS = 10;

export class EmbeddedDynamo {
  private ep: Endpoint | undefined;
  private owned: Owned | undefined;
  private acquiring: Promise<Endpoint> | undefined;
  readonly requestHandler: NodeHttpHandler;

  constructor(readonly dataDir: string) {
    const self = this;
    class EmbeddedHttpHandler extends NodeHttpHandler {
      override async handle(...args: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
        const [request] = args;
        // A refused connection was never processed, so it is safe to send again. Owners can come
        // and go several times within one request when many short CLI processes share a data dir
        // (each owns the store for its few hundred ms): re-elect and resend here, a bounded number
        // of times, rather than spending the SDK's three attempts on owners that just left.
        for (let attempt = 1; ; attempt++) {
          const ep = await self.currentEndpoint();
          // The owner's own requests need neither the port nor the key: straight to dynalite.
          const owned = self.owned;
          if (owned !== undefined && ep.pid === process.pid && dispatchable(request)) {
            const answer = dispatchInProcess(owned.serveDynamo, request, STORE_REQUEST_TIMEOUT_MS);
            owned.inFlight.add(answer);
            try {
              return await answer;
            } finally {
              owned.inFlight.delete(answer);
            }
          }
          const nonce = randomBytes(16).toString('hex');
          request.hostname = '127.0.0.1';
          request.port = ep.port;
          request.headers[STORE_AUTH_HEADER] = `${nonce}.${storeMac(ep.key, 'request', nonce)}`;
          let failure: unknown;
          try {
            const result = await super.handle(...args);
            const proof = Buffer.from(String(result.response.headers[STORE_PROOF_HEADER] ?? ''));
            const expected = Buffer.from(storeMac(ep.key, 'response', nonce));
            if (proof.length === expected.length && timingSafeEqual(proof, expected)) return result;
            // Not the owner: someone else holds the port its owner left. Nothing reached the
            // store, so the request may go again, to the owner elected next (see acquire).
            (result.response.body as { destroy?: () => void } | undefined)?.destroy?.();
            failure = new AppError(
              'unavailable',
              `the embedded store's port in ${self.dataDir} is held by a process that cannot prove the store key`,
            );
          } catch (err) {
            // Refused: the owner went away. Reset: the owner is going away; its close() drops
            // connections whose request it has not read yet (Node's server.close() closes idle
            // ones), so under load a client that connected just then is reset, its request never
            // processed. (An owner killed in the middle of a request resets one it may have
            // processed: the SDK would retry that too, and every write here is conditional and
            // recognises its own earlier landing.) Match the message too: across realms, e.g.
            // under jest, the SDK may wrap the error. Anything else is the SDK's to handle.
            const e = err as NodeJS.ErrnoException;
            if (
              !(
                e.code === 'ECONNREFUSED' ||
                e.code === 'ECONNRESET' ||
                /ECONNREFUSED|ECONNRESET/.test(String(e.message))
              )
            )
              throw err;
            failure = err;
          }
          // Forget that port and elect a new owner (possibly this process), then send again.
          if (self.ep === ep) self.ep = undefined;
          if (attempt >= REFUSED_RESENDS) throw failure;
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
        }
      }
    }
    this.requestHandler = new EmbeddedHttpHandler({
      ...HTTP_HANDLER_OPTIONS,
      requestTimeout: STORE_REQUEST_TIMEOUT_MS,
      httpAgent: { keepAlive: false },
    });
  }

  /** A placeholder the SDK needs; the handler rewrites host and port on every request. */
  get endpoint(): string {
    return 'http://127.0.0.1:1';
  }

  async currentPort(): Promise<number> {
    return (await this.currentEndpoint()).port;
  }

  private async currentEndpoint(): Promise<Endpoint> {
    if (this.ep !== undefined) return this.ep;
    this.acquiring ??= this.acquire().finally(() => (this.acquiring = undefined));
    return this.acquiring;
  }

  /** Stop serving (if we own the store) and release the lock; clients elsewhere re-elect. */
  async close(): Promise<void> {
    const owned = this.owned;
    this.owned = undefined;
    this.ep = undefined;
    this.requestHandler.destroy();
    if (!owned) return;
    removeEndpointFileIfOurs(this.dataDir);
    await Promise.allSettled([...owned.inFlight]);
    await new Promise<void>((resolve) => owned.server.close(() => resolve()));
    await owned.lock.close();
  }

  private async acquire(): Promise<Endpoint> {
    // Everything LevelDB (and the master key) creates from now on is 0600/0700. Process-wide, and
    // only in --local processes: a file meant for others must get its mode with chmod, which the
    // umask does not touch.
    process.umask(0o077);
    ensurePrivateDir(this.dataDir);
    const deadline = Date.now() + ACQUIRE_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const lock = await tryLock(path.join(this.dataDir, 'owner.lock'));
      if (lock) {
        this.ep = await this.serve(lock);
        return this.ep;
      }
      const ep = readEndpointFile(this.dataDir);
      if (ep && ep.pid !== process.pid && (await canConnect(ep.port))) {
        this.ep = ep;
        return ep;
      }
      await new Promise((r) => setTimeout(r, 25 + Math.random() * 50));
    }
    throw new AppError(
      'unavailable',
      `the embedded store in ${this.dataDir} is locked by another process that does not serve it; is an older version running?`,
    );
  }

  private async serve(lock: ClassicLevel): Promise<Endpoint> {
    // Files from before the umask (an older version, or a restore with cp) become private too;
    // the key files are not tightened but refused when loose, where they are read.
    tightenTree(this.dataDir, [MASTER_KEY_FILE, AGE_IDENTITY_FILE]);
    closeLevelIteratorsOnReturn();
    const server = dynalite({
      path: path.join(this.dataDir, 'dynamodb'),
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
    });
    const key = randomBytes(32).toString('base64url');
    const limit = raiseDescriptorLimit();
    const serveDynamo = guardWithKey(server, key, boundConnections(server, storeConnectionBound(limit?.soft)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    // The store must not keep a finished one-shot command alive: close() ends it explicitly.
    server.unref();
    const port = (server.address() as net.AddressInfo).port;
    const ep: Endpoint = { pid: process.pid, port, key };
    await writeFileAtomic(path.join(this.dataDir, ENDPOINT_FILE), JSON.stringify(ep), 0o600);
    this.owned = { server, lock, serveDynamo, inFlight: new Set() };
    return ep;
  }
}

/**
 * The store's open connections at most: a quarter of the descriptor limit (the owner is often a
 * daemon, whose own connections, rendered files and LevelDB's table files need the rest), within
 * [16, 256]. Clients do not keep connections alive, so a few dozen cover every honest crowd.
 */
export function storeConnectionBound(descriptorLimit = 1024): number {
  return Math.max(16, Math.min(256, Math.floor(descriptorLimit / 4)));
}

/**
 * Bound the accepted connections. The port is open to every local user, and one holding
 * connections without ever proving the store key would otherwise take descriptors until the owner
 * has none (LevelDB's table files and the daemon's own connections then fail). Past the bound,
 * the oldest connection that has not yet proven the key is closed: a client that proved it is
 * never dropped, an honest client proves it in its first request, and an idle holder is always
 * the oldest unproven. The answer: mark a connection proven.
 */
function boundConnections(server: Server, bound: number): (socket: net.Socket) => void {
  let open = 0;
  // Insertion order is age: the first entry is the oldest unproven connection.
  const unproven = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    open++;
    unproven.add(socket);
    socket.once('close', () => {
      open--;
      unproven.delete(socket);
    });
    if (open > bound) unproven.values().next().value?.destroy();
  });
  return (socket) => unproven.delete(socket);
}

/**
 * Put the store-key check in front of dynalite's request handler, on dynalite's own server (so its
 * close() still closes the database). A request without the key gets DynamoDB's access-denied
 * error and never reaches dynalite. The answer: dynalite's own listener, for this process's requests.
 */
function guardWithKey(server: Server, key: string, proven: (socket: net.Socket) => void): RequestListener {
  const [serveDynamo] = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const [nonce = '', mac = ''] = String(req.headers[STORE_AUTH_HEADER] ?? '').split('.');
    const given = Buffer.from(mac);
    const expected = Buffer.from(storeMac(key, 'request', nonce));
    if (/^[0-9a-f]{32}$/.test(nonce) && given.length === expected.length && timingSafeEqual(given, expected)) {
      proven(req.socket);
      res.setHeader(STORE_PROOF_HEADER, storeMac(key, 'response', nonce));
      return serveDynamo(req, res);
    }
    req.resume();
    const body = JSON.stringify({
      __type: 'com.amazonaws.dynamodb.v20120810#AccessDeniedException',
      message: 'this embedded store serves only processes that can read its data dir',
    });
    res.writeHead(403, {
      'Content-Type': 'application/x-amz-json-1.0',
      'Content-Length': Buffer.byteLength(body),
      Connection: 'close',
    });
    res.end(body);
  });
  return serveDynamo;
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

function readEndpointFile(dataDir: string): Endpoint | undefined {
  try {
    const ep = JSON.parse(fs.readFileSync(path.join(dataDir, ENDPOINT_FILE), 'utf8'));
    // An endpoint without a key is an older owner's: not ours to talk to (wait for it to go).
    return Number.isInteger(ep.port) && Number.isInteger(ep.pid) && typeof ep.key === 'string' && ep.key !== ''
      ? ep
      : undefined;
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
