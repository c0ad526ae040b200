/**
 * The yardstick: a bare node:http server answering every request with the bytes the daemon serves
 * for the hot secret (same body, same headers), from memory. It runs as a child process, like the
 * daemon, so both are measured under the same conditions. The parent talks to it over IPC:
 * it sends `{ port }` once listening, and answers 'usage' with its CPU time and RSS.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BareSpec {
  headers: Record<string, string>;
  bodyBase64: string;
}

export type BareMessage = { port: number } | { cpuUserUs: number; cpuSystemUs: number; rss: number };

const spec = JSON.parse(process.env.BENCH_BARE_SPEC ?? '') as BareSpec;
const body = Buffer.from(spec.bodyBase64, 'base64');
const headers = { ...spec.headers, 'Content-Length': String(body.length) };

const server = http.createServer((_req, res) => {
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 65_000; // as the daemon

const send = (m: BareMessage) => process.send?.(m);
server.listen(0, '127.0.0.1', () => send({ port: (server.address() as AddressInfo).port }));
process.on('message', (m) => {
  if (m !== 'usage') return;
  const cpu = process.cpuUsage();
  send({ cpuUserUs: cpu.user, cpuSystemUs: cpu.system, rss: process.memoryUsage().rss });
});
// The parent went away (or is done with us): leave.
process.on('disconnect', () => process.exit(0));
