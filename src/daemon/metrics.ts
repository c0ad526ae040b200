/**
 * The daemon's metrics: counted in plain maps on the request path, and exposed through prom-client,
 * which is loaded when /metrics is first read. A sidecar nobody scrapes never loads prom-client
 * (about 12 MiB on Node 24), and a hot read costs a map update instead of prom-client's label
 * hashing. At a scrape the counts go to prom-client as metric objects of the shape its own Counter
 * and Histogram produce, so the exposition is the same text (test/unit/metrics.test.ts). Each
 * daemon has a registry of its own, so two daemons in one process (tests) never share counters.
 */
import type * as Prom from 'prom-client';
import type { CacheOutcome } from './cache';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

type Labels = Readonly<Record<string, string>>;

/** What prom-client's registry reads from a registered metric's get(): the shape its own metrics return. */
interface Exposed {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: Array<{ labels: Readonly<Record<string, string | number>>; value: number; metricName?: string }>;
}

/** A labelled counter: one number per label set, in first-seen order (as prom-client prints them). */
class PlainCounter {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** Count one for the series `key`; false when there is none yet (the caller then adds it with its labels). */
  inc(key: string): boolean {
    const s = this.series.get(key);
    if (s) s.value++;
    return s !== undefined;
  }

  add(key: string, labels: Labels): void {
    this.series.set(key, { labels, value: 1 });
  }

  /** What prom-client's registry reads from a metric (the shape of Counter#get). */
  async get(): Promise<Exposed> {
    const values = [...this.series.values()].map(({ labels, value }) => ({ labels, value }));
    return { name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values };
  }
}

