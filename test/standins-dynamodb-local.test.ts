/**
 * The DynamoDB stand-in in front of Amazon DynamoDB Local (issue 12, property 14): requests really
 * reach AWS's engine, and the stand-in's counting and fault injection still apply. Skipped, and
 * said so, when no DynamoDBLocal.jar is on this machine (docs/development.md, "Two DynamoDB engines").
 */
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { TABLE_KEYS } from '../src/core/storage';
import { findDynamoDbLocalJar } from './standins/dynamodb-local';
import { ADMIN_ACCESS_KEY_ID, REGION, startDynamo, type DynamoStandIn } from './standins';

const jar = findDynamoDbLocalJar();
if (!jar)
  process.stderr.write('standins-dynamodb-local.test.ts: skipped, no DynamoDBLocal.jar (set DYNAMODB_LOCAL_JAR)\n');
const maybe = jar ? describe : describe.skip;

maybe('the stand-in forwarding to DynamoDB Local', () => {
  let dynamo: DynamoStandIn;
  let client: DynamoDBClient;
  beforeAll(async () => {
    dynamo = await startDynamo({ engine: 'dynamodb-local' });
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: REGION,
      maxAttempts: 1,
      credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
    });
  });
  afterAll(async () => {
    client?.destroy();
    await dynamo?.close();
  });

  test('answers come from AWS\'s engine (its table ARNs name the region "ddblocal"), and are counted', async () => {
    expect(dynamo.engine).toBe('dynamodb-local');
    await client.send(new CreateTableCommand({ TableName: 'tbl', ...TABLE_KEYS, BillingMode: 'PAY_PER_REQUEST' }));
    const { Table } = await client.send(new DescribeTableCommand({ TableName: 'tbl' }));
    // dynalite would say arn:aws:dynamodb:us-east-1:...; DynamoDB Local always says ddblocal.
    expect(Table?.TableArn).toMatch(/^arn:aws:dynamodb:ddblocal:/);
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect([dynamo.counts.CreateTable, dynamo.counts.DescribeTable]).toEqual([1, 1]);
  });

  test('faults are injected in front of it: throttling, then down and back up with its data', async () => {
    await dynamo.setFault({ throttle: true });
    await expect(client.send(new ListTablesCommand({}))).rejects.toMatchObject({ name: 'ThrottlingException' });
    await dynamo.setFault({ down: true });
    await expect(client.send(new ListTablesCommand({}))).rejects.toThrow();
    await dynamo.setFault(null);
    expect((await client.send(new ListTablesCommand({}))).TableNames).toEqual(['tbl']);
  });
});
