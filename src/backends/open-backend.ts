/**
 * Wiring: builds a SecretsService for one application on either backend.
 * - AWS: DynamoDB table and KMS alias named after the application (created by `setup`).
 * - Embedded (--local): dynalite in the data dir and the local master key; the table is created
 *   on first use so `create --local` works on an empty directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { MiddlewareStack } from '@smithy/types';
import { dynamoClient, kmsClient, stsClient } from './aws';
import type { EmbeddedDynamo as EmbeddedDynamoType } from './embedded';
import { AgeConfigKeys, type ConfigKeySource, KmsConfigKeys } from '../config/keysource';
import { ConfigService, isConfigItemName } from '../config/documents-service';
import {
  type DataKeyCacheOptions,
  type KeyProvider,
  KmsKeyProvider,
  LocalKeyProvider,
  MASTER_KEY_FILE,
  withDataKeyCache,
} from '../core/keys';
import { principalResolver } from '../core/identity';
import { ensurePrivateDir } from '../core/private-files';
import type { Logger } from '../core/log';
import { AppError } from '../core/errors';
import { keyAlias, tableName } from '../core/names';
import { SecretsService } from '../core/secrets-service';
import { SecretStore } from '../core/storage';

export const DEFAULT_DATA_DIR = '.ecs-secrets';

export interface BackendOptions {
  app: string;
  local: boolean;
  dataDir?: string;
  region?: string;
  /** Cache decrypted data keys in memory (the daemon does; one-shot commands need not). */
  dataKeyCache?: DataKeyCacheOptions;
  /** Called after every DynamoDB/KMS call (metrics). `error` is the error name on failure. */
  onBackendCall?: BackendCallHook;
  /** Where a failed caller-identity lookup is reported (core/identity.ts). */
  logger?: Logger;
  /**
   * Embedded only: refuse a data dir that holds no store instead of creating one. Commands that
   * only read (or change existing secrets) set it: a mistyped --data-dir, or a command run from
   * another directory, would otherwise make a new empty store and answer "not found" from it.
   */
  mustExist?: boolean;
}

export type BackendCallHook = (service: 'dynamodb' | 'kms', operation: string, error?: string) => void;

/** Count calls at the SDK's middleware stack: one per logical call, retries included in it. */
function instrument(client: DynamoDBClient | KMSClient, service: 'dynamodb' | 'kms', hook?: BackendCallHook): void {
  if (!hook) return;
  (client.middlewareStack as MiddlewareStack<object, object>).add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      try {
        const out = await next(args);
        hook(service, operation);
        return out;
      } catch (err) {
        hook(service, operation, (err as Error)?.name ?? 'Error');
        throw err;
      }
    },
    { step: 'initialize', name: 'ecsSecretsBackendMetrics' },
  );
}

export interface Backend {
  service: SecretsService;
  /** Configuration documents, in the same table (`config/` names). */
  config: ConfigService;
  /** A short description for logs: which table and key, or which data dir. */
  description: string;
  /** Bytes held by the data-key cache (0 without one): the daemon's metrics. */
  cachedKeyBytes(): number;
  close(): Promise<void>;
}

/** Only the config key source (`config encrypt/decrypt` on local files: no table involved). */
export function openConfigKeys(opts: { app: string; local: boolean; dataDir?: string; region?: string }): {
  keys: ConfigKeySource;
  close(): void;
} {
  if (opts.local)
    return { keys: new AgeConfigKeys(path.resolve(opts.dataDir ?? DEFAULT_DATA_DIR)), close: () => undefined };
  const kms = kmsClient({ region: opts.region });
  return { keys: new KmsConfigKeys(kms, keyAlias(opts.app)), close: () => kms.destroy() };
}

export async function openBackend(opts: BackendOptions): Promise<Backend> {
  const table = tableName(opts.app);
  let cachedKeyBytes = () => 0;
  const cache = (k: KeyProvider): KeyProvider => {
    if (!opts.dataKeyCache) return k;
    const cached = withDataKeyCache(k, opts.dataKeyCache);
    cachedKeyBytes = () => cached.cachedBytes();
    return cached;
  };
  if (opts.local) {
    const dataDir = path.resolve(opts.dataDir ?? DEFAULT_DATA_DIR);
    if (opts.mustExist) {
      // A directory that is there is checked as for any open (ownership, mode, links) first: that
      // is the more precise message. The master key is made with the store and never removed.
      if (fs.existsSync(dataDir)) ensurePrivateDir(dataDir);
      if (!fs.existsSync(path.join(dataDir, MASTER_KEY_FILE)))
        throw new AppError(
          'not_found',
          `no embedded store at ${dataDir} (create one with \`setup --local\` or \`create\`)`,
        );
    }
    // Loaded only here: an AWS-mode process (every sidecar in production) has no use for dynalite
    // and LevelDB's native addon, and should not carry them in memory.
    const { EmbeddedDynamo } = require('./embedded') as { EmbeddedDynamo: typeof EmbeddedDynamoType };
    const embedded = new EmbeddedDynamo(dataDir);
    const client = dynamoClient({ embedded: { endpoint: embedded.endpoint, requestHandler: embedded.requestHandler } });
    instrument(client, 'dynamodb', opts.onBackendCall);
    const store = new SecretStore(client, table, { isDocument: isConfigItemName });
    store.principal = principalResolver({ local: true });
    const keys = cache(new LocalKeyProvider(dataDir));
    try {
      await store.ensureTable();
      await keys.describe(); // creates the master key on first use
    } catch (err) {
      await embedded.close();
      throw err;
    }
    return {
      service: new SecretsService(opts.app, store, keys),
      config: new ConfigService(opts.app, store, new AgeConfigKeys(dataDir), opts.logger),
      description: `embedded store in ${dataDir}, table ${table}`,
      cachedKeyBytes: () => cachedKeyBytes(),
      async close() {
        client.destroy();
        await embedded.close();
      },
    };
  }
  const ddb = dynamoClient({ region: opts.region });
  const kms = kmsClient({ region: opts.region });
  instrument(ddb, 'dynamodb', opts.onBackendCall);
  instrument(kms, 'kms', opts.onBackendCall);
  const alias = keyAlias(opts.app);
  const store = new SecretStore(ddb, table, { isDocument: isConfigItemName });
  store.principal = principalResolver({
    local: false,
    sts: () => stsClient({ region: opts.region }),
    logger: opts.logger,
  });
  return {
    service: new SecretsService(opts.app, store, cache(new KmsKeyProvider(kms, alias))),
    config: new ConfigService(opts.app, store, new KmsConfigKeys(kms, alias), opts.logger),
    description: `DynamoDB table ${table}, KMS key ${alias}`,
    cachedKeyBytes: () => cachedKeyBytes(),
    async close() {
      ddb.destroy();
      kms.destroy();
    },
  };
}
