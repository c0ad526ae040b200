/**
 * The CloudFormation template (cloudformation/ecs-secrets.json): its structure, what the store and
 * the key policy need from it, and that the CloudFormation stand-in accepts and materialises it.
 * Also the stand-in's own checks, so that its acceptance means something.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  type CreateStackCommandInput,
  DeleteStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { openBackend } from '../src/backends/open-backend';
import { APP_NAME_RULE, keyAlias, stackName, tableName } from '../src/core/names';
import { policyDocuments } from '../src/setup/policies';
import { validatePrincipalArn } from '../src/setup/principals';
import { TEMPLATE } from '../src/setup/template';
import { runCli } from './helpers/cli';
import { REGION, type StandIns, credentialsEnv, startStandIns } from './standins';
import {
  type CloudFormationStandIn,
  keyPolicyPermissions,
  parseTemplate,
  startCloudFormation,
} from './standins/cloudformation';

const FILE = path.join(__dirname, '..', 'cloudformation', 'ecs-secrets.json');
const ACCOUNT = '123456789012';
const CREATE_ARN = `arn:aws:iam::${ACCOUNT}:role/SecretsAdmin`;
const FETCH_ARN = `arn:aws:iam::${ACCOUNT}:role/MyApplicationRole`;
const ROOT_ARN = `arn:aws:iam::${ACCOUNT}:root`;

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON documents are walked by key without a schema
type Obj = Record<string, any>;
const text = fs.readFileSync(FILE, 'utf8');
const template: Obj = JSON.parse(text);
const res = (id: string): Obj => template.Resources[id];

describe('the template file', () => {
  test('is the JSON setup sends, small enough for TemplateBody, and parses as a template', () => {
    expect(TEMPLATE).toEqual(template);
    expect(Buffer.byteLength(JSON.stringify(template))).toBeLessThan(51_200);
    expect(() => parseTemplate(text)).not.toThrow();
    expect(template.AWSTemplateFormatVersion).toBe('2010-09-09');
    expect(Object.keys(template.Parameters).sort()).toEqual(['ApplicationName', 'CreatePrincipalArn', 'FetchRoleArn']);
  });

  test('has the resources and the outputs the original had, and the managed policies', () => {
    expect(Object.fromEntries(Object.entries(template.Resources).map(([k, v]) => [k, (v as Obj).Type]))).toEqual({
      ECSSecretsTable: 'AWS::DynamoDB::Table',
      ECSSecretsMasterKey: 'AWS::KMS::Key',
      ECSSecretsKeyAlias: 'AWS::KMS::Alias',
      ECSSecretsFetchPolicy: 'AWS::IAM::ManagedPolicy',
      ECSSecretsCreatePolicy: 'AWS::IAM::ManagedPolicy',
    });
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining([
        'secretsDynamoTable',
        'kmsKey',
        'kmsKeyArn',
        'kmsKeyAlias',
        'fetchPolicyArn',
        'createPolicyArn',
      ]),
    );
    expect(template.Outputs.secretsDynamoTable.Value).toEqual({ 'Fn::GetAtt': ['ECSSecretsTable', 'Arn'] });
    expect(template.Outputs.kmsKey.Value).toEqual({ Ref: 'ECSSecretsMasterKey' });
  });

  test('the table and the key are retained on stack deletion and on replacement', () => {
    for (const id of ['ECSSecretsTable', 'ECSSecretsMasterKey']) {
      expect(res(id).DeletionPolicy).toBe('Retain');
      expect(res(id).UpdateReplacePolicy).toBe('Retain');
    }
  });

  test('the table: on-demand, point-in-time recovery, server-side encryption, the names of the original', () => {
    const p = res('ECSSecretsTable').Properties;
    expect(p.BillingMode).toBe('PAY_PER_REQUEST');
    expect(p.ProvisionedThroughput).toBeUndefined();
    expect(p.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(p.SSESpecification).toEqual({ SSEEnabled: true });
    expect(p.TableName).toEqual({ 'Fn::Sub': 'ECS-Secrets-${ApplicationName}-Secrets' });
    expect(tableName('X')).toBe('ECS-Secrets-X-Secrets');
  });

  test("the table's key schema is the one the store creates and queries", async () => {
    // What the store makes (the embedded backend creates its table with the store's own code).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-schema-'));
    const backend = await openBackend({ app: 'schema', local: true, dataDir: dir });
    try {
      const { Table } = await backend.service.store.doc.send(
        new DescribeTableCommand({ TableName: tableName('schema') }),
      );
      const sort = <T extends { AttributeName?: string }>(l: T[] = []) =>
        [...l].sort((a, b) => String(a.AttributeName).localeCompare(String(b.AttributeName)));
      const p = res('ECSSecretsTable').Properties;
      expect(sort(p.KeySchema)).toEqual(sort(Table?.KeySchema));
      expect(sort(p.AttributeDefinitions)).toEqual(sort(Table?.AttributeDefinitions));
    } finally {
      await backend.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the key: symmetric, rotated, aliased with the original spelling', () => {
    const p = res('ECSSecretsMasterKey').Properties;
    expect(p).toMatchObject({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', EnableKeyRotation: true });
    expect(res('ECSSecretsKeyAlias').Properties).toEqual({
      AliasName: { 'Fn::Sub': 'alias/ECSSecretsMaskerKey-${ApplicationName}' },
      TargetKeyId: { Ref: 'ECSSecretsMasterKey' },
    });
    expect(keyAlias('X')).toBe('alias/ECSSecretsMaskerKey-X');
    expect(stackName('X')).toBe('ECS-Secrets-X');
  });

  test("parameter patterns: the application name rule is the CLI's, and every ARN setup accepts passes the template's pattern", () => {
    const params = template.Parameters;
    expect(params.ApplicationName.AllowedPattern).toBe(APP_NAME_RULE.source);
    const matches = (param: string, v: string) => new RegExp(`^(?:${params[param].AllowedPattern})$`).test(v);
    const segment = fc.stringMatching(/^[\w+=,.@-]{1,20}$/);
    const arn = fc
      .record({
        partition: fc.constantFrom('aws', 'aws-cn', 'aws-us-gov', 'aws-iso-b'),
        account: fc.stringMatching(/^[0-9]{12}$/),
        kind: fc.constantFrom('role', 'user'),
        path: fc.array(segment, { maxLength: 3 }),
        name: fc.stringMatching(/^[\w+=,.@-]{1,64}$/),
      })
      .map(
        ({ partition, account, kind, path: p, name }) =>
          `arn:${partition}:iam::${account}:${kind}/${p.map((s) => `${s}/`).join('')}${name}`,
      );
    fc.assert(
      fc.property(arn, (a) => {
        for (const [flag, param] of [
          ['create-principal', 'CreatePrincipalArn'],
          ['fetch-role', 'FetchRoleArn'],
        ] as const) {
          let accepted = true;
          try {
            validatePrincipalArn(a, flag);
          } catch {
            accepted = false;
          }
          if (accepted && !matches(param, a)) return false;
        }
        return true;
      }),
    );
    expect(matches('FetchRoleArn', `arn:aws:iam::${ACCOUNT}:user/bob`)).toBe(false);
  });
});

describe('the template in the CloudFormation stand-in', () => {
  let s: StandIns;
  let cfn: CloudFormationStandIn;
  let cf: CloudFormationClient;
  let ddb: DynamoDBClient;

  beforeAll(async () => {
    s = await startStandIns();
    cfn = await startCloudFormation({ kms: s.kms, dynamoEndpoint: s.dynamo.endpoint });
    const credentials = { accessKeyId: 'AKIDADMIN', secretAccessKey: 'secret' };
    cf = new CloudFormationClient({ endpoint: cfn.endpoint, region: REGION, credentials, maxAttempts: 1 });
    ddb = new DynamoDBClient({ endpoint: s.dynamo.endpoint, region: REGION, credentials });
  });
  afterAll(async () => {
    cf.destroy();
    ddb.destroy();
    await cfn.close();
    await s.close();
  });
  afterEach(() => cfn.clearFailures());

  const params = (app: string) => [
    { ParameterKey: 'ApplicationName', ParameterValue: app },
    { ParameterKey: 'CreatePrincipalArn', ParameterValue: CREATE_ARN },
    { ParameterKey: 'FetchRoleArn', ParameterValue: FETCH_ARN },
  ];

  async function create(input: Partial<CreateStackCommandInput> & { StackName: string }) {
    await cf.send(new CreateStackCommand({ TemplateBody: text, Capabilities: ['CAPABILITY_NAMED_IAM'], ...input }));
    await cfn.idle();
    const { Stacks } = await cf.send(new DescribeStacksCommand({ StackName: input.StackName }));
    return Stacks?.[0];
  }

  async function tableExists(name: string): Promise<boolean> {
    return ddb.send(new DescribeTableCommand({ TableName: name })).then(
      () => true,
      (e: Error) => (e.name === 'ResourceNotFoundException' ? false : Promise.reject(e)),
    );
  }

  test('creates the table in dynalite and the key and alias in KMS, and reports the outputs', async () => {
    const stack = await create({ StackName: 'ECS-Secrets-shop', Parameters: params('shop') });
    expect(stack?.StackStatus).toBe('CREATE_COMPLETE');
    const out = Object.fromEntries((stack?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
    const key = s.kms.resolveKey('alias/ECSSecretsMaskerKey-shop');
    expect(out).toEqual({
      secretsDynamoTable: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/ECS-Secrets-shop-Secrets`,
      kmsKey: key?.keyId,
      kmsKeyArn: key?.arn,
      kmsKeyAlias: 'alias/ECSSecretsMaskerKey-shop',
      fetchPolicyArn: `arn:aws:iam::${ACCOUNT}:policy/ECS-Secrets-shop-fetch`,
      createPolicyArn: `arn:aws:iam::${ACCOUNT}:policy/ECS-Secrets-shop-create`,
    });
    expect(await tableExists('ECS-Secrets-shop-Secrets')).toBe(true);
    // setup prints the same policies the stack creates.
    const docs = policyDocuments('shop', out.secretsDynamoTable as string, out.kmsKeyArn as string);
    expect(cfn.managedPolicies.get(out.fetchPolicyArn as string)?.document).toEqual(docs.fetch);
    expect(cfn.managedPolicies.get(out.createPolicyArn as string)?.document).toEqual(docs.create);
  });

  test('the key policy: privilege separation, conditioned on the application, and the account can manage the key', async () => {
    await create({ StackName: 'ECS-Secrets-kp', Parameters: params('kp') });
    const policy = JSON.parse(s.kms.resolveKey('alias/ECSSecretsMaskerKey-kp')?.policy as string);
    const onlyThisApp = { contextEquals: { 'ecs-secrets:application': 'kp' } };

    const fetch = keyPolicyPermissions(policy, FETCH_ARN);
    expect(fetch).toEqual({ ops: ['Decrypt', 'DescribeKey'], ...onlyThisApp });
    expect(fetch.ops).not.toContain('GenerateDataKey');

    const writer = keyPolicyPermissions(policy, CREATE_ARN);
    expect(writer.ops).toEqual(expect.arrayContaining(['GenerateDataKey', 'Encrypt', 'Decrypt', 'DescribeKey']));
    expect(writer).toMatchObject(onlyThisApp);
    expect(writer.ops.filter((op) => /Key(Policy|Deletion)|Grant|Alias/.test(op))).toEqual([]); // no administration

    const root = keyPolicyPermissions(policy, ROOT_ARN);
    expect(root.ops).toEqual(
      expect.arrayContaining(['PutKeyPolicy', 'ScheduleKeyDeletion', 'EnableKeyRotation', 'DescribeKey']),
    );
    expect(root.ops.filter((op) => /^(Decrypt|Encrypt|GenerateDataKey.*|ReEncrypt.*)$/.test(op))).toEqual([]); // administers, never reads
  });

  test('the key policy lets the create principal encrypt and the fetch role decrypt configuration documents (context ecs-secrets:config)', async () => {
    await create({ StackName: 'ECS-Secrets-cfgkp', Parameters: params('cfgkp') });
    const policy = JSON.parse(s.kms.resolveKey('alias/ECSSecretsMaskerKey-cfgkp')?.policy as string);
    for (const [akid, arn] of [
      ['AKIDCFGCREATE', CREATE_ARN],
      ['AKIDCFGFETCH', FETCH_ARN],
    ]) {
      const p = keyPolicyPermissions(policy, arn);
      s.kms.setPermissions(akid, p.ops, {
        contextEquals: p.contextEquals,
        contextNameLike: p.contextNameLike,
        contextLike: p.contextLike,
      });
    }
    const cli = (akid: string, args: string[], input?: string) =>
      runCli(['--application-name', 'cfgkp', ...args], { env: { ...s.env, ...credentialsEnv(akid) }, input });
    try {
      const pushed = await cli(
        'AKIDCFGCREATE',
        ['config', 'push', '--path', 'team-a/api', '-'],
        'plain: p\nsecret_ecs_secret: my-secret\n',
      );
      expect([pushed.code, pushed.stderr]).toEqual([0, '']);
      const built = await cli('AKIDCFGFETCH', ['config', 'build', '--path', 'team-a/api', '--show-secrets']);
      expect([built.code, built.stdout]).toEqual([0, 'plain: p\nsecret_ecs_secret: my-secret\n']);
      // The fetch role reads but never writes: Encrypt is not in its key policy.
      const denied = await cli('AKIDCFGFETCH', ['config', 'push', '--path', 'team-a/api', '-'], 'k_ecs_secret: v\n');
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/access denied/);
    } finally {
      s.kms.resetPermissions();
    }
  });

  test('deleting the stack keeps the table (with its items) and the key; the alias and policies go', async () => {
    const stack = await create({ StackName: 'ECS-Secrets-keep', Parameters: params('keep') });
    const keyId = stack?.Outputs?.find((o) => o.OutputKey === 'kmsKey')?.OutputValue as string;
    await cf.send(new DeleteStackCommand({ StackName: 'ECS-Secrets-keep' }));
    await cfn.idle();
    const deleted = cfn.stack(stack?.StackId as string);
    expect(deleted?.status).toBe('DELETE_COMPLETE');
    const skipped = deleted?.events
      .filter((e) => e.ResourceStatus === 'DELETE_SKIPPED')
      .map((e) => e.LogicalResourceId);
    expect(skipped?.sort()).toEqual(['ECSSecretsMasterKey', 'ECSSecretsTable']);
    expect(await tableExists('ECS-Secrets-keep-Secrets')).toBe(true);
    expect(s.kms.resolveKey(keyId)).toBeDefined();
    expect(s.kms.resolveKey('alias/ECSSecretsMaskerKey-keep')).toBeUndefined();
    expect([...cfn.managedPolicies.keys()].filter((a) => a.includes('-keep-'))).toEqual([]);
    await expect(cf.send(new DescribeStacksCommand({ StackName: 'ECS-Secrets-keep' }))).rejects.toThrow(
      'Stack with id ECS-Secrets-keep does not exist',
    );
  });

  test('without RetainExceptOnCreate a failed create leaves the retained table and key behind (why setup asks for it)', async () => {
    cfn.failResource('ECSSecretsCreatePolicy', 'Simulated failure');
    const stack = await create({ StackName: 'ECS-Secrets-orphans', Parameters: params('orphans') });
    expect(stack?.StackStatus).toBe('ROLLBACK_COMPLETE');
    expect(await tableExists('ECS-Secrets-orphans-Secrets')).toBe(true);
  });

  test('without the account root statement KMS would refuse the key policy (the key must stay manageable)', async () => {
    const t = JSON.parse(text);
    t.Resources.ECSSecretsMasterKey.Properties.KeyPolicy.Statement.shift();
    await cf.send(
      new CreateStackCommand({
        StackName: 'ECS-Secrets-locked',
        TemplateBody: JSON.stringify(t),
        Capabilities: ['CAPABILITY_NAMED_IAM'],
        Parameters: params('locked'),
        RetainExceptOnCreate: true,
      }),
    );
    await cfn.idle();
    const events = cfn.stack('ECS-Secrets-locked')?.events ?? [];
    expect(events.find((e) => e.ResourceStatus === 'CREATE_FAILED')).toMatchObject({
      LogicalResourceId: 'ECSSecretsMasterKey',
      ResourceStatusReason: expect.stringContaining('will not allow you to update the key policy in the future'),
    });
  });

  test.each([
    [
      'no capabilities',
      { Capabilities: [] },
      /InsufficientCapabilitiesException|Requires capabilities : \[CAPABILITY_NAMED_IAM\]/,
    ],
    [
      'CAPABILITY_IAM only (the policies are named)',
      { Capabilities: ['CAPABILITY_IAM'] },
      /Requires capabilities : \[CAPABILITY_NAMED_IAM\]/,
    ],
    ['a parameter missing', { Parameters: params('p').slice(0, 2) }, /Parameters: \[FetchRoleArn\] must have values/],
    [
      'a bad application name',
      { Parameters: [{ ParameterKey: 'ApplicationName', ParameterValue: 'no_underscores' }, ...params('p').slice(1)] },
      /Parameter ApplicationName failed to satisfy constraint/,
    ],
    [
      'a user as fetch role',
      {
        Parameters: [
          ...params('p').slice(0, 2),
          { ParameterKey: 'FetchRoleArn', ParameterValue: `arn:aws:iam::${ACCOUNT}:user/bob` },
        ],
      },
      /Parameter FetchRoleArn failed to satisfy constraint: must be the ARN of an IAM role/,
    ],
    [
      'an unknown parameter',
      { Parameters: [...params('p'), { ParameterKey: 'Extra', ParameterValue: 'x' }] },
      /Parameters: \[Extra\] do not exist in the template/,
    ],
  ])('the stand-in refuses the template with %s, as CloudFormation does', async (_what, input, message) => {
    const request: CreateStackCommandInput = {
      StackName: 'ECS-Secrets-refused',
      TemplateBody: text,
      Capabilities: ['CAPABILITY_NAMED_IAM'],
      Parameters: params('p'),
      ...(input as Partial<CreateStackCommandInput>),
    };
    await expect(cf.send(new CreateStackCommand(request))).rejects.toThrow(message);
    expect(cfn.stack('ECS-Secrets-refused')).toBeUndefined();
  });
});

describe('the CloudFormation stand-in checks templates the way CloudFormation does', () => {
  const base = () => JSON.parse(text) as Obj;
  test.each([
    [
      'a function it cannot resolve',
      (t: Obj) => (t.Resources.ECSSecretsTable.Properties.TableName = { 'Fn::Select': [0, ['a']] }),
      /does not support Fn::Select/,
    ],
    [
      'an unknown resource type',
      (t: Obj) => (t.Resources.ECSSecretsKeyAlias.Type = 'AWS::KMS::Aliass'),
      /Unrecognized resource types: \[AWS::KMS::Aliass\]/,
    ],
    [
      'a reference to nothing',
      (t: Obj) => (t.Resources.ECSSecretsKeyAlias.Properties.TargetKeyId = { Ref: 'NoSuchKey' }),
      /Unresolved resource dependencies \[NoSuchKey\]/,
    ],
    [
      'a Fn::Sub of an unknown name',
      (t: Obj) => (t.Resources.ECSSecretsTable.Properties.TableName = { 'Fn::Sub': 'x-${AppName}' }),
      /Unresolved resource dependencies \[AppName\]/,
    ],
    [
      'an attribute the type lacks',
      (t: Obj) => (t.Outputs.kmsKey.Value = { 'Fn::GetAtt': ['ECSSecretsKeyAlias', 'Arn'] }),
      /does not support attribute type Arn/,
    ],
    [
      'a bad DeletionPolicy',
      (t: Obj) => (t.Resources.ECSSecretsTable.DeletionPolicy = 'Keep'),
      /Unrecognized DeletionPolicy Keep/,
    ],
    [
      'an unknown top-level section',
      (t: Obj) => (t.Resource = {}),
      /Invalid template property or properties \[Resource\]/,
    ],
    [
      'a dependency cycle',
      (t: Obj) => (t.Resources.ECSSecretsMasterKey.DependsOn = 'ECSSecretsKeyAlias'),
      /Circular dependency/,
    ],
  ])('refuses %s', (_what, mutate, message) => {
    const t = base();
    mutate(t);
    expect(() => parseTemplate(JSON.stringify(t))).toThrow(message);
  });

  test('refuses properties a resource type does not have (a typo in the template)', async () => {
    const s = await startStandIns();
    const cfn = await startCloudFormation({ kms: s.kms, dynamoEndpoint: s.dynamo.endpoint });
    const cf = new CloudFormationClient({
      endpoint: cfn.endpoint,
      region: REGION,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 1,
    });
    try {
      const t = base();
      t.Resources.ECSSecretsTable.Properties.PointInTimeRecoverySpecifications = { PointInTimeRecoveryEnabled: true };
      await expect(
        cf.send(
          new CreateStackCommand({
            StackName: 'typo',
            TemplateBody: JSON.stringify(t),
            Capabilities: ['CAPABILITY_NAMED_IAM'],
            Parameters: [
              { ParameterKey: 'ApplicationName', ParameterValue: 'typo' },
              { ParameterKey: 'CreatePrincipalArn', ParameterValue: CREATE_ARN },
              { ParameterKey: 'FetchRoleArn', ParameterValue: FETCH_ARN },
            ],
          }),
        ),
      ).rejects.toThrow(/Encountered unsupported property PointInTimeRecoverySpecifications/);
    } finally {
      cf.destroy();
      await cfn.close();
      await s.close();
    }
  });

  test('resolves Ref, Fn::GetAtt (both forms), Fn::Sub (with variables and ${!literal}), Fn::Join and pseudo parameters', async () => {
    const s = await startStandIns();
    const cfn = await startCloudFormation({ kms: s.kms, dynamoEndpoint: s.dynamo.endpoint });
    const cf = new CloudFormationClient({
      endpoint: cfn.endpoint,
      region: REGION,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 1,
    });
    try {
      const t = {
        Parameters: { Env: { Type: 'String', Default: 'dev' } },
        Resources: {
          T: {
            Type: 'AWS::DynamoDB::Table',
            Properties: {
              TableName: { 'Fn::Join': ['-', [{ Ref: 'AWS::StackName' }, { Ref: 'Env' }, 'tbl']] },
              KeySchema: [{ AttributeName: 'k', KeyType: 'HASH' }],
              AttributeDefinitions: [{ AttributeName: 'k', AttributeType: 'S' }],
              BillingMode: 'PAY_PER_REQUEST',
            },
          },
        },
        Outputs: {
          join: {
            Value: {
              'Fn::Join': [':', [{ Ref: 'AWS::Partition' }, { Ref: 'AWS::Region' }, { Ref: 'AWS::AccountId' }]],
            },
          },
          sub: { Value: { 'Fn::Sub': ['${X}/${T}/${T.Arn}/${!Literal}', { X: { Ref: 'Env' } }] } },
          getatt: { Value: { 'Fn::GetAtt': 'T.Arn' } },
          ref: { Value: { Ref: 'T' } },
        },
      };
      await cf.send(new CreateStackCommand({ StackName: 'intrinsics', TemplateBody: JSON.stringify(t) }));
      await cfn.idle();
      const { Stacks } = await cf.send(new DescribeStacksCommand({ StackName: 'intrinsics' }));
      const out = Object.fromEntries((Stacks?.[0].Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
      const arn = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/intrinsics-dev-tbl`;
      expect(out).toEqual({
        join: `aws:${REGION}:${ACCOUNT}`,
        sub: `dev/intrinsics-dev-tbl/${arn}/\${Literal}`,
        getatt: arn,
        ref: 'intrinsics-dev-tbl',
      });
    } finally {
      cf.destroy();
      await cfn.close();
      await s.close();
    }
  });
});
