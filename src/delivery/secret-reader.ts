/**
 * Where export and exec read secrets from: straight from the backend (the service), or through a
 * running sidecar daemon (`--daemon-url`, with the token from ECS_SECRETS_TOKEN), so an
 * application container needs no AWS permissions of its own. Both give the same records and the
 * same errors (AppError kinds), and `readSelection` turns a selection into values with either.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { MAX_WAIT_SECONDS } from '../core/changes';
import { mapLimited } from '../core/concurrency';
import { AppError, kindOfStatus, oneLine } from '../core/errors';
import { TOKEN_HEADER } from '../core/http-headers';
import { parseSecretRef } from '../core/labels';
import type { SecretRecord, SecretsService } from '../core/secrets-service';
import { type SelectedValue, type Selection, needsListing, resolveSelection } from './selection';

export interface SecretSource {
  /** The names under `prefix`, with their latest serial. */
  list(prefix: string): Promise<Array<{ name: string; latestSerial: number }>>;
  /** The latest active version of one secret (not_found when there is none). */
  latest(name: string): Promise<SecretRecord>;
  /**
   * Resolves as soon as the latest serial of one of `values` is no longer the one given, or when
   * `seconds` (at most MAX_WAIT_SECONDS) pass, or `signal` aborts. Only a daemon can wait (its
   * long-poll, woken by its change record); without it the caller re-reads on a timer.
   */
  waitForChange?(values: readonly Delivered[], seconds: number, signal: AbortSignal): Promise<void>;
}

/** A secret as delivered: the reference read and the serial it had (none: nothing read yet). */
export interface Delivered {
  name: string;
  serial?: number;
}

/** Reads straight from the backend. */
export function serviceSource(service: SecretsService): SecretSource {
  return {
    list: async (prefix) => (await service.list()).filter((n) => n.name.startsWith(prefix)),
    latest: (name) => service.fetch(name),
  };
}

/** A daemon that does not answer within this long is "unavailable" (its own read deadline is 4 s). */
export const DAEMON_REQUEST_TIMEOUT_MS = 15_000;

/** Validate `--daemon-url`: an http(s) URL with no query or fragment; the base the routes hang off. */
export function parseDaemonUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AppError(
      'usage',
      `invalid --daemon-url ${JSON.stringify(value.slice(0, 100))}: expected e.g. http://localhost:8080`,
    );
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== ''
  )
    throw new AppError(
      'usage',
      `invalid --daemon-url ${JSON.stringify(value.slice(0, 100))}: expected http(s)://HOST:PORT, without query or credentials`,
    );
  return url;
}