/** A labelled histogram with fixed buckets (the counts per bucket, not cumulative, as prom-client keeps them). */
class PlainHistogram {
  private readonly series = new Map<string, { labels: Labels; buckets: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  /** Record `value` in the series `key`; false when there is none yet (the caller adds it, then records). */
  observe(key: string, value: number): boolean {
    const s = this.series.get(key);
    if (!s) return false;
    s.sum += value;
    s.count++;
    for (let i = 0; i < this.bounds.length; i++)
      if (value <= this.bounds[i]) {
        s.buckets[i]++;
        break;
      }
    return true;
  }

  add(key: string, labels: Labels): void {
    this.series.set(key, { labels, buckets: this.bounds.map(() => 0), sum: 0, count: 0 });
  }

  /** The shape of prom-client's Histogram#get: cumulative buckets, +Inf, sum and count per label set. */
  async get(): Promise<Exposed> {
    const values: Exposed['values'] = [];
    for (const { labels, buckets, sum, count } of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += buckets[i];
        values.push({ labels: { le, ...labels }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push(
        { labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket` },
        { labels, value: sum, metricName: `${this.name}_sum` },
        { labels, value: count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }
}

export class Metrics {
  private readonly requests = new PlainCounter(
    'ecs_secrets_http_requests_total',
    'HTTP requests by method, route pattern and status',
  );
  private readonly latency = new PlainHistogram(
    'ecs_secrets_http_request_duration_seconds',
    'HTTP request latency by method and route pattern',
    LATENCY_BUCKETS,
  );
  private readonly cache = new PlainCounter(
    'ecs_secrets_cache_events_total',
    'Cache lookups (secrets and configuration documents) by outcome: hit, miss, stale (served during a backend failure), bypass (no-cache)',
  );
  private readonly backendCalls = new PlainCounter(
    'ecs_secrets_backend_calls_total',
    'Calls to DynamoDB and KMS by operation',
  );
  private readonly backendErrors = new PlainCounter(
    'ecs_secrets_backend_errors_total',
    'Failed calls to DynamoDB and KMS by operation and error name',
  );
  private readonly changeReads = new PlainCounter(
    'ecs_secrets_change_record_reads_total',
    'Reads of the change record by result: ok or error',
  );
  private readonly invalidations = new PlainCounter(
    'ecs_secrets_invalidations_total',
    'Cache entries dropped because the change record named them, by kind (version, revoke, label, config, all)',
  );
  private cacheBytes?: { readCache: () => number; dataKeys: () => number };
  private changeRecordAge?: () => number | undefined;
  private registry?: Prom.Registry;

  /** One finished HTTP request: its count and its latency. */
  request(method: string, route: string, status: number, seconds: number): void {
    // Labels are built only for a new series: a hot read costs two map look-ups.
    const key = `${method} ${route} ${status}`;
    if (!this.requests.inc(key)) this.requests.add(key, { method, route, status: String(status) });
    const byRoute = `${method} ${route}`;
    if (!this.latency.observe(byRoute, seconds)) {
      this.latency.add(byRoute, { method, route });
      this.latency.observe(byRoute, seconds);
    }
  }

  cacheOutcome(outcome: CacheOutcome): void {
    if (!this.cache.inc(outcome)) this.cache.add(outcome, { outcome });
  }

  /** Gauges of the bytes the two caches hold, measured when /metrics is read (--cache-max-bytes bounds them). */
  trackCacheBytes(readCache: () => number, dataKeys: () => number): void {
    this.cacheBytes = { readCache, dataKeys };
  }

  /** One read of the change record. */
  changeRead(result: 'ok' | 'error'): void {
    if (!this.changeReads.inc(result)) this.changeReads.add(result, { result });
  }

  /** One cache entry (or, kind `all`, the whole cache) dropped because the change record named it. */
  invalidated(kind: string): void {
    if (!this.invalidations.inc(kind)) this.invalidations.add(kind, { kind });
  }

  /** When the change record was last read successfully (ms since the epoch), measured when /metrics is read. */
  trackChangeRecordAge(lastGoodRead: () => number | undefined): void {
    this.changeRecordAge = lastGoodRead;
  }

  backendCall(service: string, operation: string, error?: string): void {
    const call = `${service} ${operation}`;
    if (!this.backendCalls.inc(call)) this.backendCalls.add(call, { service, operation });
    if (!error) return;
    const failure = `${call} ${error}`;
    if (!this.backendErrors.inc(failure)) this.backendErrors.add(failure, { service, operation, error });
  }

  /** The Prometheus text of every metric, and its content type; the first call loads prom-client. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    this.registry ??= this.createRegistry();
    const registry = this.registry;
    return { contentType: registry.contentType, text: await registry.metrics() };
  }

  private createRegistry(): Prom.Registry {
    const prom = require('prom-client') as typeof Prom;
    const registry = new prom.Registry();
    for (const m of [
      this.requests,
      this.latency,
      this.cache,
      this.backendCalls,
      this.backendErrors,
      this.changeReads,
      this.invalidations,
    ])
      registry.registerMetric(m as unknown as Prom.Metric);
    // The process metrics (CPU, memory, event loop, GC) from here on; CPU and memory are the
    // process's totals at any time, the event-loop and GC histograms count from the first scrape.
    prom.collectDefaultMetrics({ register: registry, prefix: 'ecs_secrets_' });
    const bytes = this.cacheBytes;
    if (bytes) {
      new prom.Gauge({
        name: 'ecs_secrets_cache_bytes',
        help: 'Bytes held by the read cache (bodies, payloads, keys, overhead; bounded by --cache-max-bytes)',
        registers: [registry],
        collect() {
          this.set(bytes.readCache());
        },
      });
      new prom.Gauge({
        name: 'ecs_secrets_data_key_cache_bytes',
        help: 'Bytes held by the decrypted data-key cache (bounded by --cache-max-bytes)',
        registers: [registry],
        collect() {
          this.set(bytes.dataKeys());
        },
      });
    }
    const lastGoodRead = this.changeRecordAge;
    if (lastGoodRead) {
      new prom.Gauge({
        name: 'ecs_secrets_change_record_age_seconds',
        help: 'Seconds since the last successful read of the change record (absent until one succeeded)',
        registers: [registry],
        collect() {
          const at = lastGoodRead();
          if (at !== undefined) this.set((Date.now() - at) / 1000);
        },
      });
    }
    return registry;
  }
}
