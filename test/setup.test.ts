/**
 * `ecs-secrets setup` end to end: the built CLI, spawned as an operator runs it, creating stacks in
 * the CloudFormation stand-in (which materialises the table in dynalite and the key and alias in
 * the KMS stand-in, and turns the key policy into KMS permissions for the two roles' access keys).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { validatePrincipalArn } from '../src/setup/principals';
import { type SetupResult, setupStack } from '../src/setup/stack';
import { CLI, type CliResult, baseEnv, json, runCli } from './helpers/cli';
import { spawnDaemon } from './helpers/daemon';
import { REGION, type StandIns, credentialsEnv, startStandIns } from './standins';
import { type CloudFormationStandIn, startCloudFormation } from './standins/cloudformation';

const ACCOUNT = '123456789012';
const CREATE_ARN = `arn:aws:iam::${ACCOUNT}:role/SecretsAdmin`;
const FETCH_ARN = `arn:aws:iam::${ACCOUNT}:role/MyApplicationRole`;
const CREATE_AKID = 'AKIDSECRETSADMIN';
const FETCH_AKID = 'AKIDMYAPPLICATION';

interface World {
  s: StandIns;
  cfn: CloudFormationStandIn;
  env: Record<string, string>;
  cf: CloudFormationClient;
  ddb: DynamoDBClient;
  close(): Promise<void>;
}

async function startWorld(): Promise<World> {
  const s = await startStandIns();
  const cfn = await startCloudFormation({
    kms: s.kms,
    dynamoEndpoint: s.dynamo.endpoint,
    principals: { [CREATE_ARN]: CREATE_AKID, [FETCH_ARN]: FETCH_AKID },
  });
  const credentials = { accessKeyId: 'AKIDADMIN', secretAccessKey: 'secret' };
  const cf = new CloudFormationClient({ endpoint: cfn.endpoint, region: REGION, credentials });
  const ddb = new DynamoDBClient({ endpoint: s.dynamo.endpoint, region: REGION, credentials });
  return {
    s,
    cfn,
    env: { ...s.env, AWS_ENDPOINT_URL_CLOUDFORMATION: cfn.endpoint },
    cf,
    ddb,
    async close() {
      cf.destroy();
      ddb.destroy();
      await cfn.close();
      await s.close();
    },
  };
}

const setupArgs = (app: string, extra: string[] = []) => [
  'setup',
  '--application-name',
  app,
  '--create-principal',
  CREATE_ARN,
  '--fetch-role',
  FETCH_ARN,
  ...extra,
];

/** Exit 0 and JSON on stdout, or a failure message with everything the process said. */
function ok<T>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return json<T>(r);
}

/** One line of error (setup's progress lines aside), nothing on stdout, no stack trace. */
function expectOneLineError(r: CliResult, code: number, pattern: RegExp): string {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  const errorLines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('ecs-secrets: '));
  expect(errorLines).toHaveLength(1);
  expect(errorLines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return errorLines[0];
}

async function tableExists(ddb: DynamoDBClient, name: string): Promise<boolean> {
  try {
    await ddb.send(new DescribeTableCommand({ TableName: name }));
    return true;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return false;
    throw err;
  }
}

/** A setup run we can watch while it runs: resolves `until(re)` when stderr matches. */
function spawnSetup(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...baseEnv(), ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ re: RegExp; resolve(): void; reject(e: Error): void }> = [];
  const check = () => {
    for (const w of [...waiters])
      if (w.re.test(stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => {
    stderr += d;
    check();
  });
  let exited = false;
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      for (const w of waiters.splice(0))
        w.reject(new Error(`setup exited (${code}) before stderr matched ${w.re}: ${stderr}`));
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    get exited() {
      return exited;
    },
    stderr: () => stderr,
    until: (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        waiters.push({ re, resolve, reject });
        check();
      }),
  };
}

