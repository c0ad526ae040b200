/**
 * Bench figures of the daemon's prefetch: how long a sidecar told to prefetch 100
 * secrets takes from spawn to /health 200, what that costs the backend, and that every first read
 * is then a cache hit. Self-contained: it stores its own secrets (under their own prefix) once.
 */
import { randomBytes } from 'node:crypto';
import type { StandIns } from '../test/standins';
import type { Figures } from './figures';
import { type DaemonProcess, type DaemonSpawnOptions, request, startDaemon, storeSecret } from './procs';

export const PREFETCH_SECRETS = 100;
const PREFIX = 'prefetch.';
const names = Array.from({ length: PREFETCH_SECRETS }, (_, i) => `${PREFIX}secret-${String(i).padStart(3, '0')}`);
let seeded = false;

/**
 * Store the 100 secrets through a running daemon. The bench calls this with the daemon that stores
 * its own secrets, saving a daemon start; a measurement before it stores them with a daemon of its own.
 */
export async function storePrefetchSecrets(d: DaemonProcess): Promise<void> {
  for (const name of names) await storeSecret(d, name, randomBytes(24).toString('base64'));
  seeded = true;
}

async function seed(o: DaemonSpawnOptions): Promise<void> {
  const d = await startDaemon(o);
  try {
    await storePrefetchSecrets(d);
  } finally {
    await d.stop();
  }
}

/** One measurement: spawn a daemon with --prefetch-prefix over the 100 secrets, until healthy, then read each once. */
export async function measurePrefetch(o: DaemonSpawnOptions, s: StandIns): Promise<Figures> {
  if (!seeded) await seed(o);
  s.dynamo.resetCounts();
  s.kms.resetCounts();
  const d = await startDaemon({ ...o, extraArgs: [...(o.extraArgs ?? []), '--prefetch-prefix', PREFIX] });
  try {
    const reads = (s.dynamo.counts.Query ?? 0) + (s.dynamo.counts.GetItem ?? 0);
    let nonHits = 0;
    for (const name of names) {
      const r = await request(`${d.url}/latest/secrets/${name}`, { headers: d.headers });
      if (r.status !== 200) throw new Error(`reading prefetched ${name}: ${r.status}`);
      if (r.headers['x-ecs-secrets-cache'] !== 'hit') nonHits++;
    }
    return {
      'prefetch.healthyMs': d.healthyMs,
      'prefetch.firstReadNonHits': nonHits,
      'prefetch.dynamodbReadsPerSecret': reads / PREFETCH_SECRETS,
      'prefetch.kmsPerSecret': s.kms.counts.total / PREFETCH_SECRETS,
    };
  } finally {
    await d.stop();
  }
}
