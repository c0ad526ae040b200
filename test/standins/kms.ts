/**
 * An in-process KMS stand-in speaking the real KMS JSON 1.1 protocol, so the real SDK v3 KMSClient
 * can be pointed at it (endpoint / AWS_ENDPOINT_URL_KMS). It keeps the properties our code relies
 * on: ciphertext is bound to the key and to the EncryptionContext, access can be denied per access
 * key (optionally depending on the EncryptionContext, like an IAM condition), and it can be made
 * slow, throttling or unreachable.
 *
 * Also home of StandInServer, the HTTP plumbing (counting, faults, outages) shared with the
 * DynamoDB stand-in.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { KeyMetadata } from '@aws-sdk/client-kms';

export interface Fault {
  /** Delay every response by this many milliseconds. */
  delayMs?: number;
  /** Answer every request with the service's throttling error. */
  throttle?: boolean;
  /** Stop listening (like stop()); a later setFault without `down` listens again on the same port. */
  down?: boolean;
}

/** HTTP server for a stand-in: counts requests per operation, injects faults, and can go down and
 * come back on the same port while keeping its state. */
export abstract class StandInServer {
  /** Requests received per operation (throttled and denied ones included), plus `total`. */
  readonly counts: Record<string, number> = {};
  private readonly server: http.Server;
  // Tracked so that stop() really cuts the service off: the SDK keeps connections alive, and
  // server.close() alone would let those pooled connections keep being served.
  private readonly sockets = new Set<Socket>();
  private readonly delayed = new Set<NodeJS.Timeout>();
  private fault: Fault = {};
  private downByFault = false;
  private closed = false;
  private port: number;

