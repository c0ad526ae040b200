/**
 * Structured logs (pino) on stderr; stdout is reserved for command results. Payloads are never
 * passed to the logger, and `redact` removes any field named like one, as a second line of defence.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

/** `--log-level`: pino's levels, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `--log-format`: JSON lines (what CloudWatch and log pipelines want) or pino-pretty's lines for people. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Pretty when a person is reading stderr (a terminal), JSON otherwise. */
export const defaultLogFormat = (): LogFormat => (process.stderr.isTTY ? 'pretty' : 'json');

/**
 * The daemon writes a line per request, so those lines are buffered: written in chunks of at
 * least this many bytes (about 40 request lines), and at the latest every DAEMON_LOG_FLUSH_MS, so
 * a quiet daemon's lines still show up promptly. Writing each line on its own costs more CPU than
 * answering the request. Every other line (start-up, warnings, errors, shutdown) is written at
 * once, after the request lines before it, so the log keeps its order. The buffer is flushed at
 * shutdown (daemon/daemon.ts) and, synchronously, by pino's exit hook if the process ends any other way.
 * Writes stay asynchronous: a stalled log pipe must not stall the event loop serving secrets.
 */
const DAEMON_LOG_BUFFER_BYTES = 8192;
const DAEMON_LOG_FLUSH_MS = 100;
/** The message of the per-request line, the only line the daemon buffers. */
export const REQUEST_MSG = 'request';

const REDACTED = '[redacted]';

export function createLogger(
  opts: { debug?: boolean; level?: pino.LevelWithSilent; daemon?: boolean; format?: LogFormat } = {},
): Logger {
  return pino(
    {
      name: 'ecs-secrets',
      level: opts.level ?? (opts.debug ? 'debug' : 'info'),
      base: { pid: process.pid },
      redact: {
        paths: ['payload', '*.payload', 'body.payload', 'plaintext', '*.plaintext', 'token', '*.token'],
        censor: REDACTED,
      },
    },
    opts.format === 'pretty'
      ? // In the same thread, synchronously: a terminal is not the daemon's hot path, and a line must not be lost.
        // Loaded only then: a sidecar in a container (JSON) never pays for it.
        (require('pino-pretty') as typeof import('pino-pretty'))({
          destination: 2,
          sync: true,
          colorize: process.stderr.isTTY,
          translateTime: 'SYS:HH:MM:ss.l',
        })
      : opts.daemon
        ? daemonDestination()
        : // One-shot commands log synchronously: they exit right after, and a line must not be lost.
          pino.destination({ fd: 2, sync: true }),
  );
}

/**
 * The daemon's stderr: pino's own destination (sonic-boom), in buffer mode and fed one Buffer per
 * line. In its default string mode sonic-boom appends each line to one growing string and
 * measures that string's byte length on every write, which costs more the bigger the buffer; in
 * buffer mode it keeps a list and joins it once per write. pino tells the stream which message each
 * line carries (needsMetadataGsym), which is how request lines are told from the rest. Flushing
 * (logger.flush, and pino's exit hook, registered on the sonic-boom itself) works as for any pino
 * destination.
 */
function daemonDestination(): pino.DestinationStream {
  // No periodicFlush: it would write (nothing) every period even when idle; a timer is armed only
  // while request lines wait.
  const sonic = pino.destination({ fd: 2, sync: false, contentMode: 'buffer', minLength: DAEMON_LOG_BUFFER_BYTES });
  let timer: NodeJS.Timeout | undefined;
  let drainHooked = false;
  const writeNow = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    // flush() starts a write unless one is in flight; 'drain' follows every write that leaves less
    // than minLength behind, so flushing again then writes whatever the in-flight write left.
    sonic.flush();
    if (drainHooked) return;
    drainHooked = true;
    sonic.once('drain', () => {
      drainHooked = false;
      sonic.flush();
    });
  };
  const stream = {
    [pino.symbols.needsMetadataGsym]: true,
    lastMsg: undefined as unknown,
    write(line: string) {
      // Looked up on each call: pino swaps in no-ops on the sonic-boom after EPIPE.
      sonic.write(Buffer.from(line, 'utf8') as unknown as string);
      if (stream.lastMsg !== REQUEST_MSG) writeNow();
      else timer ??= setTimeout(writeNow, DAEMON_LOG_FLUSH_MS).unref();
    },
    flush: (cb?: (err?: Error) => void) => sonic.flush(cb),
  };
  return stream as pino.DestinationStream;
}

