/**
 * The embedded store's memory: every Query and Scan dynalite serves reads LevelDB
 * through iterators, and each iterator left open holds a native LevelDB iterator and its snapshot
 * until the database closes, so an owner that leaks them grows without bound. Counted here at the
 * source: the LevelDB resources (iterators) open on the store's database, through the
 * abstract-level that dynalite itself loads, after hundreds of reads, writes and listings through
 * the real backend. The memory itself is measured by the bench's soak, never asserted in a test.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Backend, openBackend } from '../../src/backends/open-backend';

interface Resource {
  constructor: { name: string };
}
interface LevelPrototype {
  attachResource(r: Resource): void;
  detachResource(r: Resource): void;
}

const fromDynalite = createRequire(require.resolve('dynalite'));
const fromLevel = createRequire(fromDynalite.resolve('level'));
const abstractLevel = createRequire(fromLevel.resolve('classic-level'))('abstract-level') as {
  AbstractLevel: { prototype: LevelPrototype };
};
const proto = abstractLevel.AbstractLevel.prototype;
const attach = proto.attachResource;
const detach = proto.detachResource;
const open = new Set<Resource>();

let dir: string;
let backend: Backend;

beforeAll(async () => {
  proto.attachResource = function (this: LevelPrototype, r: Resource) {
    open.add(r);
    return attach.call(this, r);
  };
  proto.detachResource = function (this: LevelPrototype, r: Resource) {
    open.delete(r);
    return detach.call(this, r);
  };
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-iterators-'));
  backend = await openBackend({ app: 'iterators', local: true, dataDir: dir });
});
afterAll(async () => {
  await backend?.close();
  proto.attachResource = attach;
  proto.detachResource = detach;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const iterators = () => [...open].filter((r) => /Iterator/.test(r.constructor.name)).length;

test('hundreds of reads, writes, revokes and listings leave no LevelDB iterator open', async () => {
  const s = backend.service;
  const NAMES = 20;
  for (let i = 0; i < NAMES; i++) {
    await s.create(`team.secret-${i}`, `first-${i}`);
    await s.create(`team.secret-${i}`, `second-${i}`);
  }
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < NAMES; i++) {
      expect((await s.fetch(`team.secret-${i}`)).active).toBe(true); // Query, newest first
      await s.history(`team.secret-${i}`); // Query, oldest first, paged
    }
    expect(await s.list()).toHaveLength(NAMES); // Scan
  }
  await s.revoke('team.secret-0', 2);
  expect((await s.fetch('team.secret-0')).serial).toBe(1); // skips the revoked latest
  // Sequential requests: at most the last one's iterators may still be closing (a native call
  // on the thread pool). A leak leaves one or more per request: hundreds.
  expect(iterators()).toBeLessThanOrEqual(4);
}, 60_000);
