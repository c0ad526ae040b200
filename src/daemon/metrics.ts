/**
 * Prometheus metrics (prom-client) on a registry of the daemon's own, so two daemons in one
 * process (tests) never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheOutcome } from './cache';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'ecs_secrets_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'ecs_secrets_http_request_duration_seconds',
    help: 'HTTP request latency by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly cache = new Counter({
    name: 'ecs_secrets_cache_events_total',
    help: 'Cache lookups (secrets and configuration documents) by outcome: hit, miss, stale (served during a backend failure), bypass (no-cache)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly backendCalls = new Counter({
    name: 'ecs_secrets_backend_calls_total',
    help: 'Calls to DynamoDB and KMS by operation',
    labelNames: ['service', 'operation'] as const,
    registers: [this.registry],
  });
  readonly backendErrors = new Counter({
    name: 'ecs_secrets_backend_errors_total',
    help: 'Failed calls to DynamoDB and KMS by operation and error name',
    labelNames: ['service', 'operation', 'error'] as const,
    registers: [this.registry],
  });
  readonly changeReads = new Counter({
    name: 'ecs_secrets_change_record_reads_total',
    help: 'Reads of the change record by result: ok or error',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly invalidations = new Counter({
    name: 'ecs_secrets_invalidations_total',
    help: 'Cache entries dropped because the change record named them, by kind (version, revoke, label, config, all)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ecs_secrets_' });
  }

  /** One finished HTTP request: its count and its latency. */
  request(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.latency.observe({ method, route }, seconds);
  }

  cacheOutcome(outcome: CacheOutcome): void {
    this.cache.inc({ outcome });
  }

  /** Gauges of the bytes the two caches hold, measured when /metrics is read (--cache-max-bytes bounds them). */
  trackCacheBytes(readCache: () => number, dataKeys: () => number): void {
    new Gauge({
      name: 'ecs_secrets_cache_bytes',
      help: 'Bytes held by the read cache (bodies, payloads, keys, overhead; bounded by --cache-max-bytes)',
      registers: [this.registry],
      collect() {
        this.set(readCache());
      },
    });
    new Gauge({
      name: 'ecs_secrets_data_key_cache_bytes',
      help: 'Bytes held by the decrypted data-key cache (bounded by --cache-max-bytes)',
      registers: [this.registry],
      collect() {
        this.set(dataKeys());
      },
    });
  }

  /** Seconds since the change record was last read successfully, measured when /metrics is read. */
  trackChangeRecordAge(lastGoodRead: () => number | undefined): void {
    new Gauge({
      name: 'ecs_secrets_change_record_age_seconds',
      help: 'Seconds since the last successful read of the change record (absent until one succeeded)',
      registers: [this.registry],
      collect() {
        const at = lastGoodRead();
        if (at !== undefined) this.set((Date.now() - at) / 1000);
      },
    });
  }

  backendCall(service: string, operation: string, error?: string): void {
    this.backendCalls.inc({ service, operation });
    if (error) this.backendErrors.inc({ service, operation, error });
  }
}
