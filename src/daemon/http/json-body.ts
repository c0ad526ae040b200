/** The JSON body of a write: its size limit, its parser and its shape. */
import { isUtf8 } from 'node:buffer';
import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../../core/errors';
import { MAX_PAYLOAD_BYTES, decodeBase64Payload, validatePayload } from '../../core/payload';

/**
 * JSON bodies may escape a 256 KiB payload to several times its size ("\u0000"); the body limit
 * leaves room for that, and the payload itself is then held to 256 KiB (413 either way).
 */
export const BODY_LIMIT_BYTES = 6 * MAX_PAYLOAD_BYTES + 1024;

export const BODY_SHAPE_MESSAGE =
  'the body must be a JSON object {"payload": "<string>"} or {"payloadBase64": "<base64>"}';

/** Express middleware that parses the body as JSON (see the Content-Type rule below). */
export function jsonBody() {
  // Required here, not at the top: express is loaded with the routes that need it (server.ts).
  const express = require('express') as typeof import('express');
  const parse = express.json({
    limit: BODY_LIMIT_BYTES,
    strict: true,
    type: () => true,
    // Checked on the raw bytes: decoding would turn invalid UTF-8 into U+FFFD, and the secret
    // stored would silently differ from the one sent.
    verify: (_req, _res, buf) => {
      if (!isUtf8(buf)) throw new AppError('usage', 'the body is not valid UTF-8');
    },
  });
  return (req: Request, res: Response, next: NextFunction) => {
    const type = req.headers['content-type'];
    // The original ignored Content-Type, and its documented admin task is `curl -d @file`, which
    // sends a JSON body labelled as a form: JSON, form or none are read as JSON; anything else is refused clearly.
    if (type !== undefined && !/^application\/(json|x-www-form-urlencoded)\s*(;|$)/i.test(type))
      return next(
        new AppError(
          'unsupported_media',
          `Content-Type must be application/json (or a form type, as curl -d sends), not ${JSON.stringify(type.slice(0, 60))}`,
        ),
      );
    return parse(req, res, next);
  };
}

/** A POST body: `{"payload": "<text>"}` or `{"payloadBase64": "<base64>"}` (a binary secret), exactly one. */
export function payloadOfBody(body: unknown): { payload: string | Buffer; binary: boolean } {
  const b = body as { payload?: unknown; payloadBase64?: unknown };
  const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
  if (isObject && typeof b.payload === 'string' && b.payloadBase64 === undefined)
    return { payload: validatePayload(b.payload), binary: false };
  if (isObject && typeof b.payloadBase64 === 'string' && b.payload === undefined)
    return { payload: decodeBase64Payload(b.payloadBase64), binary: true };
  throw new AppError('usage', BODY_SHAPE_MESSAGE);
}
