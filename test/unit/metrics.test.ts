/**
 * The daemon counts in plain maps and loads prom-client at the first scrape (daemon/metrics.ts);
 * express is loaded by the first request the hot path does not answer (daemon/server.ts). The
 * promises: the exposition is the text prom-client's own Counter and Histogram would print for the
 * same events, and neither package is loaded before it is needed.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { Counter, Histogram, Registry } from 'prom-client';
import { Metrics } from '../../src/daemon/metrics';

/** The metrics as prom-client's own classes keep them: the reference the plain counters must match. */
function reference() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'ecs_secrets_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'ecs_secrets_http_request_duration_seconds',
    help: 'HTTP request latency by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const cache = new Counter({
    name: 'ecs_secrets_cache_events_total',
    help: 'Cache lookups (secrets and configuration documents) by outcome: hit, miss, stale (served during a backend failure), bypass (no-cache)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const calls = new Counter({
    name: 'ecs_secrets_backend_calls_total',
    help: 'Calls to DynamoDB and KMS by operation',
    labelNames: ['service', 'operation'] as const,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'ecs_secrets_backend_errors_total',
    help: 'Failed calls to DynamoDB and KMS by operation and error name',
    labelNames: ['service', 'operation', 'error'] as const,
    registers: [registry],
  });
  const changeReads = new Counter({
    name: 'ecs_secrets_change_record_reads_total',
    help: 'Reads of the change record by result: ok or error',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const invalidations = new Counter({
    name: 'ecs_secrets_invalidations_total',
    help: 'Cache entries dropped because the change record named them, by kind (version, revoke, label, config, all)',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  return { registry, requests, latency, cache, calls, errors, changeReads, invalidations };
}

/** The exposition without the process metrics (CPU, memory, GC: they differ between any two reads). */
const ours = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => !/^# HELP ecs_secrets_(process|nodejs)_|^# HELP ecs_secrets_(data_key_)?cache_bytes/.test(block))
    .join('\n\n')
    .trim();

test('the exposition is what prom-client prints for the same events, series in first-seen order', async () => {
  const m = new Metrics();
  const r = reference();
  // Latencies on bucket bounds, between them, above the last one and sub-microsecond.
  const events: Array<[string, string, number, number]> = [
    ['GET', '/latest/secrets/:name', 200, 0.0004],
    ['GET', '/latest/secrets/:name', 200, 0.0005],
    ['POST', '/v1/secrets/:name', 201, 0.012],
    ['GET', 'unmatched', 401, 7],
    ['GET', '/latest/secrets/:name', 404, 0.3],
    ['GET', '/latest/secrets/:name', 200, 1e-7],
    ['GET', '/health', 200, 2.5],
  ];
  for (const [method, route, status, seconds] of events) {
    m.request(method, route, status, seconds);
    r.requests.inc({ method, route, status: String(status) });
    r.latency.observe({ method, route }, seconds);
  }
  for (const outcome of ['miss', 'hit', 'hit', 'bypass', 'stale'] as const) {
    m.cacheOutcome(outcome);
    r.cache.inc({ outcome });
  }
  for (const [service, operation, error] of [
    ['dynamodb', 'Query', undefined],
    ['kms', 'Decrypt', 'AccessDeniedException'],
    ['dynamodb', 'Query', 'ThrottlingException'],
  ] as Array<[string, string, string | undefined]>) {
    m.backendCall(service, operation, error);
    r.calls.inc({ service, operation });
    if (error) r.errors.inc({ service, operation, error });
  }
  for (const result of ['ok', 'error', 'ok'] as const) {
    m.changeRead(result);
    r.changeReads.inc({ result });
  }
  for (const kind of ['revoke', 'version', 'revoke']) {
    m.invalidated(kind);
    r.invalidations.inc({ kind });
  }
  m.trackCacheBytes(
    () => 1234,
    () => 56,
  );
  const scraped = await m.scrape();
  expect(scraped.contentType).toBe(r.registry.contentType);
  expect(ours(scraped.text)).toBe(ours(await r.registry.metrics()));
  expect(ours(scraped.text)).toContain(
    'ecs_secrets_http_requests_total{method="GET",route="/latest/secrets/:name",status="200"} 3',
  );
  expect(scraped.text).toMatch(/^ecs_secrets_cache_bytes 1234$/m);
  expect(scraped.text).toMatch(/^ecs_secrets_data_key_cache_bytes 56$/m);
  expect(scraped.text).toMatch(/^ecs_secrets_process_resident_memory_bytes \d+$/m);

  // Counting goes on after the first scrape, into the same registry.
  m.cacheOutcome('hit');
  r.cache.inc({ outcome: 'hit' });
  expect(ours((await m.scrape()).text)).toBe(ours(await r.registry.metrics()));
});

test('an empty daemon prints every metric with no series, as prom-client does', async () => {
  expect(ours((await new Metrics().scrape()).text)).toBe(ours(await reference().registry.metrics()));
});

const DIST = path.join(__dirname, '..', '..', 'dist', 'src');

test('prom-client is loaded by the first scrape, express by the first request the hot path does not answer', () => {
  // The built modules in a fresh node: a real server on a free port, real cache, logger to /dev/null.
  const script = `
    const { DaemonServer } = require(${JSON.stringify(path.join(DIST, 'daemon/server.js'))});
    const { Metrics } = require(${JSON.stringify(path.join(DIST, 'daemon/metrics.js'))});
    const { SecretCache } = require(${JSON.stringify(path.join(DIST, 'daemon/cache.js'))});
    const pino = require('pino');
    const loaded = () => ['express', 'prom-client'].filter((p) =>
      Object.keys(require.cache).some((k) => k.includes('/node_modules/' + p + '/')));
    const steps = [];
    (async () => {
      const metrics = new Metrics();
      const server = new DaemonServer({
        service: undefined, cache: new SecretCache({ ttlMs: 1000, staleMs: 0, max: 10, maxBytes: 1 << 20 }),
        metrics, logger: pino({ level: 'info' }, pino.destination('/dev/null')), readOnly: true, readDeadlineMs: 1000,
      });
      server.ready = true;
      const { port } = await server.listen(0, '127.0.0.1');
      const get = async (p) => (await fetch('http://127.0.0.1:' + port + p)).status;
      steps.push(['start', loaded()]);
      steps.push(['/health ' + (await get('/health')) + ' ' + (await get('/v1/health/')), loaded()]);
      steps.push(['/version ' + (await get('/version')), loaded()]);
      steps.push(['/metrics ' + (await get('/metrics')), loaded()]);
      await server.close();
      process.stdout.write(JSON.stringify(steps));
    })();`;
  const steps = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: DIST }));
  expect(steps).toEqual([
    ['start', []],
    ['/health 200 200', []],
    ['/version 200', ['express']],
    ['/metrics 200', ['express', 'prom-client']],
  ]);
});
