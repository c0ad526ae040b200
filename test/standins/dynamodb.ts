/**
 * dynalite (a DynamoDB-compatible server on LevelDB) behind our own HTTP server, so that tests can
 * count requests per operation, inject faults and take the service down and back up with its data.
 */
import type http from 'node:http';
import dynalite from 'dynalite';
import { StandInServer } from './kms';

// What dynalite 4 implements. Anything else (TransactWriteItems, ExecuteStatement,
// UpdateTimeToLive, ...) gets a 400 UnknownOperationException from it.
const DYNALITE_OPS = [
  'BatchGetItem', 'BatchWriteItem', 'CreateTable', 'DeleteItem', 'DeleteTable', 'DescribeTable',
  'DescribeTimeToLive', 'GetItem', 'ListTables', 'PutItem', 'Query', 'Scan', 'TagResource',
  'UntagResource', 'ListTagsOfResource', 'UpdateItem', 'UpdateTable',
] as const;

type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export class DynamoStandIn extends StandInServer {
  private readonly db: http.Server;
  private readonly forward: RequestListener;
  private dbClosed = false;
  /** Conditional writes refused (ConditionalCheckFailedException): lost races for a serial, among others. */
  conditionalCheckFailures = 0;

  constructor(port: number, path?: string) {
    super(port, DYNALITE_OPS);
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
    // Count refused conditions from the answer's error type (dynalite sends each answer in one end()).
    const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
    res.end = ((...args: unknown[]) => {
      const chunk = args[0];
      if (res.statusCode === 400 && (typeof chunk === 'string' || Buffer.isBuffer(chunk)) && chunk.toString().includes('ConditionalCheckFailedException'))
        this.conditionalCheckFailures++;
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
    // dynalite only closes its database from its server's close(), and that bails out with
    // ERR_SERVER_NOT_RUNNING unless the server is listening: so listen briefly, then close.
    await new Promise<void>((resolve, reject) => {
      this.db.once('error', reject);
      this.db.listen(0, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}

export async function startDynamo(opts: { port?: number; path?: string } = {}): Promise<DynamoStandIn> {
  const dynamo = new DynamoStandIn(opts.port ?? 0, opts.path);
  await dynamo.start();
  return dynamo;
}