  protected constructor(
    port: number,
    private readonly knownOps: readonly string[],
  ) {
    this.port = port;
    this.resetCounts();
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Operation name for counting, from the request headers (the body is not read yet). */
  protected abstract operationOf(req: http.IncomingMessage): string;
  /** Send the service's throttling error. */
  protected abstract sendThrottled(res: http.ServerResponse): void;
  /** Serve one request. */
  protected abstract handle(req: http.IncomingMessage, res: http.ServerResponse): void;

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  resetCounts(): void {
    // In place, so a reference to `counts` taken earlier stays live. Known operations start at 0
    // so `expect(counts.X).toBe(0)` works.
    for (const k of Object.keys(this.counts)) delete this.counts[k];
    for (const op of this.knownOps) this.counts[op] = 0;
    this.counts.total = 0;
  }

  /** Await it when using `down` (stop/start are asynchronous); delay/throttle apply at once. */
  async setFault(fault: Fault | null): Promise<void> {
    this.fault = { delayMs: fault?.delayMs, throttle: fault?.throttle };
    if (fault?.down) {
      if (this.listening) {
        this.downByFault = true;
        await this.stop();
      }
    } else if (this.downByFault) {
      await this.start();
    }
  }

  /** Listen on 127.0.0.1; again on the same port after stop(). */
  async start(): Promise<void> {
    if (this.closed) throw new Error('stand-in is closed');
    this.downByFault = false;
    if (this.server.listening) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Go down now: refuse new connections and drop open ones (requests in flight fail). State is kept. */
  async stop(): Promise<void> {
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    // Give in-process clients a moment to notice their pooled connections are gone, so their next
    // request tries to connect (ECONNREFUSED) instead of failing on a dead socket (ECONNRESET).
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** Final shutdown. */
  async close(): Promise<void> {
    this.closed = true;
    await this.stop();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const op = this.operationOf(req);
    this.counts[op] = (this.counts[op] ?? 0) + 1;
    this.counts.total += 1;
    const serve = (): void => {
      if (req.socket.destroyed) return;
      if (this.fault.throttle) {
        req.resume(); // drain the body we won't read
        this.sendThrottled(res);
      } else {
        this.handle(req, res);
      }
    };
    const delayMs = this.fault.delayMs ?? 0;
    if (delayMs <= 0) {
      serve();
      return;
    }
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      serve();
    }, delayMs);
    this.delayed.add(timer);
  }
}

export function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------

export const KMS_ACCOUNT_ID = '123456789012';
const KMS_OPS = ['CreateKey', 'CreateAlias', 'DescribeKey', 'GenerateDataKey', 'Encrypt', 'Decrypt'] as const;
/** Operations that carry an EncryptionContext, so context conditions apply to them. */
const CONTEXT_OPS = new Set(['GenerateDataKey', 'Encrypt', 'Decrypt']);

export interface KmsKey {
  readonly keyId: string;
  readonly arn: string;
  readonly description: string;
  readonly policy?: string;
  readonly creationDate: Date;
  /** The key material: the stand-in's equivalent of the HSM-held key. */
  readonly material: Buffer;
}

/** Like an IAM condition on kms:EncryptionContext:<key>; only checked for Encrypt, Decrypt and
 * GenerateDataKey (the operations that carry a context). */
export interface ContextCondition {
  /** Every listed pair must be present in the request's EncryptionContext. */
  contextEquals?: Record<string, string>;
  /** Glob (`*`, `?`) the context's 'ecs-secrets:name' must match, like StringLike. */
  contextNameLike?: string;
  /** Context key → glob the request's value must match, like StringLike on
   * kms:EncryptionContext:<key> (e.g. {'ecs-secrets:config': 'team-a/*'}); a missing key is denied. */
  contextLike?: Record<string, string>;
}

type EncryptionContext = Record<string, string>;
type Input = Record<string, unknown>;

/** Thrown by the programmatic helpers too; `type` is the KMS error name. */
export class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

// Blob layout: MAGIC | version | keyId length | keyId | 12-byte IV | 16-byte tag | ciphertext.
// The header and the canonical EncryptionContext are the GCM AAD, so changing either fails.
const MAGIC = Buffer.from('SKMS');
const VERSION = 1;

function canonicalContext(ctx: EncryptionContext): Buffer {
  return Buffer.from(
    JSON.stringify(
      Object.keys(ctx)
        .sort()
        .map((k) => [k, ctx[k]]),
    ),
  );
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export class KmsStandIn extends StandInServer {
  readonly accountId = KMS_ACCOUNT_ID;
  private readonly keyMap = new Map<string, KmsKey>();
  private readonly aliasMap = new Map<string, string>(); // alias name -> key id
  private readonly permissions = new Map<string, { ops: Set<string>; condition?: ContextCondition }>();

  constructor(
    port: number,
    readonly region: string,
  ) {
    super(port, KMS_OPS);
  }

  get keys(): ReadonlyMap<string, KmsKey> {
    return this.keyMap;
  }

  /** Alias name (`alias/...`) to key id. */
  get aliases(): ReadonlyMap<string, string> {
    return this.aliasMap;
  }

  createKey(opts: { description?: string; policy?: string } = {}): KeyMetadata {
    const keyId = randomUUID();
    const key: KmsKey = {
      keyId,
      arn: `arn:aws:kms:${this.region}:${this.accountId}:key/${keyId}`,
      description: opts.description ?? '',
      policy: opts.policy,
      creationDate: new Date(),
      material: randomBytes(32),
    };
    this.keyMap.set(keyId, key);
    return this.metadata(key);
  }

  createAlias(aliasName: string, targetKeyId: string): void {
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(aliasName) || aliasName.startsWith('alias/aws/')) {
      throw new KmsError('InvalidAliasNameException', `Alias name ${aliasName} is not valid.`);
    }
    // Like KMS, an alias must target a key (id or key ARN), not another alias.
    const key = targetKeyId.includes('alias/') ? undefined : this.resolveKey(targetKeyId);
    if (!key) throw new KmsError('NotFoundException', `Key '${targetKeyId}' does not exist`);
    if (this.aliasMap.has(aliasName)) {
      throw new KmsError('AlreadyExistsException', `An alias with the name ${this.aliasArn(aliasName)} already exists`);
    }
    this.aliasMap.set(aliasName, key.keyId);
  }

  /** Key id, key ARN, alias name or alias ARN (ARNs only in this region and account). */
  resolveKey(id: string): KmsKey | undefined {
    let rest = id;
    if (id.startsWith('arn:')) {
      const prefix = `arn:aws:kms:${this.region}:${this.accountId}:`;
      if (!id.startsWith(prefix)) return undefined;
      rest = id.slice(prefix.length);
      if (rest.startsWith('key/')) rest = rest.slice('key/'.length);
      else if (!rest.startsWith('alias/')) return undefined;
    }
    if (rest.startsWith('alias/')) {
      const keyId = this.aliasMap.get(rest);
      return keyId === undefined ? undefined : this.keyMap.get(keyId);
    }
    return this.keyMap.get(rest);
  }

  /** Restrict an access key to these operations (e.g. ['Decrypt', 'DescribeKey']), optionally
   * under an EncryptionContext condition. `null` lifts the restriction. Unlisted keys may do anything. */
  setPermissions(accessKeyId: string, ops: readonly string[] | null, condition?: ContextCondition): void {
    if (ops === null) this.permissions.delete(accessKeyId);
    else this.permissions.set(accessKeyId, { ops: new Set(ops.map((o) => o.replace(/^kms:/, ''))), condition });
  }

  resetPermissions(): void {
    this.permissions.clear();
  }

  protected operationOf(req: http.IncomingMessage): string {
    const target = String(req.headers['x-amz-target'] ?? '');
    return target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : target || '(no target)';
  }

  protected sendThrottled(res: http.ServerResponse): void {
    this.reply(res, 400, { __type: 'ThrottlingException', message: 'Rate exceeded' });
  }

  protected handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    readBody(req)
      .then((body) => this.dispatch(req, body))
      .then(
        (out) => this.reply(res, 200, out),
        (err: unknown) => {
          if (err instanceof KmsError) this.reply(res, 400, { __type: err.type, message: err.message });
          else this.reply(res, 500, { __type: 'KMSInternalException', message: String(err) });
        },
      );
  }

