/**
 * Structured logs (pino) on stderr; stdout is reserved for command results. Payloads are never
 * passed to the logger, and `redact` removes any field named like one, as a second line of defence.
 */
import pino, { Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { debug?: boolean; level?: pino.LevelWithSilent; daemon?: boolean } = {}): Logger {
  return pino(
    {
      name: 'ecs-secrets',
      level: opts.level ?? (opts.debug ? 'debug' : 'info'),
      base: { pid: process.pid },
      redact: { paths: ['payload', '*.payload', 'body.payload', 'plaintext', '*.plaintext', 'token', '*.token'], censor: '[redacted]' },
    },
    // One-shot commands log synchronously: they exit right after, and a line must not be lost.
    // The daemon logs a line per request, so it buffers (flushed at shutdown).
    pino.destination({ fd: 2, sync: !opts.daemon }),
  );
}
