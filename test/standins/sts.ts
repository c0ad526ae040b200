/**
 * An STS stand-in for GetCallerIdentity, the one STS call ecs-secrets makes (core/identity.ts).
 * awsQuery protocol: a form-encoded POST body (`Action=GetCallerIdentity&Version=2011-06-15`)
 * answered with XML. The principal is derived from the SigV4 access key of the request, so two
 * writers with two keys show two ARNs.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export const STS_ACCOUNT = '123456789012';

/** The ARN the stand-in answers for an access key id. */
export const principalArn = (accessKeyId: string): string => `arn:aws:iam::${STS_ACCOUNT}:user/${accessKeyId}`;

export interface StsStandIn {
  endpoint: string;
  /** GetCallerIdentity calls answered, per access key id. */
  calls: Map<string, number>;
  close(): Promise<void>;
}

export async function startSts(): Promise<StsStandIn> {
  const calls = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const akid = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];
      const requestId = `req-${Date.now().toString(36)}`;
      if (req.method !== 'POST' || form.get('Action') !== 'GetCallerIdentity' || !akid) {
        const code = akid ? 'InvalidAction' : 'MissingAuthenticationToken';
        res.writeHead(400, { 'Content-Type': 'text/xml' });
        res.end(
          `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>not supported by the stand-in</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        );
        return;
      }
      calls.set(akid, (calls.get(akid) ?? 0) + 1);
      res.writeHead(200, { 'Content-Type': 'text/xml' });
      res.end(
        `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${principalArn(akid)}</Arn><UserId>AIDA${akid}</UserId><Account>${STS_ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