  private reply(res: http.ServerResponse, status: number, body: object): void {
    if (res.destroyed || res.writableEnded) return;
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/x-amz-json-1.1');
    res.setHeader('Content-Length', Buffer.byteLength(text));
    res.setHeader('x-amzn-RequestId', randomUUID());
    if (status >= 400) res.setHeader('x-amzn-ErrorType', (body as { __type: string }).__type);
    res.end(text);
  }

  private dispatch(req: http.IncomingMessage, body: string): object {
    const op = this.operationOf(req);
    if (!(KMS_OPS as readonly string[]).includes(op)) {
      throw new KmsError('UnknownOperationException', `Unknown operation ${op}`);
    }
    let input: Input;
    try {
      const parsed: unknown = body === '' ? {} : JSON.parse(body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      input = parsed as Input;
    } catch {
      throw new KmsError('SerializationException', 'Request body is not a JSON object');
    }
    const akid = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? 'anonymous';

    switch (op as (typeof KMS_OPS)[number]) {
      case 'CreateKey': {
        this.authorize(akid, op, '*');
        if (input.KeyUsage !== undefined && input.KeyUsage !== 'ENCRYPT_DECRYPT') {
          throw new KmsError('ValidationException', 'This stand-in only supports KeyUsage ENCRYPT_DECRYPT');
        }
        const spec = input.KeySpec ?? input.CustomerMasterKeySpec;
        if (spec !== undefined && spec !== 'SYMMETRIC_DEFAULT') {
          throw new KmsError('ValidationException', 'This stand-in only supports KeySpec SYMMETRIC_DEFAULT');
        }
        const meta = this.createKey({
          description: optString(input, 'Description'),
          policy: optString(input, 'Policy'),
        });
        return { KeyMetadata: this.wireMetadata(this.keyMap.get(meta.KeyId as string) as KmsKey) };
      }
      case 'CreateAlias': {
        const aliasName = reqString(input, 'AliasName');
        const target = reqString(input, 'TargetKeyId');
        this.authorize(akid, op, this.aliasArn(aliasName));
        this.createAlias(aliasName, target);
        return {};
      }
      case 'DescribeKey': {
        const key = this.requireKey(reqString(input, 'KeyId'));
        this.authorize(akid, op, key.arn);
        return { KeyMetadata: this.wireMetadata(key) };
      }
      case 'GenerateDataKey': {
        const key = this.requireKey(reqString(input, 'KeyId'));
        const ctx = contextOf(input);
        this.authorize(akid, op, key.arn, ctx);
        const n = input.NumberOfBytes;
        const spec = input.KeySpec;
        if ((n === undefined) === (spec === undefined)) {
          throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
        }
        let length: number;
        if (spec === 'AES_256') length = 32;
        else if (spec === 'AES_128') length = 16;
        else if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1024) length = n;
        else throw new KmsError('ValidationException', 'Invalid KeySpec or NumberOfBytes');
        const plaintext = randomBytes(length);
        return {
          CiphertextBlob: this.seal(key, plaintext, ctx).toString('base64'),
          Plaintext: plaintext.toString('base64'),
          KeyId: key.arn,
        };
      }
      case 'Encrypt': {
        const key = this.requireKey(reqString(input, 'KeyId'));
        const ctx = contextOf(input);
        this.authorize(akid, op, key.arn, ctx);
        const plaintext = Buffer.from(reqString(input, 'Plaintext'), 'base64');
        if (plaintext.length < 1 || plaintext.length > 4096) {
          throw new KmsError('ValidationException', 'Plaintext must be between 1 and 4096 bytes');
        }
        return {
          CiphertextBlob: this.seal(key, plaintext, ctx).toString('base64'),
          KeyId: key.arn,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'Decrypt': {
        const blob = Buffer.from(reqString(input, 'CiphertextBlob'), 'base64');
        const ctx = contextOf(input);
        const { key, header, rest } = this.parseBlob(blob);
        // As in KMS, a KeyId in the request must name the key the blob was made with.
        if (typeof input.KeyId === 'string' && this.requireKey(input.KeyId).keyId !== key.keyId) {
          throw new KmsError(
            'IncorrectKeyException',
            'The key ID in the request does not identify a KMS key that can perform this operation.',
          );
        }
        this.authorize(akid, op, key.arn, ctx);
        const plaintext = this.open(key, header, rest, ctx);
        return { Plaintext: plaintext.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      }
    }
  }

  private authorize(akid: string, op: string, resource: string, ctx?: EncryptionContext): void {
    const perm = this.permissions.get(akid);
    if (!perm) return;
    const denied = (): KmsError =>
      new KmsError(
        'AccessDeniedException',
        `User: ${akid} is not authorized to perform: kms:${op} on resource: ${resource} because no identity-based policy allows the kms:${op} action`,
      );
    if (!perm.ops.has(op) && !perm.ops.has('*')) throw denied();
    const cond = perm.condition;
    if (!cond || !CONTEXT_OPS.has(op)) return;
    const context = ctx ?? {};
    for (const [k, v] of Object.entries(cond.contextEquals ?? {})) {
      if (context[k] !== v) throw denied();
    }
    if (cond.contextNameLike !== undefined) {
      const name = context['ecs-secrets:name'];
      if (name === undefined || !globToRegExp(cond.contextNameLike).test(name)) throw denied();
    }
    for (const [k, glob] of Object.entries(cond.contextLike ?? {})) {
      const v = context[k];
      if (v === undefined || !globToRegExp(glob).test(v)) throw denied();
    }
  }

  private requireKey(id: string): KmsKey {
    const key = this.resolveKey(id);
    if (!key) {
      const what = id.includes('alias/') ? `Alias ${id.startsWith('arn:') ? id : this.aliasArn(id)}` : `Key '${id}'`;
      throw new KmsError('NotFoundException', `${what} is not found.`);
    }
    return key;
  }

  private seal(key: KmsKey, plaintext: Buffer, ctx: EncryptionContext): Buffer {
    const keyId = Buffer.from(key.keyId);
    const header = Buffer.concat([MAGIC, Buffer.from([VERSION, keyId.length]), keyId]);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.material, iv);
    cipher.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, iv, cipher.getAuthTag(), ct]);
  }

