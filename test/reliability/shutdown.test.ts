/**
 * Shutdown loses nothing. Requests sent before SIGTERM complete (here:
 * reads waiting on a slow DynamoDB when the signal arrives), their responses say
 * `Connection: close` so a keep-alive client never sends into a closing socket, idle keep-alive
 * connections are closed cleanly (FIN, not RST), no client sees a reset, and the daemon exits 0.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { type HttpResult, Witness, postJson, range, request, sleep, statusesOf } from './support';

const APP = 'shutdown';
const NAMES = range(1, 8).map((i) => `drain.n${i}`);
const w = new Witness('shutdown');
let s: StandIns;
let d: SpawnedDaemon;

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  d = await w.daemon('shutdown', ['--application-name', APP], { env: s.env, waitHealthy: true });
  for (const name of NAMES)
    expect((await postJson(d.port, `/latest/secrets/${name}`, { payload: `p-${name}` })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
});

/** A raw keep-alive connection that has had one complete exchange and now sits idle. */
async function idleConnection(port: number): Promise<{ closed: Promise<{ error?: string; reply: string }> }> {
  const sock = net.connect(port, '127.0.0.1');
  let reply = '';
  let error: string | undefined;
  sock.setEncoding('latin1').on('data', (c: string) => (reply += c));
  sock.on('error', (e) => (error = (e as NodeJS.ErrnoException).code ?? e.message));
  const closed = new Promise<{ error?: string; reply: string }>((resolve) =>
    sock.on('close', () => resolve({ error, reply })),
  );
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  for (let i = 0; i < 200 && !/\}$/.test(reply); i++) await sleep(10);
  expect(statusesOf(reply)).toEqual([200]);
  return { closed };
}

test('SIGTERM while reads are in flight: every one completes with Connection: close, idle connections end cleanly, exit 0', async () => {
  const idle = await Promise.all([idleConnection(d.port), idleConnection(d.port)]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: NAMES.length });
  // Open the agent's keep-alive connections first, so the reads below go over reused sockets.
  await Promise.all(NAMES.map(() => request(d.port, { path: '/health', agent })));
  // DynamoDB answers slowly (well inside the SDK's request timeout): reads are in flight when the signal lands.
  await s.dynamo.setFault({ delayMs: 800 });
  s.dynamo.resetCounts();
  const reads: Array<Promise<HttpResult | Error>> = NAMES.map((name) =>
    request(d.port, { path: `/latest/secrets/${name}`, agent }).catch((e: Error) => e),
  );
  // Every read has reached DynamoDB (the daemon is waiting on it) before the signal.
  for (let i = 0; i < 500 && s.dynamo.counts.Query < NAMES.length; i++) await sleep(10);
  expect(s.dynamo.counts.Query).toBe(NAMES.length);
  d.child.kill('SIGTERM');
  const results = await Promise.all(reads);
  await s.dynamo.setFault(null);
  for (const [i, r] of results.entries()) {
    expect(r instanceof Error ? `error: ${r.message}` : r.status).toBe(200);
    const ok = r as HttpResult;
    expect(ok.json()).toMatchObject({ name: NAMES[i], payload: `p-${NAMES[i]}` });
    expect(ok.headers.connection).toBe('close');
  }
  for (const c of idle) expect(await c.closed).toEqual({ error: undefined, reply: expect.any(String) });
  // Wait for the exit the signal caused (stopDaemon would send a second signal to a daemon still flushing).
  if (d.child.exitCode === null && d.child.signalCode === null) await new Promise((r) => d.child.once('exit', r));
  expect([d.child.exitCode, d.child.signalCode]).toEqual([0, null]);
  await w.stopDaemon(d);
  agent.destroy();
  expect(d.logs()).toMatch(/"msg":"stopped"/);
}, 60_000);

/**
 * One keep-alive client (its own agent, one connection at a time) reading `path` in a loop until a
 * request is refused (the listener is closed) or `stop` says so. Every failure is recorded with
 * whether it was sent on a reused connection: one the daemon had accepted and answered before.
 */
async function busyClient(port: number, path: string, stop: () => boolean, onAnswer: () => void = () => {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const failures: Array<{ code: string; reused: boolean }> = [];
  let answers = 0;
  let closeAnswers = 0;
  try {
    while (!stop()) {
      const outcome = await new Promise<{ code?: string; reused: boolean; close?: boolean }>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, path, agent, headers: { host: 'localhost' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ reused: req.reusedSocket, close: res.headers.connection === 'close' }));
          res.on('error', (e: NodeJS.ErrnoException) =>
            resolve({ code: e.code ?? e.message, reused: req.reusedSocket }),
          );
        });
        req.on('error', (e: NodeJS.ErrnoException) => resolve({ code: e.code ?? e.message, reused: req.reusedSocket }));
        req.end();
      });
      if (outcome.code === undefined) {
        if (answers++ === 0) onAnswer();
        if (outcome.close) closeAnswers++;
        continue;
      }
      failures.push({ code: outcome.code, reused: outcome.reused });
      if (outcome.code === 'ECONNREFUSED') break;
    }
  } finally {
    agent.destroy();
  }
  return { failures, answers, closeAnswers };
}

describe.each([
  ['the hot path (cached reads)', `/latest/secrets/${NAMES[0]}`],
  ['express (version route)', '/latest/version'],
])('SIGTERM with 32 busy keep-alive clients on %s', (_label, path) => {
  test('no request sent on an open connection is reset: each is answered, the drain closes connections by Connection: close', async () => {
    const drained = await w.daemon('drain', ['--application-name', APP, '--drain-seconds', '10'], {
      env: s.env,
      waitHealthy: true,
    });
    // Warm the cache, so the hot path answers the secret reads.
    expect((await request(drained.port, { path })).status).toBe(200);
    let exited = false;
    const exit = new Promise<void>((resolve) => drained.child.once('exit', () => resolve()));
    void exit.then(() => (exited = true));
    let answered = 0;
    const clients = range(1, 32).map(() =>
      busyClient(
        drained.port,
        path,
        () => exited,
        () => answered++,
      ),
    );
    // Every client has an open, answered connection (however busy the machine), then the daemon
    // is stopped mid-stream.
    while (answered < 32) await sleep(20);
    await sleep(100);
    drained.child.kill('SIGTERM');
    const results = await Promise.all(clients);
    await exit;
    // A connection the daemon accepted is never reset: a request sent on it before the drain
    // window ended got its answer (the window is far longer than a busy client takes to send).
    // A fresh connection may be refused (the listener is closed), or reset by the kernel when the
    // listener closed before accepting it: neither was ever an open connection of the daemon.
    const onOpenConnections = results.flatMap((r) => r.failures.filter((f) => f.reused));
    expect(onOpenConnections).toEqual([]);
    for (const r of results) {
      expect(r.answers).toBeGreaterThan(0);
      for (const f of r.failures) expect(['ECONNREFUSED', 'ECONNRESET']).toContain(f.code);
    }
    // The drain ran: connections ended because answers said so.
    expect(results.reduce((n, r) => n + r.closeAnswers, 0)).toBeGreaterThan(0);
    expect([drained.child.exitCode, drained.child.signalCode]).toEqual([0, null]);
    await w.stopDaemon(drained);
  }, 90_000);
});
