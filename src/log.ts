/**
 * Structured logs (pino) on stderr; stdout is reserved for command results. Payloads are never
 * passed to the logger, and `redact` removes any field named like one, as a second line of defence.
 */
import pino, { Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { debug?: boolean; level?: pino.LevelWithSilent } = {}): Logger {
  return pino(
    {
      name: 'ecs-secrets',
      level: opts.level ?? (opts.debug ? 'debug' : 'info'),
      base: { pid: process.pid },
      redact: { paths: ['payload', '*.payload', 'body.payload', 'plaintext', '*.plaintext', 'token', '*.token'], censor: '[redacted]' },
    },
    // Synchronous: a one-shot command exits right after logging, and a line must not be lost.
    pino.destination({ fd: 2, sync: true }),
  );
}
