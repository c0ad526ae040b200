/**
 * The permissions each role is granted match what its workflows call. Every workflow of a role runs
 * end to end (the built CLI and daemon, under that role's credentials) against the stand-ins, which
 * count requests per operation; the actions called must be ones the policy `setup` prints for that
 * role grants, and the KMS calls must meet its EncryptionContext conditions (the KMS stand-in
 * enforces them). No IAM simulator: comparing action lists is enough to catch a missing grant.
 *
 * A workflow is one line of WORKFLOWS: add new commands and routes there.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SetupResult } from '../src/setup/stack';
import { type CliResult, json, runCli } from './helpers/cli';
import { spawnDaemon } from './helpers/daemon';
import { type StandIns, credentialsEnv, startStandIns } from './standins';
import { type CloudFormationStandIn, keyPolicyPermissions, startCloudFormation } from './standins/cloudformation';

const ACCOUNT = '123456789012';
const CREATE_ARN = `arn:aws:iam::${ACCOUNT}:role/SecretsAdmin`;
const FETCH_ARN = `arn:aws:iam::${ACCOUNT}:role/MyApplicationRole`;
const CREATE_AKID = 'AKIDSECRETSADMIN';
const FETCH_AKID = 'AKIDMYAPPLICATION';
const APP = 'perms';
const app = ['--application-name', APP];

type Role = 'fetch' | 'create' | 'setup';
interface Ctx {
  env: Record<string, string>;
  dir: string;
}
interface Workflow {
  role: Role;
  name: string;
  run(c: Ctx): Promise<void>;
}

function ok(r: CliResult): string {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}
const cli = async (c: Ctx, args: string[], input?: string) => ok(await runCli([...args], { env: c.env, input }));

/** A read-only sidecar for the duration of `use`; everything it answers must be 200. */
async function withDaemon(c: Ctx, args: string[], use: (get: (p: string) => Promise<string>) => Promise<void>) {
  const d = await spawnDaemon([...app, '--read-only', ...args], { env: c.env, waitHealthy: true });
  try {
    await use(async (p) => {
      const r = await fetch(`${d.url}/v1${p}`);
      const body = await r.text();
      if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${body}\n${d.logs()}`);
      return body;
    });
  } finally {
    await d.stop();
  }
}

const WORKFLOWS: Workflow[] = [
  {
    role: 'setup',
    name: 'setup',
    run: (c) => cli(c, ['setup', '--application-name', 'perms-setup', ...principals()]).then(() => {}),
  },
  {
    role: 'create',
    name: 'create',
    run: (c) => cli(c, ['create', ...app, '--name', 'shop.new', '--payload', 'v']).then(() => {}),
  },
  {
    role: 'create',
    name: 'revoke',
    run: (c) => cli(c, ['revoke', ...app, '--name', 'shop.old', '--serial', '1']).then(() => {}),
  },
  {
    role: 'create',
    name: 'config push',
    run: (c) =>
      cli(c, ['config', 'push', ...app, '--path', 'team/new', '--file', '-'], 'a: 1\nb_ecs_secret: s\n').then(() => {}),
  },
  { role: 'fetch', name: 'fetch', run: (c) => cli(c, ['fetch', ...app, '--name', 'shop.db']).then(() => {}) },
  {
    role: 'fetch',
    name: 'export --prefix',
    run: (c) => cli(c, ['export', ...app, '--prefix', 'shop.']).then(() => {}),
  },
  {
    role: 'fetch',
    name: 'exec --prefix',
    run: (c) => cli(c, ['exec', ...app, '--prefix', 'shop.', '--', process.execPath, '-e', '']).then(() => {}),
  },
  {
    role: 'fetch',
    name: 'config build',
    run: (c) => cli(c, ['config', 'build', ...app, '--path', 'team/api']).then(() => {}),
  },
  {
    role: 'fetch',
    name: 'config build --show-secrets',
    run: (c) => cli(c, ['config', 'build', ...app, '--path', 'team/api', '--show-secrets']).then(() => {}),
  },
  {
    role: 'fetch',
    name: 'daemon: GET /secrets/:name and /:serial',
    run: (c) =>
      withDaemon(c, [], async (get) => {
        await get('/secrets/shop.db');
        await get('/secrets/shop.db/1');
      }),
  },
  {
    role: 'fetch',
    name: 'daemon: GET /secrets?prefix=',
    run: (c) =>
      withDaemon(c, [], async (get) => {
        await get('/secrets?prefix=shop.');
      }),
  },
  {
    role: 'fetch',
    name: 'daemon: GET /config/*path',
    run: (c) =>
      withDaemon(c, [], async (get) => {
        await get('/config/team/api');
      }),
  },
  { role: 'fetch', name: 'daemon: --prefetch', run: (c) => withDaemon(c, ['--prefetch', 'shop.db'], async () => {}) },
  {
    role: 'fetch',
    name: 'daemon: --prefetch-prefix',
    run: (c) => withDaemon(c, ['--prefetch-prefix', 'shop.'], async () => {}),
  },
  {
    role: 'fetch',
    name: 'daemon: --render of a prefix',
    run: (c) => withDaemon(c, ['--render', `${c.dir}/app.env=dotenv:shop.*`], async () => {}),
  },
  {
    role: 'fetch',
    name: 'daemon: --render of a config',
    run: (c) => withDaemon(c, ['--render', `${c.dir}/api.json=config:team/api`], async () => {}),
  },
];

function principals(): string[] {
  return ['--create-principal', CREATE_ARN, '--fetch-role', FETCH_ARN];
}

// biome-ignore lint/suspicious/noExplicitAny: policy statements are walked by key without a schema
type Statement = Record<string, any>;
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v as string]);
const glob = (pattern: string, s: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  ).test(s);
/** Does the policy allow `service:Op`? (Allow statements only; the template has no Deny.) */
function allows(statements: Statement[], action: string): boolean {
  for (const s of statements) if (s.Effect === 'Deny') throw new Error('this check does not evaluate Deny statements');
  return statements.some((s) => s.Effect === 'Allow' && list(s.Action).some((a) => glob(a, action)));
}

/** What the operator running `setup` needs: the CloudFormation calls setup makes, and the calls the
 * stack makes with the operator's rights to create its resources (the CloudFormation stand-in makes
 * the table's through DynamoDB, so they are counted; the key, alias and policies it makes in-process). */
const SETUP_ACTIONS = [
  'cloudformation:DescribeStacks',
  'cloudformation:CreateStack',
  'cloudformation:DescribeStackEvents',
  'dynamodb:CreateTable',
  'dynamodb:DescribeTable',
];

let s: StandIns;
let cfn: CloudFormationStandIn;
let env: Record<string, string>;
let out: SetupResult;
let dir: string;
const policies: Record<'fetch' | 'create', Statement[]> = { fetch: [], create: [] };

/** KMS checks each role's key-policy grants (set by the stack); its IAM policy must grant the same
 * KMS actions under the same EncryptionContext condition, so the stand-in enforces both at once.
 * Again before each workflow: a `setup` of another application applies that stack's key policy. */
function grantRoles(): void {
  const keyPolicy = JSON.parse(s.kms.resolveKey(out.keyId)?.policy as string);
  for (const [role, arn] of [
    ['fetch', FETCH_ARN],
    ['create', CREATE_ARN],
  ] as const) {
    const byKey = keyPolicyPermissions(keyPolicy, arn);
    const iam = keyPolicyPermissions(
      { Version: '2012-10-17', Statement: policies[role].map((st) => ({ ...st, Principal: { AWS: arn } })) },
      arn,
    );
    const { ops: _k, ...keyCondition } = byKey;
    const { ops, ...iamCondition } = iam;
    expect({ role, condition: iamCondition }).toEqual({ role, condition: keyCondition });
    s.kms.setPermissions(
      role === 'fetch' ? FETCH_AKID : CREATE_AKID,
      ops.filter((o) => byKey.ops.includes(o)),
      iamCondition,
    );
  }
}

beforeAll(async () => {
  s = await startStandIns();
  cfn = await startCloudFormation({
    kms: s.kms,
    dynamoEndpoint: s.dynamo.endpoint,
    principals: { [CREATE_ARN]: CREATE_AKID, [FETCH_ARN]: FETCH_AKID },
  });
  env = { ...s.env, AWS_ENDPOINT_URL_CLOUDFORMATION: cfn.endpoint };
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'perms-'));
  out = json<SetupResult>(await runCli(['setup', ...app, ...principals()], { env }));
  policies.fetch = out.fetchRole.policy.Statement;
  policies.create = out.createPrincipal.policy.Statement;
  grantRoles();
  const admin = { env: { ...env, ...credentialsEnv(CREATE_AKID) } };
  for (const [name, payload] of [
    ['shop.db', 'pw'],
    ['shop.api', 'k'],
    ['shop.old', 'o'],
  ])
    ok(await runCli(['create', ...app, '--name', name, '--payload', payload], admin));
  ok(
    await runCli(['config', 'push', ...app, '--path', 'team/api', '--file', '-'], {
      ...admin,
      input: 'url: x\npassword_ecs_secret: p\n',
    }),
  );
}, 120_000);

afterAll(async () => {
  await cfn?.close();
  await s?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Operations a stand-in answered (throttled and denied ones included), without the total. */
const called = (counts: Record<string, number>, service: string) =>
  Object.entries(counts)
    .filter(([op, n]) => op !== 'total' && n > 0)
    .map(([op]) => `${service}:${op}`);

describe.each(WORKFLOWS)('$role: $name', ({ role, run }) => {
  test('calls only actions its role is granted, under the granted conditions', async () => {
    grantRoles();
    s.dynamo.resetCounts();
    s.kms.resetCounts();
    cfn.resetCounts();
    for (const k of Object.keys(cfn.actions)) cfn.actions[k] = 0;
    const akid = role === 'fetch' ? FETCH_AKID : role === 'create' ? CREATE_AKID : 'AKIDADMIN';
    await run({ env: { ...env, ...credentialsEnv(akid) }, dir });
    const actions = [
      ...called(s.dynamo.counts, 'dynamodb'),
      ...called(s.kms.counts, 'kms'),
      ...called(cfn.actions, 'cloudformation'),
    ];
    expect(actions.length).toBeGreaterThan(0);
    const denied =
      role === 'setup'
        ? actions.filter((a) => !SETUP_ACTIONS.includes(a))
        : actions.filter((a) => !allows(policies[role], a));
    expect({ called: actions, notGranted: denied }).toEqual({ called: actions, notGranted: [] });
  });
});
