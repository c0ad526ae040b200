/**
 * Who may talk to the sidecar, on the hot path and in express alike (one class, so the two layers
 * cannot disagree). First, before routing, whether the request may reach the sidecar at all:
 * - `Host` must be a name the sidecar is really reached by. A DNS-rebinding page (evil.example
 *   re-pointed at 127.0.0.1) reaches the port from the victim's browser, but its requests carry
 *   `Host: evil.example[:port]`, a dotted name we never answer to. Allowed: loopback names, IP
 *   literals (a browser sends an IP as Host only for a page served from that IP and port, i.e. by
 *   us, and we serve no pages), single-label names (bridge-mode `links` such as `ecs-secrets`:
 *   public DNS never resolves those), the bind address, and every `--allowed-host`.
 * - Writes (any method but GET/HEAD) carrying `Origin` or a `Sec-Fetch-Site` other than `none` come
 *   from a web page: refused. curl, the SDKs and the original's admin task send neither.
 * - The request target must be a path: an absolute-form target (what a proxy receives) carries an
 *   authority of its own that the Host check would not see.
 * - `X-Forwarded-For`: a sidecar is never behind a proxy, so a request that went through one is
 *   refused (as the AWS Secrets Manager Agent does).
 * The usual Host values are answered by one Set lookup; others are classified once and memoised
 * (bounded, so a client spraying random names cannot grow it).
 * Then, for every route but /health, the token of --token-file (header TOKEN_HEADER), when set.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import type http from 'node:http';
import { AppError } from '../../core/errors';
import { TOKEN_HEADER } from '../../core/http-headers';

const LOOPBACK_NAMES = ['localhost', 'localhost.', '127.0.0.1', '[::1]'];
const MEMO_MAX = 256;
const SINGLE_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

export class Access {
  private readonly allowed = new Set<string>();
  /** Host header value → allowed?, for values outside `allowed`. */
  private readonly memo = new Map<string, boolean>();
  private readonly tokenDigest: Buffer | undefined;
  /** Per connection, the token value it last proved right (see authorize). */
  private readonly verified = new WeakMap<object, string>();

  /**
   * `names`: the bind address and --allowed-host values (names or addresses, no port).
   * `token`: when set, every route but /health needs it.
   */
  constructor(names: readonly string[], token: string | undefined) {
    for (const n of [...LOOPBACK_NAMES, ...names]) this.allowed.add(bracket(n.toLowerCase()));
    this.tokenDigest = token === undefined ? undefined : digest(token);
  }

  /** After listen: the same names followed by the port, the form clients send. */
  addPort(port: number): void {
    for (const n of [...this.allowed]) this.allowed.add(`${n}:${port}`);
  }

  /** Host, proxy and cross-site checks: undefined when the request may proceed; the error to answer otherwise. */
  refuse(req: http.IncomingMessage): AppError | undefined {
    const h = req.headers;
    // An absolute-form target (`GET http://evil.example/... HTTP/1.1`) names its own authority,
    // which would outrank Host: only proxies receive that form, and the sidecar is never one.
    if (req.url === undefined || req.url.charCodeAt(0) !== 0x2f /* '/' */)
      return new AppError('usage', 'the request target must be a path starting with "/" (this sidecar is not a proxy)');
    const host = h.host;
    // HTTP/1.0 without Host: no browser sends that (Node itself refuses HTTP/1.1 without Host).
    if (host !== undefined && !this.allowed.has(host) && !this.hostAllowed(host))
      return new AppError(
        'misdirected',
        `this sidecar does not answer to Host ${quoteShort(host)}; add --allowed-host if it is really reached by that name`,
      );
    if (h['x-forwarded-for'] !== undefined)
      return new AppError(
        'usage',
        'requests relayed by a proxy (X-Forwarded-For) are refused: the sidecar is only for the containers of its task',
      );
    const m = req.method;
    if (m !== 'GET' && m !== 'HEAD') {
      const site = h['sec-fetch-site'];
      if (h.origin !== undefined || (site !== undefined && site !== 'none'))
        return new AppError(
          'forbidden',
          'cross-site write refused: requests from web pages (Origin, Sec-Fetch-Site) cannot write or revoke',
        );
    }
    return undefined;
  }

  /** The token check: undefined when allowed; the error to answer otherwise. */
  authorize(req: http.IncomingMessage): AppError | undefined {
    if (!this.tokenDigest) return undefined;
    const given = req.headers[TOKEN_HEADER];
    if (typeof given !== 'string' || given === '')
      return new AppError('unauthorized', `missing ${TOKEN_HEADER} header`);
    // A keep-alive connection that has already shown the right token and shows the same value
    // again needs no second hash. This compares the value with what the same connection sent
    // before, never with the token: it tells a client nothing it did not already know.
    if (this.verified.get(req.socket) === given) return undefined;
    // Compare digests: constant time, and independent of the token's length.
    if (!crypto.timingSafeEqual(digest(given), this.tokenDigest))
      return new AppError('unauthorized', `wrong ${TOKEN_HEADER}`);
    this.verified.set(req.socket, given);
    return undefined;
  }

  private hostAllowed(raw: string): boolean {
    const known = this.memo.get(raw);
    if (known !== undefined) return known;
    const verdict = classify(raw.toLowerCase(), this.allowed);
    if (this.memo.size >= MEMO_MAX) this.memo.clear();
    this.memo.set(raw, verdict);
    return verdict;
  }
}

function classify(host: string, allowed: Set<string>): boolean {
  if (allowed.has(host)) return true; // a known name in other letter case
  let name = host;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return false;
    name = host.slice(1, end);
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:[0-9]{1,5}$/.test(rest)) return false;
    return net.isIPv6(name);
  }
  const colon = host.indexOf(':');
  if (colon >= 0) {
    if (!/^[0-9]{1,5}$/.test(host.slice(colon + 1))) return false;
    name = host.slice(0, colon);
  }
  return allowed.has(name) || net.isIPv4(name) || SINGLE_LABEL.test(name);
}

/** IPv6 literals appear bracketed in Host. */
function bracket(n: string): string {
  return net.isIPv6(n) ? `[${n}]` : n;
}

function quoteShort(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** SHA-256 of a token; crypto.hash (Node ≥ 20.12) is the one-shot form, about twice as fast as createHash. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;
function digest(token: string): Buffer {
  return oneShotHash
    ? oneShotHash('sha256', token, 'buffer')
    : crypto.createHash('sha256').update(token, 'utf8').digest();
}
