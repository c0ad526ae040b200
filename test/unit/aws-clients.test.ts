/**
 * What every SDK client we build shares (backends/aws.ts): a region found once, and the KMS
 * client's middleware resolved once per command class (the SDK's cacheMiddleware), which the
 * DynamoDB client, wrapped by the document client, must not have; the embedded store's client
 * sends the shape of a SigV4 header without computing a signature.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpRequest } from '@smithy/types';
import { dynamoClient, kmsClient } from '../../src/backends/aws';

test('the KMS client resolves its middleware once per command; the DynamoDB client does not (the document client refuses it)', () => {
  const kms = kmsClient({ region: 'eu-west-1' });
  const dynamo = dynamoClient({ region: 'eu-west-1' });
  try {
    expect((kms.config as { cacheMiddleware?: boolean }).cacheMiddleware).toBe(true);
    expect((dynamo.config as { cacheMiddleware?: boolean }).cacheMiddleware).not.toBe(true);
  } finally {
    kms.destroy();
    dynamo.destroy();
  }
});

test('the region is resolved once: every later call gets the same answer without resolving again', async () => {
  const kms = kmsClient({ region: 'eu-west-1' });
  try {
    const first = kms.config.region();
    expect(kms.config.region()).toBe(first);
    await expect(first).resolves.toBe('eu-west-1');
    expect(kms.config.region()).toBe(first);
  } finally {
    kms.destroy();
  }
});

test("the embedded store's client sends a SigV4-shaped Authorization and X-Amz-Date, and computes no signature", async () => {
  const seen: HttpRequest[] = [];
  const handler = {
    handle: async (request: HttpRequest) => {
      seen.push(request);
      const body = new TextEncoder().encode('{}');
      return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body } };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  } as unknown as NodeHttpHandler;
  const client = dynamoClient({ embedded: { endpoint: 'http://127.0.0.1:1', requestHandler: handler } });
  try {
    await client.send(new GetItemCommand({ TableName: 'tbl', Key: { Name: { S: 'a' } } }));
  } finally {
    client.destroy();
  }
  expect(seen).toHaveLength(1);
  const { authorization, 'x-amz-date': date } = seen[0].headers;
  expect(date).toMatch(/^\d{8}T\d{6}Z$/);
  // What dynalite requires of the header: the AWS4 scheme with Credential, SignedHeaders and Signature.
  expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=\S+, SignedHeaders=\S+, Signature=unsigned$/);
});
