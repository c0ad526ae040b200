/**
 * The JSON 1.1 protocol (X-Amz-Target: `<Prefix>.<Operation>`, JSON body, `__type` errors) for the
 * import sources' stand-ins (SSM, Secrets Manager), on the shared StandInServer plumbing.
 * Besides StandInServer's faults, `throttleNext(n)` throttles the next n requests only, so a test
 * can watch the SDK's backoff ride it out.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { StandInServer, readBody } from './kms';

export class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export type JsonInput = Record<string, unknown>;

export abstract class JsonStandIn extends StandInServer {
  private throttled = 0;

  protected constructor(
    port: number,
    private readonly targetPrefix: string,
    private readonly ops: readonly string[],
    private readonly throttleType: string,
  ) {
    super(port, ops);
  }

  /** Answer the next `n` requests with the service's throttling error. */
  throttleNext(n: number): void {
    this.throttled = n;
  }

  protected abstract dispatch(op: string, input: JsonInput): object;

  protected operationOf(req: http.IncomingMessage): string {
    const target = String(req.headers['x-amz-target'] ?? '');
    return target.startsWith(`${this.targetPrefix}.`) ? target.slice(this.targetPrefix.length + 1) : '(no target)';
  }

  protected sendThrottled(res: http.ServerResponse): void {
    this.reply(res, 400, { __type: this.throttleType, message: 'Rate exceeded' });
  }

  protected handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.throttled > 0) {
      this.throttled--;
      req.resume();
      this.sendThrottled(res);
      return;
    }
    readBody(req)
      .then((body) => {
        const op = this.operationOf(req);
        if (!this.ops.includes(op)) throw new ServiceError('UnknownOperationException', `Unknown operation ${op}`);
        const input = body === '' ? {} : (JSON.parse(body) as JsonInput);
        return this.dispatch(op, input);
      })
      .then(
        (out) => this.reply(res, 200, out),
        (err: unknown) => {
          if (err instanceof ServiceError) this.reply(res, 400, { __type: err.type, message: err.message });
          else this.reply(res, 500, { __type: 'InternalServerError', message: String(err) });
        },
      );
  }

  private reply(res: http.ServerResponse, status: number, body: object): void {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/x-amz-json-1.1');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.setHeader('x-amzn-RequestId', randomUUID());
    res.end(text);
  }
}

/** Pagination by an opaque token: the index of the next item. */
export function page<T>(items: T[], input: JsonInput, pageSize: number): { items: T[]; NextToken?: string } {
  const start = typeof input.NextToken === 'string' ? Number(input.NextToken) : 0;
  const max = typeof input.MaxResults === 'number' ? Math.min(input.MaxResults, pageSize) : pageSize;
  const end = start + max;
  return { items: items.slice(start, end), ...(end < items.length ? { NextToken: String(end) } : {}) };
}

/** JSON 1.1 timestamps are epoch seconds. */
export const epoch = (d: Date): number => d.getTime() / 1000;
