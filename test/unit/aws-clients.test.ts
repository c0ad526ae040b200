/**
 * What every SDK client we build shares (backends/aws.ts): a region found once, and the KMS
 * client's middleware resolved once per command class (the SDK's cacheMiddleware), which the
 * DynamoDB client, wrapped by the document client, must not have.
 */
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
