/**
 * A request of the SDK handed straight to an HTTP request listener of this same process (the
 * embedded store's dynalite, when this process owns it), without a socket: the listener gets a
 * request that emits the body and a response that collects what it writes. The SDK's whole
 * pipeline (serialisation, signing, retries, error parsing) runs as over the network; only the
 * loopback TCP connection, HTTP framing and parsing on both sides are left out, which were about a
 * third of an import's CPU. Only what dynalite's listener uses is provided (headers, method, url,
 * `data`/`end`; `statusCode`, `setHeader`, `end`): a listener that needs more is not served here.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRequest, HttpResponse } from '@smithy/types';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** The body as bytes, or undefined when it is a stream (those go over HTTP). */
function bodyBytes(body: unknown): Buffer | undefined {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return undefined;
}

/** Whether `request` can be dispatched in process (its body is not a stream). */
export function dispatchable(request: HttpRequest): boolean {
  return bodyBytes(request.body) !== undefined;
}

function urlOf(request: HttpRequest): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(request.query ?? {}))
    for (const one of Array.isArray(v) ? v : [v]) if (one !== null && one !== undefined) params.append(k, one);
  const q = params.toString();
  return `${request.path || '/'}${q ? `?${q}` : ''}`;
}

/**
 * Serve `request` by `listener` and resolve with its answer. A listener that has not answered
 * within `timeoutMs` fails the request with a TimeoutError, as the HTTP handler's request timeout
 * would; one that throws while reading the request fails it with that error.
 */
export function dispatchInProcess(
  listener: RequestListener,
  request: HttpRequest,
  timeoutMs: number,
): Promise<{ response: HttpResponse }> {
  const body = bodyBytes(request.body);
  if (body === undefined) return Promise.reject(new Error('a streamed body cannot be dispatched in process'));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v;
    const req = Object.assign(new EventEmitter(), { method: request.method, url: urlOf(request), headers });
    const answered: Record<string, string> = {};
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      const err = new Error(`the embedded store did not answer within ${timeoutMs} ms`);
      err.name = 'TimeoutError';
      reject(err);
    }, timeoutMs);
    timer.unref();
    const res = {
      statusCode: 200,
      setHeader(name: string, value: number | string | readonly string[]) {
        answered[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
        return res;
      },
      end(chunk?: string | Uint8Array) {
        if (done) return res;
        done = true;
        clearTimeout(timer);
        const bytes = chunk === undefined ? new Uint8Array(0) : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        resolve({ response: { statusCode: res.statusCode, headers: answered, body: bytes } });
        return res;
      },
    };
    try {
      listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      if (body.length > 0) req.emit('data', body);
      req.emit('end');
    } catch (err) {
      done = true;
      clearTimeout(timer);
      reject(err);
    }
  });
}
