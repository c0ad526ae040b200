/**
 * The DynamoDB stand-in relaying to an upstream endpoint (how the suites run against a real
 * DynamoDB when ECS_SECRETS_TEST_DYNAMODB_ENDPOINT is set): here the upstream is a second stand-in
 * on dynalite, so the relay is exercised on every run without an AWS account.
 */
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { TABLE_KEYS } from '../src/core/storage';
import { ADMIN_ACCESS_KEY_ID, REGION, startDynamo, type DynamoStandIn } from './standins';
import { relayTo } from './standins/dynamodb-upstream';

describe('the DynamoDB stand-in relaying to an upstream endpoint', () => {
  let upstream: DynamoStandIn;
  let relay: DynamoStandIn;
  let client: DynamoDBClient;
  beforeAll(async () => {
    // The relay signs with the standard credential chain, as it would with an AWS account.
    process.env.AWS_ACCESS_KEY_ID = ADMIN_ACCESS_KEY_ID;
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    upstream = await startDynamo({ upstream: undefined });
    relay = await startDynamo({ upstream: upstream.endpoint });
    client = new DynamoDBClient({
      endpoint: relay.endpoint,
      region: REGION,
      maxAttempts: 1,
      credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
    });
  });
  afterAll(async () => {
    client?.destroy();
    await relay?.close();
    await upstream?.close();
  });

  test('answers come from the upstream, and both count them', async () => {
    expect([relay.engine, upstream.engine]).toEqual(['upstream', 'dynalite']);
    await client.send(new CreateTableCommand({ TableName: 'tbl', ...TABLE_KEYS, BillingMode: 'PAY_PER_REQUEST' }));
    expect((await client.send(new ListTablesCommand({}))).TableNames).toEqual(['tbl']);
    expect([relay.counts.CreateTable, upstream.counts.CreateTable]).toEqual([1, 1]);
  });

  test('faults are injected in front of the upstream: throttling, then down and back up with its data', async () => {
    await relay.setFault({ throttle: true });
    await expect(client.send(new ListTablesCommand({}))).rejects.toMatchObject({ name: 'ThrottlingException' });
    await relay.setFault({ down: true });
    await expect(client.send(new ListTablesCommand({}))).rejects.toThrow();
    await relay.setFault(null);
    expect((await client.send(new ListTablesCommand({}))).TableNames).toEqual(['tbl']);
  });

  test('each relayed request is signed again with the relay credentials, for the upstream host', async () => {
    const seen: string[] = [];
    const http = await import('node:http');
    const server = http.createServer((req, res) => {
      seen.push(`${req.headers.host} ${req.headers.authorization}`);
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end('{"TableNames":[]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as import('node:net').AddressInfo;
    const listener = relayTo(`http://127.0.0.1:${port}`, {
      region: 'eu-west-1',
      credentials: async () => ({ accessKeyId: 'AKIARELAYEXAMPLE', secretAccessKey: 'relay-secret' }),
    });
    const front = http.createServer(listener);
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    const frontPort = (front.address() as import('node:net').AddressInfo).port;
    const viaRelay = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${frontPort}`,
      region: REGION,
      maxAttempts: 1,
      credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
    });
    try {
      await viaRelay.send(new ListTablesCommand({}));
    } finally {
      viaRelay.destroy();
      await new Promise((r) => front.close(r));
      await new Promise((r) => server.close(r));
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:${port} AWS4-HMAC-SHA256 Credential=AKIARELAYEXAMPLE/\\d{8}/eu-west-1/dynamodb/aws4_request`,
      ),
    );
  });
});
