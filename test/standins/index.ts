/**
 * Start both stand-ins and describe them as environment variables for a spawned CLI, which then
 * reaches them through its real SDK clients (design.md "Backends").
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { TABLE_KEYS } from '../../src/core/storage';
import { startDynamo, type DynamoStandIn } from './dynamodb';
import { startKms, type KmsStandIn } from './kms';
import { startSecretsManager, type SecretsManagerStandIn } from './secrets-manager';
import { startSsm, type SsmStandIn } from './ssm';
import { startSts, type StsStandIn } from './sts';

export { startDynamo, DynamoStandIn } from './dynamodb';
export { startKms, KmsStandIn, KmsError, type ContextCondition, type Fault, type KmsKey } from './kms';
export { startSts, type StsStandIn, principalArn } from './sts';
export { startSsm, SsmStandIn } from './ssm';
export { startSecretsManager, SecretsManagerStandIn } from './secrets-manager';

export const REGION = 'us-east-1';
/** Unrestricted unless kms.setPermissions says otherwise. */
export const ADMIN_ACCESS_KEY_ID = 'AKIDADMIN';

// A path that doesn't exist: keeps a developer's ~/.aws (profiles, endpoint_url, credential_process)
// out of spawned processes; the SDK treats a missing file as empty.
const NO_AWS_FILE = path.join(os.tmpdir(), 'ecs-secrets-standins-no-such-aws-file');

/** Credentials for a spawned process, to be merged over process.env. Also blanks AWS_PROFILE: the
 * SDK's default chain prefers a profile over AWS_ACCESS_KEY_ID when both are set. Empty strings
 * count as unset for the SDK. */
export function credentialsEnv(accessKeyId: string, secretAccessKey = 'secret'): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
  };
}

export interface StandIns {
  kms: KmsStandIn;
  dynamo: DynamoStandIn;
  sts: StsStandIn;
  /** The import sources (`import ssm|chamber|secretsmanager`). */
  ssm: SsmStandIn;
  secretsManager: SecretsManagerStandIn;
  /** Merge over process.env for a spawned CLI: `{ ...process.env, ...s.env }`. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startStandIns(): Promise<StandIns> {
  const kms = await startKms({ region: REGION });
  const dynamo = await startDynamo().catch(async (err: unknown) => {
    await kms.close();
    throw err;
  });
  const sts = await startSts();
  const ssm = await startSsm();
  const secretsManager = await startSecretsManager({ region: REGION });
  const env: Record<string, string> = {
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_KMS: kms.endpoint,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    AWS_ENDPOINT_URL_SSM: ssm.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
    AWS_ENDPOINT_URL: '', // a generic endpoint from the parent must not catch other services
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    ...credentialsEnv(ADMIN_ACCESS_KEY_ID),
    AWS_CONFIG_FILE: NO_AWS_FILE,
    AWS_SHARED_CREDENTIALS_FILE: NO_AWS_FILE,
    AWS_EC2_METADATA_DISABLED: 'true', // no slow instance-metadata probing if credentials go missing
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  return {
    kms,
    dynamo,
    sts,
    ssm,
    secretsManager,
    env,
    async close() {
      await Promise.all([kms.close(), dynamo.close(), sts.close(), ssm.close(), secretsManager.close()]);
    },
  };
}

/** Wait until a table is ACTIVE. Needed even with createTableMs 0: dynalite flips the status from a
 * timer after CreateTable has answered, and until then item operations get ResourceNotFoundException
 * (as on real DynamoDB). The SDK's waitUntilTableExists would first sleep its minDelay (20 s by
 * default, whole seconds only). */
export async function waitForActiveTable(client: DynamoDBClient, tableName: string): Promise<TableDescription> {
  for (let i = 0; ; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return Table;
    if (i >= 250) throw new Error(`table ${tableName} still ${Table?.TableStatus} after 5 s`);
    await sleep(20);
  }
}

export interface AppResources {
  keyId: string;
  keyArn: string;
  aliasName: string;
  tableName: string;
  tableArn: string;
}

/** What `setup` would have created for `app`: the KMS key and alias (directly in the stand-in, so
 * KMS counts stay untouched) and the table (through the real SDK, so DynamoDB counts do include
 * CreateTable/DescribeTable: reset them afterwards if that matters). */
export async function createAppResources(kms: KmsStandIn, dynamoEndpoint: string, app: string): Promise<AppResources> {
  const key = kms.createKey({ description: `ecs-secrets key for ${app}` });
  const keyId = key.KeyId as string;
  const aliasName = `alias/ECSSecretsMaskerKey-${app}`;
  kms.createAlias(aliasName, keyId);

  const tableName = `ECS-Secrets-${app}-Secrets`;
  const client = new DynamoDBClient({
    endpoint: dynamoEndpoint,
    region: REGION,
    credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
  });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        ...TABLE_KEYS,
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const table = await waitForActiveTable(client, tableName);
    return { keyId, keyArn: key.Arn as string, aliasName, tableName, tableArn: table.TableArn as string };
  } finally {
    client.destroy();
  }
}
