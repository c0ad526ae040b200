/**
 * dynalite (a DynamoDB-compatible server on LevelDB) behind our own HTTP server, so that tests can
 * count requests per operation, inject faults and take the service down and back up with its data.
 * With `upstream` (Amazon DynamoDB Local, see dynamodb-local.ts), the same server forwards every
 * request there instead, so counting and faults work on AWS's own engine too.
 */
import http from 'node:http';
import dynalite from 'dynalite';
import { StandInServer } from './kms';
import { dynamoEngine, startDynamoDbLocal, type DynamoDbLocal } from './dynamodb-local';

// What dynalite 4 implements. Anything else (TransactWriteItems, ExecuteStatement,
// UpdateTimeToLive, ...) gets a 400 UnknownOperationException from it.
const DYNALITE_OPS = [
  'BatchGetItem',
  'BatchWriteItem',
  'CreateTable',
  'DeleteItem',
  'DeleteTable',
  'DescribeTable',
  'DescribeTimeToLive',
  'GetItem',
  'ListTables',
  'PutItem',
  'Query',
  'Scan',
  'TagResource',
  'UntagResource',
  'ListTagsOfResource',
  'UpdateItem',
  'UpdateTable',
] as const;

type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export class DynamoStandIn extends StandInServer {
  private readonly db: http.Server | undefined;
  private readonly forward: RequestListener;
  private dbClosed = false;
  /** Conditional writes refused (ConditionalCheckFailedException): lost races for a serial, among others. */
  conditionalCheckFailures = 0;
  /** Which engine answers: dynalite in this process, or DynamoDB Local behind it. */
  readonly engine: 'dynalite' | 'dynamodb-local';

  constructor(
    port: number,
    path?: string,
    private readonly upstream?: DynamoDbLocal,
  ) {
    super(port, DYNALITE_OPS);
    this.engine = upstream ? 'dynamodb-local' : 'dynalite';
    if (upstream) {
      this.forward = forwardTo(upstream.endpoint);
      return;
    }
    // 0 ms: tables are ACTIVE right after CreateTable (the timers are setTimeout(0), nothing lingers).
    this.db = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, path });
    // dynalite's server is never listened on: we only borrow its request handler.
    this.forward = this.db.listeners('request')[0] as RequestListener;
  }

  protected operationOf(req: http.IncomingMessage): string {
    const target = String(req.headers['x-amz-target'] ?? '');
    return target.split('.')[1] ?? (target || '(no target)');
  }

  protected sendThrottled(res: http.ServerResponse): void {
    // What DynamoDB answers when request rate (rather than a table's capacity) is exceeded.
    const body = JSON.stringify({
      __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException',
      message: 'Rate of requests exceeds the allowed throughput.',
    });
    res.statusCode = 400;
    res.setHeader('Content-Type', 'application/x-amz-json-1.0');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }

  protected handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Caveat: dynalite rethrows request stream errors, so a stop() that cuts a request whose body
    // is still arriving would crash the process. Bodies this small arrive with the headers.
    // Count refused conditions from the answer's error type. dynalite sends each answer in one
    // end(); DynamoDB Local's answers are piped through (write() then end()), so both are watched.
    const seen = (chunk: unknown) => {
      if (
        res.statusCode === 400 &&
        (typeof chunk === 'string' || Buffer.isBuffer(chunk)) &&
        chunk.toString().includes('ConditionalCheckFailedException')
      )
        this.conditionalCheckFailures++;
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    res.write = ((...args: unknown[]) => {
      seen(args[0]);
      return write(...args);
    }) as typeof res.write;
    const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
    res.end = ((...args: unknown[]) => {
      seen(args[0]);
      return end(...args);
    }) as typeof res.end;
    this.forward(req, res);
  }

  /** Final shutdown, closing the database too (which releases the LevelDB lock when on disk). */
  override async close(): Promise<void> {
    await super.close();
    // Once closed, dynalite's listen() would reopen the database: only ever do this once.
    if (this.dbClosed) return;
    this.dbClosed = true;
    if (this.upstream) return this.upstream.close();
    const db = this.db!;
    // dynalite only closes its database from its server's close(), and that bails out with
    // ERR_SERVER_NOT_RUNNING unless the server is listening: so listen briefly, then close.
    await new Promise<void>((resolve, reject) => {
      db.once('error', reject);
      db.listen(0, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve, reject) => db.close((err) => (err ? reject(err) : resolve())));
  }
}

/** Relay a request to `endpoint` and its answer back, byte for byte (a fresh connection each time). */
function forwardTo(endpoint: string): RequestListener {
  const target = new URL(endpoint);
  const agent = new http.Agent({ keepAlive: false });
  return (req, res) => {
    const up = http.request(
      {
        host: target.hostname,
        port: Number(target.port),
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  };
}

/**
 * `path` (an on-disk dynalite) only applies to dynalite. With ECS_SECRETS_TEST_DYNAMODB=dynamodb-local
 * (and no `path`), a DynamoDB Local of its own is started behind the stand-in, and closed with it.
 */
export async function startDynamo(
  opts: { port?: number; path?: string; engine?: 'dynalite' | 'dynamodb-local' } = {},
): Promise<DynamoStandIn> {
  const engine = opts.engine ?? (opts.path ? 'dynalite' : dynamoEngine());
  const upstream = engine === 'dynamodb-local' ? await startDynamoDbLocal() : undefined;
  const dynamo = new DynamoStandIn(opts.port ?? 0, opts.path, upstream);
  try {
    await dynamo.start();
  } catch (err) {
    await upstream?.close();
    throw err;
  }
  return dynamo;
}
