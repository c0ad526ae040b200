/**
 * Faults, seen from the one-shot CLI: DynamoDB and KMS stopped, slower than the client timeout,
 * or throttling, while reading and writing. Every command ends by itself within a bound with one
 * clear line and exit 1, a failed write leaves nothing in the table, and everything works again
 * once the stand-in recovers. A lost write answer (the write happened, the client never heard)
 * must not produce a second version.
 */
import { type StandIns, createAppResources, startStandIns } from '../standins';
import type { Fault } from '../standins';
import { MAX_ATTEMPTS, REQUEST_TIMEOUT_MS } from '../../src/backends/aws';
import { json } from '../helpers/cli';
import {
  type BoundedResult,
  LostResponseProxy,
  Witness,
  adminDynamo,
  expectCleanFailure,
  isComplete,
  scanTable,
  serialsByName,
  withService,
} from './support';

const APP = 'fltcli';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
/**
 * What an operator may wait for a failing CLI command, from the client's own limits
 * (src/backends/aws.ts): a command makes at most two calls in a row to the faulty service, each
 * MAX_ATTEMPTS attempts of REQUEST_TIMEOUT_MS with at most 3 s of backoff between them, plus Node
 * start-up, which on a busy 2-core machine running ten CLIs at once can take 10 s and more.
 */
const CLI_BOUND_MS = 2 * (MAX_ATTEMPTS * REQUEST_TIMEOUT_MS + (MAX_ATTEMPTS - 1) * 3_000) + 15_000;
/** Far beyond the bound: only a timeout in the product ends these calls in time. */
const SLOW_MS = CLI_BOUND_MS + 30_000;
/** Between the two: a CLI still running here hangs. */
const KILL_AFTER_MS = CLI_BOUND_MS + 10_000;

const w = new Witness('faults-cli');
/** Two independent sets of stand-ins, so a DynamoDB fault and a KMS fault are exercised side by side. */
let s: StandIns;
let s2: StandIns;

const cliOn = (set: StandIns, args: string[], input?: string, env: Record<string, string> = {}) =>
  w.cli(['--application-name', APP, ...args], { env: { ...set.env, ...env }, input, killAfterMs: KILL_AFTER_MS });
const cli = (args: string[], input?: string, env: Record<string, string> = {}) => cliOn(s, args, input, env);

async function tableItems(set: StandIns = s) {
  const client = adminDynamo(set.dynamo.endpoint);
  try {
    return await scanTable(client, TABLE);
  } finally {
    client.destroy();
  }
}

type Target = 'dynamo' | 'kms';
const FAULTS: Array<[string, Fault]> = [
  ['stopped', { down: true }],
  ['slower than the client timeout', { delayMs: SLOW_MS }],
  ['throttling', { throttle: true }],
];
const tagOf = (target: Target, label: string) => `${target}-${label.split(' ')[0]}`;

beforeAll(async () => {
  [s, s2] = await Promise.all([startStandIns(), startStandIns()]);
  await Promise.all([
    createAppResources(s.kms, s.dynamo.endpoint, APP),
    createAppResources(s2.kms, s2.dynamo.endpoint, APP),
  ]);
  for (const set of [s, s2])
    await withService(APP, set.env, async (svc) => {
      await svc.create('stable', 'stable-v1');
      await svc.create('canary.secret', w.canary);
      // A version per fault to revoke during it (revoke needs DynamoDB only).
      for (const [label] of FAULTS)
        for (const t of ['dynamo', 'kms'] as Target[]) await svc.create(`rv.${tagOf(t, label)}`, 'r');
    });
  w.wrote();
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
  await s2?.close();
});

/** One fault on one stand-in: every command ends in time, fails cleanly or (KMS faults) works, writes nothing; then recovery. */
async function scenario(set: StandIns, target: Target, label: string, fault: Fault): Promise<void> {
  const tag = tagOf(target, label);
  const before = await tableItems(set);
  await set[target].setFault(fault);
  let results: Record<string, BoundedResult>;
  try {
    const runs: Record<string, Promise<BoundedResult>> = {
      fetch: cliOn(set, ['fetch', '--name', 'stable']),
      create: cliOn(set, ['create', '--name', `new.${tag}`, '--payload-location', '-'], `${w.canary}-${tag}`),
      revoke: cliOn(set, ['revoke', '--name', `rv.${tag}`, '--serial', '1']),
      list: cliOn(set, ['list']),
      history: cliOn(set, ['history', '--name', 'stable']),
    };
    results = Object.fromEntries(await Promise.all(Object.entries(runs).map(async ([k, p]) => [k, await p] as const)));
  } finally {
    await set[target].setFault(null);
  }

  const needsKms = new Set(['fetch', 'create']);
  for (const [what, r] of Object.entries(results)) {
    const where = `${target} ${label}: ${what}`;
    expect({ where, killed: r.killed }).toEqual({ where, killed: false }); // nothing hangs
    expect({ where, inBound: r.ms < CLI_BOUND_MS, ms: r.ms }).toMatchObject({ where, inBound: true });
    if (target === 'dynamo' || needsKms.has(what)) {
      expectCleanFailure(r, 1, /backend unavailable/);
      if (fault.throttle) expect(r.stderr).toMatch(/Throttl|Rate/);
    } else {
      // A KMS outage does not stop revoke, list or history: they never touch KMS.
      expect({ where, code: r.code, stderr: r.stderr }).toEqual({ where, code: 0, stderr: '' });
    }
  }

  // A failed write leaves nothing behind: the same items, all complete.
  const after = await tableItems(set);
  expect({ target, label, keys: serialsByName(after) }).toEqual({ target, label, keys: serialsByName(before) });
  expect(after.every(isComplete)).toBe(true);

  // Recovery: writes and reads work again, and the next version takes the next serial.
  const created = await cliOn(set, ['create', '--name', `new.${tag}`, '--payload-location', '-'], `${w.canary}-${tag}`);
  expect([created.code, created.stderr]).toEqual([0, '']);
  expect(json(created)).toEqual({ name: `new.${tag}`, serial: 1 });
  expect(json(await cliOn(set, ['fetch', '--name', `new.${tag}`]))).toEqual({
    name: `new.${tag}`,
    serial: 1,
    payload: `${w.canary}-${tag}`,
    active: true,
  });
}

