/**
 * dynalite (a DynamoDB-compatible server on LevelDB) behind our own HTTP server, so that tests can
 * count requests per operation, inject faults and take the service down and back up with its data.
 * With an upstream endpoint (a real DynamoDB, see dynamodb-upstream.ts), the same server relays every
 * request there instead, so counting and faults work against the real service too.
 */
import type http from 'node:http';
import dynalite from 'dynalite';
import { StandInServer } from './kms';
import { type RequestListener, relayTo, upstreamDynamoEndpoint } from './dynamodb-upstream';

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

export class DynamoStandIn extends StandInServer {
  private readonly db: http.Server | undefined;
  private readonly forward: RequestListener;
  private dbClosed = false;
  /** Conditional writes refused (ConditionalCheckFailedException): lost races for a serial, among others. */
  conditionalCheckFailures = 0;
  /** Which engine answers: dynalite in this process, or the upstream endpoint it relays to. */
  readonly engine: 'dynalite' | 'upstream';

  constructor(
    port: number,
    path?: string,
    private readonly upstream?: string,
  ) {
    super(port, DYNALITE_OPS);
    this.engine = upstream ? 'upstream' : 'dynalite';
    if (upstream) {
      this.forward = relayTo(upstream);
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
    if (this.upstream) return;
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

/**
 * `path` (an on-disk dynalite) only applies to dynalite. With ECS_SECRETS_TEST_DYNAMODB_ENDPOINT set
 * (and no `path`), or `upstream` given, the stand-in relays to that endpoint instead.
 */
export async function startDynamo(
  opts: { port?: number; path?: string; upstream?: string } = {},
): Promise<DynamoStandIn> {
  const upstream = opts.path ? undefined : (opts.upstream ?? upstreamDynamoEndpoint());
  const dynamo = new DynamoStandIn(opts.port ?? 0, opts.path, upstream);
  await dynamo.start();
  return dynamo;
}