describe('principal ARN validation', () => {
  test.each([
    ['create-principal', 'arn:aws:iam::123456789012:role/SecretsAdmin'],
    ['create-principal', 'arn:aws:iam::123456789012:user/cryptex-admin'],
    ['create-principal', 'arn:aws:iam::123456789012:role/team/ops/SecretsAdmin'],
    ['fetch-role', 'arn:aws:iam::123456789012:role/MyApplicationRole'],
    ['fetch-role', 'arn:aws-cn:iam::123456789012:role/app+role=x,y.z@w-1_2'],
    ['fetch-role', 'arn:aws-us-gov:iam::123456789012:role/service-role/App'],
  ] as const)('accepts --%s %s', (flag, arn) => {
    expect(validatePrincipalArn(arn, flag)).toBe(arn);
  });

  test.each([
    ['create-principal', undefined, /missing --create-principal: pass the ARN of the IAM role or user/],
    ['fetch-role', '', /missing --fetch-role: pass the ARN of the IAM role \(task role\)/],
    ['fetch-role', 'MyApplicationRole', /invalid --fetch-role "MyApplicationRole": not an ARN/],
    ['fetch-role', 'arn:aws:iam::123456789012:user/bob', /a user cannot be the fetch role/],
    [
      'create-principal',
      'arn:aws:sts::123456789012:assumed-role/SecretsAdmin/i-0abc',
      /session \(assumed-role\) ARN; pass the role's own ARN, arn:aws:iam::123456789012:role\/SecretsAdmin/,
    ],
    ['create-principal', 'arn:aws:iam::123456789012:group/admins', /groups cannot be principals/],
    ['fetch-role', 'arn:aws:iam::123456789012:instance-profile/web', /instance profile/],
    ['fetch-role', 'arn:aws:iam::12345:role/App', /not an IAM role ARN/],
    ['fetch-role', 'arn:aws:iam::123456789012:role/', /not an IAM role ARN/],
    ['fetch-role', 'arn:aws:iam::123456789012:role/has space', /not an IAM role ARN/],
    ['create-principal', 'arn:aws:iam::123456789012:root', /not an IAM role or user ARN/],
    ['fetch-role', `arn:aws:iam::123456789012:role/${'a'.repeat(65)}`, /not an IAM role ARN/],
  ] as const)('rejects --%s %p', (flag, arn, message) => {
    expect(() => validatePrincipalArn(arn, flag)).toThrow(message);
    try {
      validatePrincipalArn(arn, flag);
    } catch (err) {
      expect((err as { kind: string }).kind).toBe('usage');
      expect((err as Error).message).not.toContain('\n');
    }
  });
});