/** Reads through a sidecar's REST routes under /v1. */
export function daemonSource(base: URL, token: string | undefined): SecretSource {
  const root = base.href.replace(/\/+$/, '');
  /** One request; undefined when a long-poll's wait ended (304) or `signal` aborted it. */
  const call = async (
    path: string,
    what: string,
    wait?: { seconds: number; signal: AbortSignal },
  ): Promise<unknown> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined && token !== '') headers[TOKEN_HEADER] = token;
    // A long-poll may take its whole wait before the daemon's own deadline starts.
    const timeout = AbortSignal.timeout(DAEMON_REQUEST_TIMEOUT_MS + (wait?.seconds ?? 0) * 1000);
    let res: Response;
    try {
      res = await fetch(`${root}${path}`, {
        headers,
        signal: wait ? AbortSignal.any([timeout, wait.signal]) : timeout,
      });
    } catch (err) {
      if (wait?.signal.aborted) return undefined;
      // fetch wraps the socket error: TypeError("fetch failed") with the errno code in its cause
      // (or in the cause's AggregateError list when every address was tried).
      const e = err as {
        name?: string;
        cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> };
      };
      const code =
        e.cause?.code ?? e.cause?.errors?.find((x) => x.code)?.code ?? oneLine(e.cause?.message ?? 'unreachable');
      const why = e.name === 'TimeoutError' ? `no answer within ${DAEMON_REQUEST_TIMEOUT_MS} ms` : code;
      throw new AppError('unavailable', `daemon at ${root} unavailable ${what}: ${why}`, { cause: err });
    }
    const text = await res.text();
    if (res.status === 304 && wait) return undefined;
    if (res.ok) {
      try {
        return JSON.parse(text);
      } catch {
        throw new AppError(
          'unavailable',
          `daemon at ${root} answered ${what} with something that is not JSON (is it an ecs-secrets daemon?)`,
        );
      }
    }
    let message = `HTTP ${res.status}`;
    try {
      const body = JSON.parse(text) as { error?: unknown };
      if (typeof body.error === 'string') message = oneLine(body.error).slice(0, 300);
    } catch {
      // not our daemon's error shape: the status says enough
    }
    const kind = kindOfStatus(res.status);
    const hint = res.status === 401 ? ' (set ECS_SECRETS_TOKEN to the daemon token)' : '';
    throw new AppError(kind, `daemon at ${root} ${what}: ${message}${hint}`);
  };
  const notOurs = (what: string) =>
    new AppError(
      'unavailable',
      `daemon at ${root} answered ${what} with an unexpected shape (is it an ecs-secrets daemon?)`,
    );
  const list = async (prefix: string) => {
    const what = `listing ${prefix}*`;
    const names = await call(`/v1/secrets?prefix=${encodeURIComponent(prefix)}`, what);
    if (
      !Array.isArray(names) ||
      !names.every((n) => typeof n?.name === 'string' && Number.isSafeInteger(n?.latestSerial))
    )
      throw notOurs(what);
    return names as Array<{ name: string; latestSerial: number }>;
  };
  const bySerial = async (ref: string, serial?: number): Promise<SecretRecord> => {
    const what = `reading ${ref}`;
    // NAME@LABEL is read as ?label=LABEL on the name's route.
    const { name, label } = parseSecretRef(ref);
    const record = await call(
      `/v1/secrets/${encodeURIComponent(name)}${serial === undefined ? '' : `/${serial}`}${label === undefined ? '' : `?label=${label}`}`,
      what,
    );
    if (!isRecord(record, name)) throw notOurs(what);
    return record;
  };
  /** One long-poll: resolves when the daemon answers a serial other than `after`, or its wait ends. */
  const waitOne = async (ref: string, after: number, seconds: number, signal: AbortSignal): Promise<void> => {
    const what = `waiting for a change of ${ref}`;
    const { name, label } = parseSecretRef(ref);
    const query = `wait=${seconds}&after=${after}${label === undefined ? '' : `&label=${label}`}`;
    const record = await call(`/v1/secrets/${encodeURIComponent(name)}?${query}`, what, { seconds, signal });
    if (record !== undefined && !isRecord(record, name)) throw notOurs(what);
  };
  return {
    list,
    latest: async (name) => {
      if (name !== VERSION_ROUTE_NAME) return bySerial(name);
      // GET /secrets/version is the daemon's version route, so a secret named "version" is read by
      // serial: the latest active one, walking down from the latest serial past revoked ones.
      const listed = (await list(name)).find((n) => n.name === name);
      for (let serial = listed?.latestSerial ?? 0; serial >= 1; serial--) {
        const record = await bySerial(name, serial);
        if (record.active) return record;
      }
      throw new AppError('not_found', `secret ${name} not found (no active version)`);
    },
    waitForChange: async (values, secondsIn, signal) => {
      const seconds = Math.min(MAX_WAIT_SECONDS, Math.max(1, Math.ceil(secondsIn)));
      // The daemon's version route cannot wait: that one name is seen at the next re-read.
      const waitable = values.filter((v) => parseSecretRef(v.name).name !== VERSION_ROUTE_NAME);
      const done = new AbortController();
      const stop = () => done.abort();
      signal.addEventListener('abort', stop, { once: true });
      try {
        if (waitable.length === 0)
          await delay(seconds * 1000, undefined, { signal: done.signal }).catch(() => undefined);
        // The first answer (a change, or the end of the wait) ends every other wait.
        else await Promise.race(waitable.map((v) => waitOne(v.name, v.serial ?? 0, seconds, done.signal)));
      } finally {
        signal.removeEventListener('abort', stop);
        done.abort();
      }
    },
  };
}

/** The one secret name whose latest-version route the daemon gives to its version (GET /secrets/version). */
const VERSION_ROUTE_NAME = 'version';

function isRecord(x: unknown, name: string): x is SecretRecord {
  const r = x as Partial<SecretRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.name === name &&
    Number.isSafeInteger(r.serial) &&
    typeof r.payload === 'string' &&
    typeof r.active === 'boolean'
  );
}

/**
 * Resolve a selection and read the latest active version of every selected secret. Names under
 * the prefixes come from one listing per prefix; reads run a few at a time. A missing secret fails
 * the whole read (not_found, naming it): delivering a partial environment would start the
 * application without a secret it expects.
 */
export async function readSelection(source: SecretSource, selection: Selection): Promise<SelectedValue[]> {
  const available: string[] = [];
  if (needsListing(selection))
    for (const prefix of selection.prefixes) for (const n of await source.list(prefix)) available.push(n.name);
  const pairs = resolveSelection(selection, available);
  const explicit = new Set(selection.names.map((n) => n.name));
  const values = await mapLimited(pairs, 8, async (pair): Promise<SelectedValue | undefined> => {
    let record: SecretRecord;
    try {
      record = await source.latest(pair.name);
    } catch (err) {
      // A name listed under a prefix whose every version is revoked is gone, not missing:
      // skip it. A name asked for explicitly must exist.
      if (err instanceof AppError && err.kind === 'not_found' && !explicit.has(pair.name)) return undefined;
      throw err;
    }
    return {
      ...pair,
      payload: record.payload,
      serial: record.serial,
      ...(record.encoding ? { encoding: record.encoding } : {}),
    };
  });
  const found = values.filter((v): v is SelectedValue => v !== undefined);
  if (found.length === 0)
    throw new AppError(
      'not_found',
      `no active secret under ${selection.prefixes.map((p) => JSON.stringify(p)).join(', ')}`,
    );
  return found;
}
