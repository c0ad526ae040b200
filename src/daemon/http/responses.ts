/**
 * How the daemon answers: every reply, from the hot path, from express or straight onto a socket,
 * goes out through here, with the same headers in the same order.
 */
import * as http from 'node:http';
import type { AppError } from '../../core/errors';
import { CACHE_HEADER } from '../../core/http-headers';
import type { CacheEntry, CacheOutcome } from '../cache';

export const JSON_TYPE = 'application/json; charset=utf-8';
const HIT_HEADERS: readonly string[] = [CACHE_HEADER, 'hit'];
const NO_HEADERS: readonly string[] = [];

/**
 * One answer. `extra` is a flat [name, value, ...] list. The hot path passes `reqId`: it has set
 * no header yet, so the whole set goes to node in one array, with no per-header bookkeeping;
 * express has already set X-Request-Id (first, like here), and node merges the rest after it: the
 * same bytes either way.
 */
export function send(
  res: http.ServerResponse,
  status: number,
  body: Buffer,
  extra: readonly string[] = NO_HEADERS,
  reqId?: string,
  contentType = JSON_TYPE,
): void {
  const headers = reqId === undefined ? [] : ['X-Request-Id', reqId];
  headers.push(
    'Content-Type',
    contentType,
    'Content-Length',
    String(body.length),
    'Cache-Control',
    'no-store',
    'X-Content-Type-Options',
    'nosniff',
  );
  for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
  res.writeHead(status, headers);
  res.end(body);
}

/** The message each error answer carried, for its log line (the observer reads it when the response ends). */
const reasons = new WeakMap<http.ServerResponse, string>();

/** An AppError as `{"error": ...}` with the status of its kind; an internal error shows only the request id. */
export function sendError(res: http.ServerResponse, err: AppError, reqId: string): void {
  const message = err.kind === 'internal' ? `internal error (request ${reqId})` : err.message;
  reasons.set(res, message);
  send(res, err.httpStatus, Buffer.from(JSON.stringify({ error: message })));
}

/** Why a response was an error: the message its body carried (never a payload: no error message holds one). */
export function errorReason(res: http.ServerResponse): string | undefined {
  return reasons.get(res);
}

/** A cached body (a secret's record or a configuration document) with its cache headers. */
export function sendCached(
  res: http.ServerResponse,
  entry: CacheEntry<unknown>,
  outcome: CacheOutcome,
  reqId?: string,
  contentType = JSON_TYPE,
): void {
  let headers = outcome === 'hit' ? HIT_HEADERS : [CACHE_HEADER, outcome];
  if (outcome === 'stale') {
    const age = Math.round((Date.now() - entry.fetchedAt) / 1000);
    headers = [...headers, 'Age', String(age), 'Warning', '110 - "Response is Stale"'];
  }
  send(res, 200, entry.body, headers, reqId, contentType);
}

/** A whole HTTP/1.1 reply written straight to a socket that node's parser gave up on; the connection closes after it. */
export function rawReply(status: number, message: string): string {
  const body = JSON.stringify({ error: message });
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`
  );
}

/** A request path short enough to stay one readable line (error messages and log lines). */
export function shortPath(p: string): string {
  return p.length > 100 ? `${p.slice(0, 97)}...` : p;
}

/** A request path for an error message: quoted and short. */
export function safePath(p: string): string {
  return JSON.stringify(shortPath(p));
}
