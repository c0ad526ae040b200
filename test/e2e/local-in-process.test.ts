/**
 * The owner of the embedded store serves its own requests in process (src/backends/in-process-http.ts):
 * the real DynamoDB client against dynalite's listener gets the answers it gets over HTTP (items,
 * the conditional put's refusal as its named error), and the owner's own calls open no connection
 * to its port while another process's client on the same data dir does.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { HttpRequest } from '@smithy/types';
import { type RequestListener, dispatchInProcess, dispatchable } from '../../src/backends/in-process-http';
import { openBackend } from '../../src/backends/open-backend';
import { TABLE_KEYS } from '../../src/core/storage';
import { json, runCli } from '../helpers/cli';

const dynalite: (opts: Record<string, unknown>) => http.Server = require('dynalite');

const request = (over: Partial<HttpRequest> = {}): HttpRequest =>
  ({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 1,
    path: '/',
    query: {},
    headers: {},
    body: '',
    ...over,
  }) as HttpRequest;

test('the listener sees the method, the path with its query, lower-case headers and the body; its answer comes back whole', async () => {
  let seen: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string } | undefined;
  const listener: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
      res.statusCode = 418;
      res.setHeader('X-Answer', 42);
      res.end('{"ok":true}');
    });
  };
  const { response } = await dispatchInProcess(
    listener,
    request({ path: '/p', query: { a: 'b c', d: ['1', '2'] }, headers: { 'X-Amz-Target': 'T.Op' }, body: '{"x":1}' }),
    10_000,
  );
  expect(seen).toEqual({
    method: 'POST',
    url: '/p?a=b+c&d=1&d=2',
    headers: { 'x-amz-target': 'T.Op' },
    body: '{"x":1}',
  });
  expect(response.statusCode).toBe(418);
  expect(response.headers).toEqual({ 'x-answer': '42' });
  expect(Buffer.from(response.body).toString()).toBe('{"ok":true}');
});

test('a listener that never answers fails the request with a TimeoutError; one that throws fails it with its error', async () => {
  await expect(dispatchInProcess(() => undefined, request(), 50)).rejects.toMatchObject({ name: 'TimeoutError' });
  const boom = new Error('listener broke');
  await expect(
    dispatchInProcess(
      () => {
        throw boom;
      },
      request(),
      10_000,
    ),
  ).rejects.toBe(boom);
});

test('a streamed body is not dispatched in process', () => {
  expect(dispatchable(request({ body: '{}' }))).toBe(true);
  expect(dispatchable(request({ body: new Uint8Array([1]) }))).toBe(true);
  expect(dispatchable(request({ body: undefined }))).toBe(true);
  expect(dispatchable(request({ body: Readable.from(['{}']) }))).toBe(false);
});

test("the real DynamoDB client against dynalite's listener: table, items, and the conditional put's refusal by name", async () => {
  const server = dynalite({ createTableMs: 0 });
  const [listener] = server.listeners('request') as RequestListener[];
  const handler = {
    handle: (req: HttpRequest) => dispatchInProcess(listener, req, 10_000),
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  } as unknown as NonNullable<ConstructorParameters<typeof DynamoDBClient>[0]>['requestHandler'];
  const client = new DynamoDBClient({
    region: 'local',
    endpoint: 'http://127.0.0.1:1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    requestHandler: handler,
  });
  const doc = DynamoDBDocumentClient.from(client);
  try {
    await client.send(new CreateTableCommand({ TableName: 'tbl', ...TABLE_KEYS, BillingMode: 'PAY_PER_REQUEST' }));
    // dynalite makes the table ACTIVE on its next tick.
    while ((await client.send(new DescribeTableCommand({ TableName: 'tbl' }))).Table?.TableStatus !== 'ACTIVE')
      await new Promise((r) => setTimeout(r, 10));
    const put = () =>
      doc.send(
        new PutCommand({
          TableName: 'tbl',
          Item: { Name: 'a', Serial: 1, Value: 'x' },
          ConditionExpression: 'attribute_not_exists(#n)',
          ExpressionAttributeNames: { '#n': 'Name' },
        }),
      );
    await put();
    await expect(put()).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    const got = await doc.send(
      new GetCommand({ TableName: 'tbl', Key: { Name: 'a', Serial: 1 }, ConsistentRead: true }),
    );
    expect(got.Item).toEqual({ Name: 'a', Serial: 1, Value: 'x' });
  } finally {
    client.destroy();
    await new Promise((r) => server.close(r));
  }
});

test("a --local owner's own calls open no connection to its port; a CLI's on the same data dir do", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-inprocess-'));
  const emit = jest.spyOn(http.Server.prototype, 'emit');
  const connections = () => emit.mock.calls.filter(([event]) => (event as string) === 'connection').length;
  const owner = await openBackend({ app: 'inprocess', local: true, dataDir: dir });
  try {
    await owner.service.create('a.b', 'one');
    await owner.service.create('a.b', 'two');
    expect((await owner.service.fetch('a.b')).payload).toBe('two');
    expect(await owner.service.list()).toEqual([{ name: 'a.b', latestSerial: 2 }]);
    expect(connections()).toBe(0);
    // The control: a CLI on the same data dir finds the store owned by this process and connects.
    const r = await runCli(['--local', '--data-dir', dir, '--application-name', 'inprocess', 'fetch', 'a.b']);
    expect(json<{ payload: string }>(r).payload).toBe('two');
    expect(connections()).toBeGreaterThan(0);
  } finally {
    emit.mockRestore();
    await owner.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