  private parseBlob(blob: Buffer): { key: KmsKey; header: Buffer; rest: Buffer } {
    const invalid = new KmsError('InvalidCiphertextException', '');
    if (blob.length < MAGIC.length + 2 || !blob.subarray(0, MAGIC.length).equals(MAGIC) || blob[4] !== VERSION) {
      throw invalid;
    }
    const headerLength = MAGIC.length + 2 + blob[5];
    if (blob.length < headerLength + 12 + 16) throw invalid;
    const key = this.keyMap.get(blob.subarray(MAGIC.length + 2, headerLength).toString());
    if (!key) throw invalid;
    return { key, header: blob.subarray(0, headerLength), rest: blob.subarray(headerLength) };
  }

  private open(key: KmsKey, header: Buffer, rest: Buffer, ctx: EncryptionContext): Buffer {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.material, rest.subarray(0, 12));
      decipher.setAAD(Buffer.concat([header, canonicalContext(ctx)]));
      decipher.setAuthTag(rest.subarray(12, 28));
      return Buffer.concat([decipher.update(rest.subarray(28)), decipher.final()]);
    } catch {
      // Real KMS says nothing more either: wrong context, wrong key and tampering look alike.
      throw new KmsError('InvalidCiphertextException', '');
    }
  }

  private aliasArn(aliasName: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${aliasName}`;
  }

  private metadata(key: KmsKey): KeyMetadata {
    return {
      AWSAccountId: this.accountId,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: key.creationDate,
      Enabled: true,
      Description: key.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: 'Enabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      KeySpec: 'SYMMETRIC_DEFAULT',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
    };
  }

  /** JSON 1.1 sends timestamps as epoch seconds. */
  private wireMetadata(key: KmsKey): object {
    return { ...this.metadata(key), CreationDate: key.creationDate.getTime() / 1000 };
  }
}

function optString(input: Input, field: string): string | undefined {
  const v = input[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new KmsError('ValidationException', `${field} must be a string`);
  return v;
}

function reqString(input: Input, field: string): string {
  const v = optString(input, field);
  if (v === undefined || v === '') {
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return v;
}

function contextOf(input: Input): EncryptionContext {
  const ctx = input.EncryptionContext;
  if (ctx === undefined) return {};
  if (
    typeof ctx !== 'object' ||
    ctx === null ||
    Array.isArray(ctx) ||
    Object.values(ctx).some((v) => typeof v !== 'string')
  ) {
    throw new KmsError('ValidationException', 'EncryptionContext must map strings to strings');
  }
  return ctx as EncryptionContext;
}

export async function startKms(opts: { port?: number; region?: string } = {}): Promise<KmsStandIn> {
  const kms = new KmsStandIn(opts.port ?? 0, opts.region ?? 'us-east-1');
  await kms.start();
  return kms;
}
