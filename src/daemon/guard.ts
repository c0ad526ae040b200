/**
 * Who may talk to the sidecar at all, decided before auth and routing, on the hot path and in
 * express alike (one function, so the two layers cannot disagree):
 * - `Host` must be a name the sidecar is really reached by. A DNS-rebinding page (evil.example
 *   re-pointed at 127.0.0.1) reaches the port from the victim's browser, but its requests carry
 *   `Host: evil.example[:port]`, a dotted name we never answer to. Allowed: loopback names, IP
 *   literals (a browser sends an IP as Host only for a page served from that IP and port, i.e. by
 *   us, and we serve no pages), single-label names (bridge-mode `links` such as `ecs-secrets`:
 *   public DNS never resolves those), the bind address, and every `--allowed-host`.
 * - Writes (any method but GET/HEAD) carrying `Origin` or a `Sec-Fetch-Site` other than `none` come
 *   from a web page: refused. curl, the SDKs and the original's admin task send neither.
 * - `X-Forwarded-For`: a sidecar is never behind a proxy, so a request that went through one is
 *   refused (as the AWS Secrets Manager Agent does).
 * The usual Host values are answered by one Set lookup; others are classified once and memoised
 * (bounded, so a client spraying random names cannot grow it).
 */
import * as net from 'node:net';
import type http from 'node:http';
import { AppError } from '../core/errors';

const LOOPBACK_NAMES = ['localhost', 'localhost.', '127.0.0.1', '[::1]'];
const MEMO_MAX = 256;
const SINGLE_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

export class RequestGuard {
  private readonly allowed = new Set<string>();
  /** Host header value → allowed?, for values outside `allowed`. */
  private readonly memo = new Map<string, boolean>();

  /** `names`: the bind address and --allowed-host values (names or addresses, no port). */
  constructor(names: readonly string[]) {
    for (const n of [...LOOPBACK_NAMES, ...names]) this.allowed.add(bracket(n.toLowerCase()));
  }

  /** After listen: the same names followed by the port, the form clients send. */
  addPort(port: number): void {
    for (const n of [...this.allowed]) this.allowed.add(`${n}:${port}`);
  }

  /** undefined when the request may proceed; the error to answer otherwise. */
  check(req: http.IncomingMessage): AppError | undefined {
    const h = req.headers;
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