describe.each(FAULTS)('DynamoDB and KMS %s', (label, fault) => {
  test(
    'reads and writes end within the bound with one line and exit 1, write nothing, and recover',
    async () => {
      // Both to the end, even when one fails: a scenario left running would clear its fault during the next test.
      const outcomes = await Promise.allSettled([
        scenario(s, 'dynamo', label, fault),
        scenario(s2, 'kms', label, fault),
      ]);
      for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
    },
    2 * KILL_AFTER_MS,
  );
});

describe('a write whose answer is lost (it happened; the client never heard)', () => {
  let proxy: LostResponseProxy;
  beforeAll(async () => {
    proxy = new LostResponseProxy(s.dynamo.endpoint);
    await proxy.start();
  });
  afterAll(async () => proxy?.close());
  const viaProxy = (args: string[], input?: string) => cli(args, input, { AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint });

  test('create: the retry recognises its own write: one version, not two', async () => {
    proxy.loseNext('PutItem', 1);
    const r = await viaProxy(['create', '--name', 'lost.answer', '--payload-location', '-'], `${w.canary}-lost`);
    expect(proxy.lost).toEqual(['PutItem']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(json(r)).toEqual({ name: 'lost.answer', serial: 1 });
    const items = (await tableItems()).filter((i) => i.Name.S === 'lost.answer');
    expect(items.map((i) => i.Serial.N)).toEqual(['1']);
    expect(json(await cli(['fetch', '--name', 'lost.answer']))).toEqual({
      name: 'lost.answer',
      serial: 1,
      payload: `${w.canary}-lost`,
      active: true,
    });
  });

  test('revoke: the retry of an applied revoke still succeeds', async () => {
    proxy.loseNext('UpdateItem', 1);
    const r = await viaProxy(['revoke', '--name', 'lost.answer', '--serial', '1']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(json(r)).toEqual({ name: 'lost.answer', serial: 1, active: false });
    expect(json(await cli(['fetch', '--name', 'lost.answer', '--serial', '1']))).toEqual({
      name: 'lost.answer',
      serial: 1,
      payload: '',
      active: false,
    });
  });

  test('label set: the retry recognises its own move: one event, not two', async () => {
    // The starting point, made in this process: what is tested is the retried move below.
    await withService(APP, s.env, async (svc) => {
      await svc.create('lost.label', 'x');
      await svc.setLabel('lost.label', 'prod', 1);
    });
    proxy.loseNext('PutItem', 1);
    const r = await viaProxy(['label', 'set', '--name', 'lost.label', '--label', 'prod', '--serial', '1']);
    expect(proxy.lost).toContain('PutItem');
    expect([r.code, r.stderr]).toEqual([0, '']);
    const listed = json<{ events: Array<{ from?: number; to?: number }> }>(
      await cli(['label', 'list', '--name', 'lost.label']),
    );
    expect(listed.events.map((e) => [e.from, e.to])).toEqual([
      [undefined, 1],
      [1, 1],
    ]);
  });

  test('every answer lost: the command fails cleanly within the bound, and what it wrote is one complete version', async () => {
    proxy.loseNext('PutItem', 10);
    const r = await viaProxy(['create', '--name', 'lost.all', '--payload', 'x']);
    proxy.loseNext('PutItem', 0);
    expect(r.ms).toBeLessThan(CLI_BOUND_MS);
    expectCleanFailure(r, 1, /backend unavailable/);
    const items = (await tableItems()).filter((i) => i.Name.S === 'lost.all');
    expect(items.length).toBeLessThanOrEqual(1);
    expect(items.every(isComplete)).toBe(true);
  });
});

test('secret hygiene: the canary was written and read, and no process output holds it', async () => {
  const f = await cli(['fetch', '--name', 'canary.secret']);
  expect(json(f)).toMatchObject({ payload: w.canary });
  // --debug too: stack traces of failures carry causes, which must not carry payloads.
  await s.kms.setFault({ throttle: true });
  try {
    const r = await cli(['create', '--name', 'canary.secret', '--payload', w.canary, '--debug']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at /); // debug really was on
  } finally {
    await s.kms.setFault(null);
  }
  await w.finish();
  expect(w.canaryWrites).toBeGreaterThan(0);
  expect(w.canaryReads).toBeGreaterThan(0);
  expect(w.leaks()).toEqual([]);
  // At rest the table holds ciphertext only.
  expect(JSON.stringify(await tableItems())).not.toContain(w.canary);
});
