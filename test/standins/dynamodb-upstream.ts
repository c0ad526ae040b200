/**
 * A real DynamoDB behind the stand-in, off by default: with ECS_SECRETS_TEST_DYNAMODB_ENDPOINT set
 * (an AWS account's regional endpoint, e.g. https://dynamodb.eu-west-1.amazonaws.com, or any
 * DynamoDB-compatible server), the stand-in relays every request there instead of answering from
 * dynalite, so that a difference between dynalite and the real service shows up as a failing test,
 * while the stand-in's request counting and fault injection still apply.
 *
 * Tests sign with made-up access keys (the KMS stand-in derives principals from them), so each
 * relayed request is signed again, for the endpoint's host, with the credentials of the process's
 * standard chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) and the region of
 * ECS_SECRETS_TEST_DYNAMODB_REGION (default: AWS_REGION, else us-east-1).
 */
import * as crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider, Checksum, SourceData } from '@smithy/types';

export type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** The endpoint suites relay to, or undefined (the default: dynalite answers). */
export function upstreamDynamoEndpoint(): string | undefined {
  return process.env.ECS_SECRETS_TEST_DYNAMODB_ENDPOINT || undefined;
}

class Sha256 implements Checksum {
  private readonly hash: crypto.Hash | crypto.Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? crypto.createHash('sha256') : crypto.createHmac('sha256', toBuffer(secret));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {
    throw new Error('not used by SignatureV4');
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** Relay each request to `endpoint`, signed again with `credentials`, and its answer back byte for byte. */
export function relayTo(
  endpoint: string,
  opts: { region?: string; credentials?: AwsCredentialIdentityProvider } = {},
): RequestListener {
  const target = new URL(endpoint);
  const signer = new SignatureV4({
    service: 'dynamodb',
    region: opts.region ?? process.env.ECS_SECRETS_TEST_DYNAMODB_REGION ?? process.env.AWS_REGION ?? 'us-east-1',
    credentials: opts.credentials ?? defaultProvider(),
    sha256: Sha256,
  });
  const transport = target.protocol === 'https:' ? https : http;
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {
        host: target.host,
        'content-type': String(req.headers['content-type'] ?? 'application/x-amz-json-1.0'),
        'x-amz-target': String(req.headers['x-amz-target'] ?? ''),
      };
      signer
        .sign({ method: 'POST', protocol: target.protocol, hostname: target.hostname, path: '/', headers, body })
        .then((signed) => {
          const up = transport.request(
            {
              host: target.hostname,
              port: target.port || undefined,
              method: 'POST',
              path: '/',
              headers: { ...signed.headers, 'content-length': String(body.length) },
            },
            (upRes) => {
              res.writeHead(upRes.statusCode ?? 502, upRes.headers);
              upRes.pipe(res);
            },
          );
          up.on('error', () => req.socket.destroy());
          up.end(body);
        })
        .catch(() => req.socket.destroy());
    });
  };
}