/**
 * The logger for the daemon's per-request line: the same logger (destination, level, format), with
 * redaction narrowed to top-level fields. A request line is a flat object of fixed fields, so the
 * nested paths (`*.payload`) can never match it, and they are what makes redaction expensive:
 * pino clones the object to look for them, which cost more than the rest of the hot path.
 */
export function requestLogger(logger: Logger): Logger {
  const child = logger.child({}, { redact: { paths: ['payload', 'plaintext', 'token'], censor: REDACTED } });
  const fast = fastRequestJson(child);
  if (fast) (child as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym] = fast;
  return child;
}

type AsJson = (obj: Record<string, unknown>, msg: unknown, num: number, time: string) => string;

/** The request line's fields; any other field (or value type) goes through pino's own serializer. */
const REQUEST_FIELDS = new Set(['reqId', 'method', 'route', 'status', 'ms', 'cache', 'secret', 'path', 'error']);

/**
 * pino's line builder, specialised for the request line (with pino's general builder, the log line
 * is the largest part of a hot read's CPU after node's own HTTP work). pino's general builder looks up a
 * serializer and a redaction stringifier for every field of every line; the request line has a few
 * fixed fields of strings and finite numbers, none of them redacted, so this builds the same text
 * directly. Anything else (another message, another field, an object value) falls back to pino.
 * The bytes stay the same, and that is checked once here: if this pino formats a sample line
 * differently (a new pino version, other options), the specialisation is not used at all.
 */
function fastRequestJson(child: Logger): AsJson | undefined {
  const sym = pino.symbols as unknown as Record<string, symbol>;
  const self = child as unknown as Record<symbol, unknown>;
  const general = self[sym.asJsonSym] as AsJson | undefined;
  const levels = self[sym.lsCacheSym] as Record<number, string> | undefined;
  const chindings = self[sym.chindingsSym];
  const end = self[sym.endSym];
  if (typeof general !== 'function' || !levels || typeof chindings !== 'string' || typeof end !== 'string')
    return undefined;
  const msgPart = `,"${String(self[sym.messageKeySym] ?? 'msg')}":${JSON.stringify(REQUEST_MSG)}`;
  const fast: AsJson = function (this: unknown, obj, msg, num, time) {
    if (msg !== REQUEST_MSG || levels[num] === undefined) return general.call(this, obj, msg, num, time);
    let props = '';
    for (const key in obj) {
      const v = obj[key];
      if (v === undefined) continue;
      if (!REQUEST_FIELDS.has(key)) return general.call(this, obj, msg, num, time);
      if (typeof v === 'string') props += `,"${key}":${JSON.stringify(v)}`;
      else if (typeof v === 'number' && Number.isFinite(v)) props += `,"${key}":${v}`;
      else return general.call(this, obj, msg, num, time);
    }
    return levels[num] + time + chindings + props + msgPart + end;
  };
  const sample = {
    reqId: 'a1b2c3-1z',
    method: 'GET',
    route: '/latest/secrets/:name',
    status: 200,
    ms: 0.125,
    cache: 'miss',
    secret: 'db.password',
    error: 'no secret "db \\"x\\""',
  };
  const level = (child.levels.values as Record<string, number>).info;
  const same =
    fast.call(child, sample, REQUEST_MSG, level, ',"time":1') ===
    general.call(child, sample, REQUEST_MSG, level, ',"time":1');
  return same ? fast : undefined;
}