describe('setup against the CloudFormation stand-in', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    await w.close();
  });
  afterEach(() => w.cfn.clearFailures());

  const setup = (app: string, extra: string[] = [], env: Record<string, string> = {}) =>
    runCli(setupArgs(app, extra), { env: { ...w.env, ...env } });

  // One ARN the rule refuses is enough here: which ARNs it refuses, and why, is the in-process
  // table above; this checks that setup applies it, as a usage error, before any call.
  test.each([
    [
      'no --create-principal',
      ['setup', '--application-name', 'cryptex', '--fetch-role', FETCH_ARN],
      /missing --create-principal/,
    ],
    [
      'no --fetch-role',
      ['setup', '--application-name', 'cryptex', '--create-principal', CREATE_ARN],
      /missing --fetch-role/,
    ],
    [
      'a role name for an ARN',
      ['setup', '--application-name', 'cryptex', '--create-principal', 'SecretsAdmin', '--fetch-role', FETCH_ARN],
      /invalid --create-principal "SecretsAdmin": not an ARN/,
    ],
    ['a bad application name', setupArgs('my_app'), /invalid application name "my_app"/],
    // Checked before setup chooses between AWS and --local: once, here.
    [
      'no application name',
      ['setup', '--create-principal', CREATE_ARN, '--fetch-role', FETCH_ARN],
      /missing application name/,
    ],
    [
      'an unknown flag',
      [...setupArgs('cryptex'), '--fetch-roles', FETCH_ARN],
      /Unknown argument: --fetch-roles \(did you mean --fetch-role\?\)/,
    ],
  ])('%s: usage error before any AWS call', async (_what, args, message) => {
    const before = w.cfn.counts.total;
    const r = await runCli(args, { env: w.env });
    expectOneLineError(r, 2, message);
    expect(w.cfn.counts.total).toBe(before);
  });

  test('a bad ARN is reported even with no region or credentials at all', async () => {
    const r = await runCli([
      'setup',
      '--application-name',
      'cryptex',
      '--create-principal',
      CREATE_ARN,
      '--fetch-role',
      'oops',
    ]);
    expectOneLineError(r, 2, /invalid --fetch-role "oops"/);
  });

  test('--print-template prints the template file, with no AWS call and no AWS configuration', async () => {
    const before = w.cfn.counts.total;
    const withEnv = await runCli(['setup', '--print-template'], { env: w.env });
    const bare = await runCli(['setup', '--print-template']);
    const file = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cloudformation', 'ecs-secrets.json'), 'utf8'));
    expect(ok(withEnv)).toEqual(file);
    expect(ok(bare)).toEqual(file);
    expect(bare.stderr).toBe('');
    expect(w.cfn.counts.total).toBe(before);
  });

  test('creates the stack, shows its events on stderr and prints the contract JSON', async () => {
    const r = await setup('cryptex');
    const out = ok<SetupResult>(r);
    const table = 'ECS-Secrets-cryptex-Secrets';
    expect(out).toMatchObject({
      application: 'cryptex',
      region: REGION,
      stack: 'ECS-Secrets-cryptex',
      stackStatus: 'CREATE_COMPLETE',
      created: true,
      template: 'ecs-secrets',
      tableName: table,
      tableArn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${table}`,
      alias: 'alias/ECSSecretsMaskerKey-cryptex',
      createPrincipal: {
        arn: CREATE_ARN,
        managedPolicyArn: `arn:aws:iam::${ACCOUNT}:policy/ECS-Secrets-cryptex-create`,
      },
      fetchRole: { arn: FETCH_ARN, managedPolicyArn: `arn:aws:iam::${ACCOUNT}:policy/ECS-Secrets-cryptex-fetch` },
    });
    expect(out.stackId).toMatch(/^arn:aws:cloudformation:us-east-1:123456789012:stack\/ECS-Secrets-cryptex\//);

    // Materialised: the table in dynalite, the key and alias in KMS.
    expect(await tableExists(w.ddb, table)).toBe(true);
    const key = w.s.kms.resolveKey(out.alias);
    expect(key?.keyId).toBe(out.keyId);
    expect(key?.arn).toBe(out.keyArn);

    // The policies printed are the ones the stack created.
    expect(out.fetchRole.policy).toEqual(w.cfn.managedPolicies.get(out.fetchRole.managedPolicyArn as string)?.document);
    expect(out.createPrincipal.policy).toEqual(
      w.cfn.managedPolicies.get(out.createPrincipal.managedPolicyArn as string)?.document,
    );
    const actions = (p: SetupResult['fetchRole']) => p.policy.Statement.flatMap((st) => [st.Action].flat() as string[]);
    expect(actions(out.fetchRole)).not.toEqual(expect.arrayContaining(['dynamodb:PutItem']));
    expect(actions(out.fetchRole).filter((a) => /PutItem|UpdateItem|GenerateDataKey|Encrypt/.test(a))).toEqual([]);
    expect(actions(out.createPrincipal)).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'kms:GenerateDataKey']),
    );
    for (const p of [out.fetchRole, out.createPrincipal])
      for (const st of p.policy.Statement) expect([out.tableArn, out.keyArn]).toContain(st.Resource);
    // Configuration documents: example statements for "reads team-a's configuration" and "also reads its secrets".
    expect(out.configAccess.prefix).toBe('team-a/');
    expect(out.configAccess.readsConfiguration.Statement).toEqual([
      expect.objectContaining({
        Resource: out.tableArn,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['config/team-a/*'] } },
      }),
    ]);
    expect(out.configAccess.readsConfigurationSecrets).toEqual(
      expect.objectContaining({
        Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/TeamA` },
        Action: 'kms:Decrypt',
        Condition: {
          StringEquals: { 'kms:EncryptionContext:ecs-secrets:application': 'cryptex' },
          StringLike: { 'kms:EncryptionContext:ecs-secrets:config': 'team-a/*' },
        },
      }),
    );

    // Progress: each resource's events, in creation order, then what to do next. JSON only on stdout.
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`creating stack ECS-Secrets-cryptex in ${REGION}`);
    const completed = lines.filter((l) => /CREATE_COMPLETE/.test(l)).map((l) => /CREATE_COMPLETE\s+(\S+)/.exec(l)?.[1]);
    expect(completed).toEqual([
      'ECSSecretsTable',
      'ECSSecretsMasterKey',
      'ECSSecretsKeyAlias',
      'ECSSecretsFetchPolicy',
      'ECSSecretsCreatePolicy',
      'ECS-Secrets-cryptex',
    ]);
    expect(lines).toContain('stack ECS-Secrets-cryptex: CREATE_COMPLETE');
    expect(r.stderr).toContain(
      `aws iam attach-role-policy --role-name MyApplicationRole --policy-arn ${out.fetchRole.managedPolicyArn}`,
    );
    expect(r.stderr).toContain(
      `aws iam attach-role-policy --role-name SecretsAdmin --policy-arn ${out.createPrincipal.managedPolicyArn}`,
    );

    // The stack asks CloudFormation to clean up after a failed create, Retain policies included.
    const { Stacks } = await w.cf.send(new DescribeStacksCommand({ StackName: 'ECS-Secrets-cryptex' }));
    expect(Stacks?.[0]).toMatchObject({ RetainExceptOnCreate: true, Capabilities: ['CAPABILITY_NAMED_IAM'] });
    expect(Stacks?.[0].Tags).toEqual(expect.arrayContaining([{ Key: 'ecs-secrets:application', Value: 'cryptex' }]));
  });

  test('setup twice: the second reports the existing stack and changes nothing', async () => {
    const first = ok<SetupResult>(await setup('twice'));
    const creates = w.cfn.actions.CreateStack;
    const keys = w.s.kms.keys.size;
    const events = w.cfn.stack('ECS-Secrets-twice')?.events.length;

    const again = await setup('twice');
    const second = ok<SetupResult>(again);
    expect(second).toEqual({ ...first, created: false });
    expect(again.stderr).toMatch(
      /^stack ECS-Secrets-twice already exists in us-east-1 \(CREATE_COMPLETE\): reporting it, changing nothing$/m,
    );
    expect(again.stderr).not.toMatch(/CREATE_IN_PROGRESS/); // no replay of old events
    expect(w.cfn.actions.CreateStack).toBe(creates);
    expect(w.s.kms.keys.size).toBe(keys);
    expect(w.cfn.stack('ECS-Secrets-twice')?.events.length).toBe(events);

    // Other principals on the command line do not change the stack either: it says so.
    const other = `arn:aws:iam::${ACCOUNT}:role/SomeoneElse`;
    const r3 = await runCli(
      ['setup', '--application-name', 'twice', '--create-principal', CREATE_ARN, '--fetch-role', other],
      { env: w.env },
    );
    expect(ok<SetupResult>(r3).fetchRole.arn).toBe(FETCH_ARN);
    expect(r3.stderr).toContain(`names fetch role ${FETCH_ARN}, not ${other}; setup changed nothing`);
    expect(w.cfn.actions.CreateStack).toBe(creates);
  });

  test('a resource that fails: exit 1 with the resource and its reason; rolled back; setup works again after delete-stack', async () => {
    w.cfn.failResource('ECSSecretsKeyAlias', 'Simulated: alias limit exceeded for this account');
    const r = await setup('broken');
    const line = expectOneLineError(
      r,
      1,
      /^ecs-secrets: stack ECS-Secrets-broken failed \(ROLLBACK_COMPLETE\): resource ECSSecretsKeyAlias \(AWS::KMS::Alias\) CREATE_FAILED: Simulated: alias limit exceeded for this account; fix the cause, delete the stack \(aws cloudformation delete-stack --stack-name ECS-Secrets-broken --region us-east-1\) and run setup again$/,
    );
    expect(line).toBeDefined();
    expect(r.stderr).toMatch(/CREATE_FAILED\s+ECSSecretsKeyAlias \(AWS::KMS::Alias\)\s+Simulated: alias limit/);
    expect(r.stderr).toMatch(/ROLLBACK_COMPLETE\s+ECS-Secrets-broken/);

    // RetainExceptOnCreate: the rollback removed the table and key made by this failed create.
    const stack = w.cfn.stack('ECS-Secrets-broken');
    expect(stack?.status).toBe('ROLLBACK_COMPLETE');
    expect(await tableExists(w.ddb, 'ECS-Secrets-broken-Secrets')).toBe(false);
    expect(w.cfn.deletedKeys).toContain(stack?.resources.get('ECSSecretsMasterKey')?.physicalId);

    // Run again as is: the rolled-back stack is reported (with the same cause), not touched.
    const creates = w.cfn.actions.CreateStack;
    const again = await setup('broken');
    expectOneLineError(
      again,
      1,
      /stack ECS-Secrets-broken failed \(ROLLBACK_COMPLETE\): resource ECSSecretsKeyAlias .* delete-stack --stack-name ECS-Secrets-broken/,
    );
    expect(w.cfn.actions.CreateStack).toBe(creates);

    // As the message says: fix, delete, setup again.
    w.cfn.clearFailures();
    await w.cf.send(new DeleteStackCommand({ StackName: 'ECS-Secrets-broken' }));
    await w.cfn.idle();
    const fixed = ok<SetupResult>(await setup('broken'));
    expect(fixed).toMatchObject({ created: true, stackStatus: 'CREATE_COMPLETE' });
  });

  test('a real conflict: after delete-stack the retained table blocks a new stack, and setup says why', async () => {
    const first = ok<SetupResult>(await setup('leftover'));
    await w.cf.send(new DeleteStackCommand({ StackName: 'ECS-Secrets-leftover' }));
    await w.cfn.idle();
    // Deleting the stack kept the data: table and key (DeletionPolicy Retain).
    expect(await tableExists(w.ddb, 'ECS-Secrets-leftover-Secrets')).toBe(true);
    expect(w.s.kms.resolveKey(first.keyId)).toBeDefined();
    expect(w.s.kms.resolveKey(first.alias)).toBeUndefined(); // the alias went with the stack

    const r = await setup('leftover');
    expectOneLineError(
      r,
      1,
      /resource ECSSecretsTable \(AWS::DynamoDB::Table\) CREATE_FAILED: .*ECS-Secrets-leftover-Secrets' already exists/,
    );
    expect(await tableExists(w.ddb, 'ECS-Secrets-leftover-Secrets')).toBe(true); // a failed create never deletes what it did not make
  });

  test('events stream while the stack is being created, and a second setup follows the same stack', async () => {
    const hold = w.cfn.holdBefore('ECSSecretsKeyAlias');
    const a = spawnSetup(setupArgs('streamed'), w.env);
    await hold.reached;
    // The key's CREATE_COMPLETE shows up while the stack is still being created.
    await a.until(/CREATE_COMPLETE\s+ECSSecretsMasterKey/);
    expect(a.exited).toBe(false);
    expect(a.stderr()).not.toMatch(/ECSSecretsKeyAlias/);

    const b = spawnSetup(setupArgs('streamed'), w.env);
    await b.until(/already exists in us-east-1 \(CREATE_IN_PROGRESS\)/);
    await b.until(/CREATE_COMPLETE\s+ECSSecretsMasterKey/); // the events so far, once
    hold.release();
    const [ra, rb] = await Promise.all([a.done, b.done]);
    const outA = ok<SetupResult>(ra);
    const outB = ok<SetupResult>(rb);
    expect(outA.created).toBe(true);
    expect(outB).toEqual({ ...outA, created: false });
    for (const err of [ra.stderr, rb.stderr]) {
      expect(err.match(/CREATE_COMPLETE\s+ECSSecretsMasterKey/g)).toHaveLength(1); // each event once
      expect(err).toMatch(/CREATE_COMPLETE\s+ECS-Secrets-streamed \(AWS::CloudFormation::Stack\)/);
    }
    expect(w.cfn.stacks.filter((st) => st.name === 'ECS-Secrets-streamed')).toHaveLength(1);
  });

  test('a stack made by the original ecs-secrets is reported as it is (migration)', async () => {
    // What the original's setup left: its own parameter names, provisioned throughput, no alias in
    // the stack (it created the alias with a separate KMS call), no managed policies.
    const original = {
      AWSTemplateFormatVersion: '2010-09-09',
      Parameters: {
        ECSSecretsTableName: { Type: 'String' },
        ECSSecretsIAMPrincipalForCreatingSecrets: { Type: 'String' },
        ECSSecretsIAMRoleArn: { Type: 'String' },
      },
      Resources: {
        ECSSecretsTable: {
          Type: 'AWS::DynamoDB::Table',
          Properties: {
            TableName: { Ref: 'ECSSecretsTableName' },
            AttributeDefinitions: [
              { AttributeName: 'Name', AttributeType: 'S' },
              { AttributeName: 'Serial', AttributeType: 'N' },
            ],
            KeySchema: [
              { AttributeName: 'Name', KeyType: 'HASH' },
              { AttributeName: 'Serial', KeyType: 'RANGE' },
            ],
            ProvisionedThroughput: { ReadCapacityUnits: '5', WriteCapacityUnits: '5' },
          },
        },
        ECSSecretsMasterKey: {
          Type: 'AWS::KMS::Key',
          Properties: {
            KeyPolicy: {
              Version: '2012-10-17',
              Statement: [
                {
                  Effect: 'Allow',
                  Principal: { AWS: { 'Fn::Join': [':', ['arn:aws:iam:', { Ref: 'AWS::AccountId' }, 'root']] } },
                  Action: ['kms:Put*', 'kms:Describe*'],
                  Resource: '*',
                },
                {
                  Effect: 'Allow',
                  Principal: { AWS: { Ref: 'ECSSecretsIAMPrincipalForCreatingSecrets' } },
                  Action: ['kms:GenerateDataKey*', 'kms:Decrypt', 'kms:DescribeKey'],
                  Resource: '*',
                },
                {
                  Effect: 'Allow',
                  Principal: { AWS: { Ref: 'ECSSecretsIAMRoleArn' } },
                  Action: ['kms:Decrypt', 'kms:DescribeKey'],
                  Resource: '*',
                },
              ],
            },
          },
        },
      },
      Outputs: {
        secretsDynamoTable: {
          Value: { 'Fn::Sub': 'arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${ECSSecretsTable}' },
        },
        kmsKey: { Value: { Ref: 'ECSSecretsMasterKey' } },
      },
    };
    await w.cf.send(
      new CreateStackCommand({
        StackName: 'ECS-Secrets-legacy',
        TemplateBody: JSON.stringify(original),
        Parameters: [
          { ParameterKey: 'ECSSecretsTableName', ParameterValue: 'ECS-Secrets-legacy-Secrets' },
          { ParameterKey: 'ECSSecretsIAMPrincipalForCreatingSecrets', ParameterValue: CREATE_ARN },
          { ParameterKey: 'ECSSecretsIAMRoleArn', ParameterValue: FETCH_ARN },
        ],
      }),
    );
    await w.cfn.idle();
    const keyId = w.cfn.stack('ECS-Secrets-legacy')?.outputs.find((o) => o.OutputKey === 'kmsKey')
      ?.OutputValue as string;
    w.s.kms.createAlias('alias/ECSSecretsMaskerKey-legacy', keyId);

    const r = await setup('legacy');
    const out = ok<SetupResult>(r);
    expect(out).toMatchObject({
      created: false,
      template: 'original',
      tableArn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/ECS-Secrets-legacy-Secrets`,
      keyId,
      keyArn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`,
      alias: 'alias/ECSSecretsMaskerKey-legacy',
      createPrincipal: { arn: CREATE_ARN, managedPolicyArn: null },
      fetchRole: { arn: FETCH_ARN, managedPolicyArn: null },
    });
    expect(out.fetchRole.policy.Statement.length).toBeGreaterThan(0);
    expect(r.stderr).toContain(
      'aws iam put-role-policy --role-name MyApplicationRole --policy-name ECS-Secrets-legacy-fetch',
    );

    // And the existing table and key keep working with this implementation.
    const admin = { env: { ...w.env, ...credentialsEnv(CREATE_AKID) } };
    expect(
      ok(await runCli(['create', '--application-name', 'legacy', '--name', 'db', '--payload', 'pw'], admin)),
    ).toEqual({ name: 'db', serial: 1 });
    const reader = { env: { ...w.env, ...credentialsEnv(FETCH_AKID) } };
    expect(ok(await runCli(['fetch', '--application-name', 'legacy', '--name', 'db'], reader))).toEqual({
      name: 'db',
      serial: 1,
      payload: 'pw',
      active: true,
    });
  });

  test('CloudFormation refusing the call is a runtime error carrying its message', async () => {
    w.cfn.failNext(
      'CreateStack',
      'InsufficientCapabilitiesException',
      'Requires capabilities : [CAPABILITY_AUTO_EXPAND]',
    );
    const r = await setup('refused');
    expectOneLineError(
      r,
      1,
      /^ecs-secrets: CloudFormation refused creating stack ECS-Secrets-refused: InsufficientCapabilitiesException: Requires capabilities : \[CAPABILITY_AUTO_EXPAND\]$/,
    );
    expect(w.cfn.stack('ECS-Secrets-refused')).toBeUndefined();
  });

  test('access denied by CloudFormation: exit 1 naming the operation', async () => {
    w.cfn.failNext(
      'DescribeStacks',
      'AccessDenied',
      'User: arn:aws:iam::123456789012:user/x is not authorized to perform: cloudformation:DescribeStacks',
    );
    const r = await setup('denied');
    expectOneLineError(
      r,
      1,
      /^ecs-secrets: access denied describing stack ECS-Secrets-denied: User: .* cloudformation:DescribeStacks$/,
    );
  });

  test('CloudFormation unreachable: exit 1 with one line', async () => {
    const r = await setup('down', [], { AWS_ENDPOINT_URL_CLOUDFORMATION: 'http://127.0.0.1:9' });
    expectOneLineError(r, 1, /backend unavailable describing stack ECS-Secrets-down/);
  });

  test('gives up following after the wait limit, leaving CloudFormation at work; the next setup reports the stack', async () => {
    const hold = w.cfn.holdBefore('ECSSecretsMasterKey');
    const lines: string[] = [];
    const input = { app: 'slow', createPrincipal: CREATE_ARN, fetchRole: FETCH_ARN };
    await expect(
      setupStack(input, { cfn: w.cf, progress: (l) => lines.push(l), sleep: async () => undefined, maxWaitMs: 0 }),
    ).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(
        /^stack ECS-Secrets-slow is still CREATE_IN_PROGRESS after 0 minutes; CloudFormation goes on with it: run setup again to follow it$/,
      ),
    });
    await hold.reached;
    hold.release();
    await w.cfn.idle();
    const again = await setupStack(input, { cfn: w.cf, progress: (l) => lines.push(l) });
    expect(again).toMatchObject({ created: false, stackStatus: 'CREATE_COMPLETE' });
    expect(lines[0]).toBe('creating stack ECS-Secrets-slow in us-east-1');
  });

  test('setup --local prepares the embedded backend (idempotent) with no AWS call', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-setup-local-'));
    try {
      const before = w.cfn.counts.total;
      const r1 = await runCli(['setup', '--local', '--application-name', 'demo', '--data-dir', dir], { env: w.env });
      const out = ok<Record<string, unknown>>(r1);
      expect(out).toEqual({
        application: 'demo',
        local: true,
        created: true,
        dataDir: dir,
        tableName: 'ECS-Secrets-demo-Secrets',
        keyFile: path.join(dir, 'master.key'),
      });
      expect(fs.statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
      expect(
        ok<Record<string, unknown>>(
          await runCli(['setup', '--local', '--application-name', 'demo', '--data-dir', dir]),
        ),
      ).toEqual({ ...out, created: false });
      const created = await runCli([
        'create',
        '--local',
        '--application-name',
        'demo',
        '--data-dir',
        dir,
        '--name',
        'x',
        '--payload',
        'y',
      ]);
      expect(ok(created)).toEqual({ name: 'x', serial: 1 });
      expect(w.cfn.counts.total).toBe(before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('end to end: setup, create as the create principal, read through the daemon as the fetch role, revoke', () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld();
  });
  afterAll(async () => {
    await w.close();
  });

  test('privilege separation holds through the key policy', async () => {
    const out = ok<SetupResult>(await runCli(setupArgs('cryptex'), { env: w.env }));
    expect(out.created).toBe(true);
    const as = (akid: string) => ({ env: { ...w.env, ...credentialsEnv(akid) } });
    const app = ['--application-name', 'cryptex'];

    // The create principal stores a secret.
    expect(ok(await runCli(['create', ...app, '--name', 'x', '--payload', 'v1'], as(CREATE_AKID)))).toEqual({
      name: 'x',
      serial: 1,
    });

    // The fetch role may not: the key policy gives it no GenerateDataKey.
    const denied = await runCli(['create', ...app, '--name', 'x', '--payload', 'evil'], as(FETCH_AKID));
    expectOneLineError(denied, 1, /access denied .*kms:GenerateDataKey/);
    expect(ok(await runCli(['history', ...app, '--name', 'x'], as(CREATE_AKID)))).toHaveLength(1);

    // The fetch role's daemon serves it.
    const daemon = await spawnDaemon([...app, '--read-only'], { env: as(FETCH_AKID).env, waitHealthy: true });
    try {
      const got = await fetch(`${daemon.url}/latest/secrets/x`);
      expect(got.status).toBe(200);
      expect(await got.json()).toEqual({ name: 'x', serial: 1, payload: 'v1', active: true });

      // Revoked by the create principal: the fetch role's daemon no longer serves it.
      expect(ok(await runCli(['revoke', ...app, '--name', 'x', '--serial', '1'], as(CREATE_AKID)))).toEqual({
        name: 'x',
        serial: 1,
        active: false,
      });
      const gone = await fetch(`${daemon.url}/latest/secrets/x`, { headers: { 'Cache-Control': 'no-cache' } });
      expect(gone.status).toBe(404);
    } finally {
      await daemon.stop();
    }
  });
});
