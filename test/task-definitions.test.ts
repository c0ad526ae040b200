/**
 * task-definitions/*.json: each one is a valid RegisterTaskDefinition input (checked against the
 * ECS API's schema from @aws-sdk/client-ecs, and through the SDK's own serializer), follows the
 * ECS rules that matter for these tasks, documents its placeholders, and every ecs-secrets command
 * in it is accepted by the CLI's own argument parser. The health check and the admin task's script
 * are run against a real daemon.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ecs from '@aws-sdk/client-ecs';
import { NormalizedSchema } from '@smithy/core/schema';
import { buildParser } from '../src/cli/main';
import { parseSerial, validateAppName, validateSecretName } from '../src/core/names';
import { parseRenderTargets } from '../src/daemon/render-targets';
import { CLI } from './helpers/cli';
import { spawnDaemon } from './helpers/daemon';

const DIR = path.join(__dirname, '..', 'task-definitions');
const FILES = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();
const EXAMPLE: Record<string, string> = {
  AWS_ACCOUNT_ID: '123456789012',
  AWS_REGION: 'us-west-2',
  APPLICATION_NAME: 'cryptex',
  ECS_SECRETS_IMAGE: '123456789012.dkr.ecr.us-west-2.amazonaws.com/ecs-secrets:0.1.0',
  FETCH_ROLE_NAME: 'MyApplicationRole',
  CREATE_ROLE_NAME: 'SecretsAdmin',
  EXECUTION_ROLE_NAME: 'ecsTaskExecutionRole',
};

// biome-ignore lint/suspicious/noExplicitAny: parsed JSON documents are walked by key without a schema
type Obj = Record<string, any>;
const raw = (f: string) => fs.readFileSync(path.join(DIR, f), 'utf8');
const fill = (text: string) => text.replace(/\$\{([A-Z_]+)\}/g, (m, k: string) => EXAMPLE[k] ?? m);
const load = (f: string): Obj => JSON.parse(fill(raw(f)));
const containers = (td: Obj): Obj[] => td.containerDefinitions;

test('the four task definitions are there', () => {
  expect(FILES).toEqual([
    'admin-create-secret.json',
    'app-with-rendered-secrets.json',
    'app-with-sidecar.json',
    'bridge-app-with-links.json',
    'revoke-secret.json',
    'rotate-scheduled.json',
  ]);
});

describe.each(FILES)('%s', (file) => {
  const td = load(file);

  test('uses only the documented placeholders, and none is left once they are filled in', () => {
    const readme = fs.readFileSync(path.join(DIR, 'README.md'), 'utf8');
    const used = [...new Set([...raw(file).matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]))];
    expect(used.length).toBeGreaterThan(0);
    for (const name of used) {
      expect(Object.keys(EXAMPLE)).toContain(name);
      expect(readme).toContain(`\`\${${name}}\``);
    }
    expect(fill(raw(file))).not.toContain('${');
  });

  test('matches the ECS RegisterTaskDefinition schema (@aws-sdk/client-ecs)', () => {
    expect(schemaErrors(td)).toEqual([]);
  });

  test('survives the SDK serializer unchanged (nothing unknown dropped, nothing coerced)', async () => {
    expect(await serialized(td)).toEqual(td);
  });

  test('follows the ECS rules for its network mode and launch types', () => {
    expect(ecsRuleErrors(td)).toEqual([]);
  });

  test('every ecs-secrets command is accepted by the CLI parser, with valid names', async () => {
    const commands = containers(td).filter((c) => c.image === EXAMPLE.ECS_SECRETS_IMAGE && c.entryPoint === undefined);
    for (const c of containers(td).filter((c) => c.image === EXAMPLE.ECS_SECRETS_IMAGE && c.entryPoint !== undefined))
      expect(c.entryPoint[0]).toBe('node'); // a script run with the image's node, checked below
    expect(commands.length).toBeGreaterThan(0);
    for (const c of commands) {
      const argv = await parseWithoutRunning(c.command);
      validateAppName(argv['application-name']);
      if (argv.name !== undefined) validateSecretName(argv.name);
      if (argv.serial !== undefined) parseSerial(argv.serial);
      if (argv.render !== undefined) parseRenderTargets(argv.render);
    }
  });
});

describe('what each task is for', () => {
  const daemonOf = (td: Obj) => containers(td).find((c) => c.command?.[0] === 'daemon') as Obj;

  test('application tasks: the fetch role, a read-only sidecar with a health check, the app waiting for HEALTHY', () => {
    for (const file of ['app-with-sidecar.json', 'bridge-app-with-links.json']) {
      const td = load(file);
      expect(td.taskRoleArn).toBe('arn:aws:iam::123456789012:role/MyApplicationRole');
      const d = daemonOf(td);
      expect(d.command).toContain('--read-only');
      expect(d.healthCheck.command.join(' ')).toContain('/health');
      const app = containers(td).find((c) => c.name === 'app') as Obj;
      expect(app.dependsOn).toEqual([{ containerName: d.name, condition: 'HEALTHY' }]);
      const host = td.networkMode === 'awsvpc' ? 'localhost' : 'ecs-secrets';
      expect(app.command.join(' ')).toContain(`http://${host}:8080/latest/secrets/dbpassword`);
    }
  });

  test('the rendered-secrets task: Fargate, one bind-mount volume, the sidecar writes it, the app reads it read-only once the sidecar is HEALTHY', () => {
    const td = load('app-with-rendered-secrets.json');
    expect([td.requiresCompatibilities, td.networkMode, td.taskRoleArn]).toEqual([
      ['FARGATE'],
      'awsvpc',
      'arn:aws:iam::123456789012:role/MyApplicationRole',
    ]);
    expect(td.volumes).toEqual([{ name: 'secrets' }]); // a bind mount in the task's ephemeral storage: no host, no Docker volume
    const d = daemonOf(td);
    const app = containers(td).find((c) => c.name === 'app') as Obj;
    expect(d.command).toContain('--read-only');
    expect(d.mountPoints).toEqual([{ sourceVolume: 'secrets', containerPath: '/run/ecs-secrets', readOnly: false }]);
    expect(app.mountPoints).toEqual([{ sourceVolume: 'secrets', containerPath: '/run/ecs-secrets', readOnly: true }]);
    expect(app.dependsOn).toEqual([{ containerName: d.name, condition: 'HEALTHY' }]);
    // Every rendered file is on the shared volume, and the app reads them from there.
    const files = d.command.flatMap((a: string, i: number) =>
      d.command[i - 1] === '--render' ? [a.slice(0, a.indexOf('='))] : [],
    );
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(path.dirname(f)).toBe('/run/ecs-secrets');
      expect(app.command.join(' ')).toContain(f);
    }
    // The image prepares that path (VOLUME, owned by the sidecar's user) so the non-root sidecar can write it on Fargate;
    // the app reads the 0440 files through the node group (gid 1000), as any user.
    const dockerfile = fs.readFileSync(path.join(__dirname, '..', 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^VOLUME \/run\/ecs-secrets$/m);
    expect(dockerfile).toMatch(/chown node:node \/run\/ecs-secrets/);
    expect(app.user).toMatch(/^[0-9]+:1000$/);
  });

  test('awsvpc tasks keep the daemon on loopback; the bridge task links the app to it', () => {
    for (const file of FILES) {
      const td = load(file);
      const d = daemonOf(td);
      if (!d) continue;
      const host = d.command[d.command.indexOf('--host') + 1];
      expect(host).toBe(td.networkMode === 'awsvpc' ? '127.0.0.1' : '0.0.0.0');
      expect(d.portMappings ?? []).toEqual([]);
    }
    const bridge = load('bridge-app-with-links.json');
    expect(bridge.networkMode).toBe('bridge');
    expect(containers(bridge).find((c) => c.name === 'app')?.links).toEqual(['ecs-secrets-daemon:ecs-secrets']);
  });

  test('admin and revoke tasks run as the create principal; the admin daemon can write', () => {
    for (const file of ['admin-create-secret.json', 'revoke-secret.json'])
      expect(load(file).taskRoleArn).toBe('arn:aws:iam::123456789012:role/SecretsAdmin');
    expect(daemonOf(load('admin-create-secret.json')).command).not.toContain('--read-only');
    expect(containers(load('revoke-secret.json'))[0].command.slice(0, 1)).toEqual(['revoke']);
  });

  test('the scheduled rotation runs as the create principal: rotate with a generated value, the hook after --', () => {
    const td = load('rotate-scheduled.json');
    expect(td.taskRoleArn).toBe('arn:aws:iam::123456789012:role/SecretsAdmin');
    const [c] = containers(td);
    expect(c.command.slice(0, 1)).toEqual(['rotate']);
    expect(c.command).toContain('--generate');
    expect(c.command.slice(c.command.indexOf('--') + 1)).toEqual(['/hooks/set-db-password']);
  });
});

describe('the scripts in the task definitions, run against a real daemon', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-taskdefs-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const local = ['--local', '--application-name', 'cryptex', '--data-dir', dataDir];
  const healthCheck = (): string[] => containers(load('app-with-sidecar.json'))[0].healthCheck.command;
  const writer = (): Obj => containers(load('admin-create-secret.json')).find((c) => c.name === 'create-secret') as Obj;
  const onPort = (script: string, port: number) => script.replace(/127\.0\.0\.1:8080/g, `127.0.0.1:${port}`);
  const node = (script: string, env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });

  test('the health check passes on a healthy daemon and fails when nothing listens', async () => {
    const check = healthCheck();
    expect(check.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    const d = await spawnDaemon([...local, '--read-only'], { waitHealthy: true });
    let port: number;
    try {
      port = d.port;
      expect(node(onPort(check[3], port)).status).toBe(0);
    } finally {
      await d.stop();
    }
    expect(node(onPort(check[3], port)).status).toBe(1);
  });

  test("the rendered-secrets task's sidecar flags and app script work: the app loads the secret from the rendered file", async () => {
    const td = load('app-with-rendered-secrets.json');
    const d = containers(td).find((c) => c.name === 'ecs-secrets') as Obj;
    const app = containers(td).find((c) => c.name === 'app') as Obj;
    const volume = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-taskdefs-volume-'));
    const onVolume = (text: string) => text.split('/run/ecs-secrets').join(volume);
    const own = [
      '--local',
      '--application-name',
      'cryptex',
      '--data-dir',
      path.join(volume, '..', `${path.basename(volume)}-data`),
    ];
    try {
      const created = spawnSync(
        process.execPath,
        [CLI, 'create', ...own, '--name', 'dbpassword', '--payload-location', '-'],
        { input: "it's $ecret", encoding: 'utf8' },
      );
      expect(created.status).toBe(0);
      // The task's daemon flags, with the volume at a temporary path and the port left to spawnDaemon.
      const flags = (d.command as string[]).slice(1).map(onVolume);
      const drop = (name: string) => flags.splice(flags.indexOf(name), 2);
      drop('--host');
      drop('--port');
      drop('--application-name');
      const daemon = await spawnDaemon([...own, ...flags], { waitHealthy: true });
      try {
        // The app's loop, run once.
        const script = onVolume(app.command[0]).replace('sleep 300', 'exit 0');
        const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
        expect({ status: r.status, stdout: r.stdout.trim() }).toEqual({
          status: 0,
          stdout: 'dbpassword loaded (11 bytes)',
        });
        expect(fs.statSync(path.join(volume, 'app.env')).mode & 0o777).toBe(0o440);
      } finally {
        await daemon.stop();
      }
    } finally {
      fs.rmSync(volume, { recursive: true, force: true });
      fs.rmSync(own[own.length - 1], { recursive: true, force: true });
    }
  });

  test("the admin task's writer stores a new random version, prints no payload; a read-only daemon refuses it", async () => {
    const script = writer().command[0] as string;
    const env = Object.fromEntries((writer().environment as Obj[]).map((e) => [e.name, e.value]));
    const rw = await spawnDaemon(local, { waitHealthy: true });
    try {
      const first = node(onPort(script, rw.port), env);
      expect({ status: first.status, stdout: first.stdout.trim() }).toEqual({
        status: 0,
        stdout: '201 {"name":"dbpassword","serial":1}',
      });
      const second = node(onPort(script, rw.port), env);
      expect(second.stdout.trim()).toBe('201 {"name":"dbpassword","serial":2}');
      const got = (await (await fetch(`${rw.url}/latest/secrets/dbpassword`)).json()) as Obj;
      expect(got.payload).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(first.stdout + second.stdout).not.toContain(got.payload);
    } finally {
      await rw.stop();
    }
    const ro = await spawnDaemon([...local, '--read-only'], { waitHealthy: true });
    try {
      const refused = node(onPort(script, ro.port), env);
      expect(refused.status).toBe(1);
      expect(refused.stdout).toMatch(/^403 /);
    } finally {
      await ro.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------

class Parsed extends Error {
  constructor(readonly argv: Obj) {
    super('parsed');
  }
}

/** Parse with the CLI's own parser, stopping after validation and before any handler runs. */
async function parseWithoutRunning(args: string[]): Promise<Obj> {
  let ran = false;
  const parser = buildParser(args, { onResult: () => (ran = true), out: () => undefined });
  parser.middleware((argv) => {
    throw new Parsed(argv as Obj);
  }, false);
  try {
    await parser.parseAsync();
  } catch (err) {
    if (err instanceof Parsed) {
      expect(ran).toBe(false);
      return err.argv;
    }
    throw new Error(`the CLI refuses ${JSON.stringify(args)}: ${(err as Error).message}`);
  }
  throw new Error(`the CLI ran no command for ${JSON.stringify(args)}`);
}

/** Enumerations the ECS API defines for members of these names. */
const ENUMS: Record<string, Record<string, string>> = {
  networkMode: ecs.NetworkMode,
  requiresCompatibilities: ecs.Compatibility,
  condition: ecs.ContainerCondition,
  logDriver: ecs.LogDriver,
  protocol: ecs.TransportProtocol,
  operatingSystemFamily: ecs.OSFamily,
  cpuArchitecture: ecs.CPUArchitecture,
  pidMode: ecs.PidMode,
  ipcMode: ecs.IpcMode,
};

/** Walk a value against the SDK's schema of RegisterTaskDefinitionRequest: names, types, required members, enums. */
function schemaErrors(td: Obj): string[] {
  const errors: string[] = [];
  const walk = (ns: NormalizedSchema, v: unknown, at: string, member?: string): void => {
    if (ns.isStructSchema()) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return void errors.push(`${at}: expected an object`);
      const members = new Map(ns.structIterator());
      for (const k of Object.keys(v)) if (!members.has(k)) errors.push(`${at}.${k}: not a member of ${ns.getName()}`);
      const required = [...members.keys()].slice(0, Number((ns.getSchema() as unknown[])[6] ?? 0));
      for (const k of required) if ((v as Obj)[k] === undefined) errors.push(`${at}.${k}: required`);
      for (const [k, m] of members) if ((v as Obj)[k] !== undefined) walk(m, (v as Obj)[k], `${at}.${k}`, k);
    } else if (ns.isListSchema()) {
      if (!Array.isArray(v)) return void errors.push(`${at}: expected a list`);
      for (const [i, x] of v.entries()) walk(ns.getValueSchema(), x, `${at}[${i}]`, member);
    } else if (ns.isMapSchema()) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return void errors.push(`${at}: expected a map`);
      for (const [k, x] of Object.entries(v)) walk(ns.getValueSchema(), x, `${at}.${k}`);
    } else if (ns.isStringSchema()) {
      if (typeof v !== 'string') return void errors.push(`${at}: expected a string`);
      const allowed = member ? ENUMS[member] : undefined;
      if (allowed && !Object.values(allowed).includes(v))
        errors.push(`${at}: ${v} is not one of ${Object.values(allowed).join(', ')}`);
    } else if (ns.isNumericSchema()) {
      if (typeof v !== 'number' || !Number.isInteger(v)) errors.push(`${at}: expected an integer`);
    } else if (ns.isBooleanSchema()) {
      if (typeof v !== 'boolean') errors.push(`${at}: expected a boolean`);
    } else {
      errors.push(`${at}: the check does not know schema ${ns.getName()}`);
    }
  };
  walk(NormalizedSchema.of(ecs.RegisterTaskDefinitionRequest$), td, '$');
  return errors;
}

/** The JSON the SDK would send for this input. */
async function serialized(td: Obj): Promise<Obj> {
  const client = new ecs.ECSClient({ region: 'us-west-2', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  class Captured extends Error {
    constructor(readonly body: unknown) {
      super('captured');
    }
  }
  client.middlewareStack.add(
    () => async (args) => {
      throw new Captured((args.request as { body: unknown }).body);
    },
    { step: 'build', name: 'captureRequestBody' },
  );
  try {
    await client.send(new ecs.RegisterTaskDefinitionCommand(td as ecs.RegisterTaskDefinitionCommandInput));
  } catch (err) {
    if (err instanceof Captured) {
      const bytes = err.body as Uint8Array;
      return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    }
    throw err;
  } finally {
    client.destroy();
  }
  throw new Error('nothing sent');
}

/** Fargate task sizes (cpu units -> allowed memory MiB) for the sizes used here. */
const FARGATE_SIZES: Record<string, number[]> = {
  '256': [512, 1024, 2048],
  '512': [1024, 2048, 3072, 4096],
  '1024': [2048, 3072, 4096, 5120, 6144, 7168, 8192],
};

/** The ECS rules (service-side validation) these task definitions could break. */
function ecsRuleErrors(td: Obj): string[] {
  const errors: string[] = [];
  const cs = containers(td);
  const names = cs.map((c) => c.name as string);
  const fargate = (td.requiresCompatibilities ?? []).includes('FARGATE');
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(td.family)) errors.push(`family ${td.family}: letters, digits, - and _ only`);
  if (new Set(names).size !== names.length) errors.push('container names must be unique');
  if (!cs.some((c) => c.essential !== false)) errors.push('at least one container must be essential');
  if (!/^arn:aws:iam::[0-9]{12}:role\/.+$/.test(td.taskRoleArn ?? '')) errors.push('taskRoleArn: an IAM role ARN');
  if (fargate) {
    if (td.networkMode !== 'awsvpc') errors.push('Fargate requires networkMode awsvpc');
    if (!FARGATE_SIZES[td.cpu]?.includes(Number(td.memory)))
      errors.push(`Fargate: cpu ${td.cpu} with memory ${td.memory} is not a valid size`);
    if (!td.executionRoleArn) errors.push('Fargate with awslogs needs an executionRoleArn');
  }
  const volumes = (td.volumes ?? []).map((v: Obj) => v.name as string);
  if (new Set(volumes).size !== volumes.length) errors.push('volume names must be unique');
  if (fargate)
    for (const v of td.volumes ?? [])
      if (v.host?.sourcePath !== undefined) errors.push(`volume ${v.name}: Fargate has no host paths`);
  for (const c of cs) {
    const at = `container ${c.name}`;
    if (!/^[A-Za-z0-9_-]{1,255}$/.test(c.name)) errors.push(`${at}: bad name`);
    for (const m of c.mountPoints ?? []) {
      if (!volumes.includes(m.sourceVolume)) errors.push(`${at}: mounts unknown volume ${m.sourceVolume}`);
      if (!String(m.containerPath).startsWith('/')) errors.push(`${at}: containerPath must be absolute`);
    }
    if (!c.image) errors.push(`${at}: image required`);
    if (!fargate && td.memory === undefined && c.memory === undefined && c.memoryReservation === undefined)
      errors.push(`${at}: memory or memoryReservation required when the task has no memory`);
    if (c.links && td.networkMode !== 'bridge') errors.push(`${at}: links need networkMode bridge`);
    for (const l of c.links ?? [])
      if (!names.includes(String(l).split(':')[0])) errors.push(`${at}: links to unknown container ${l}`);
    for (const d of c.dependsOn ?? []) {
      const target = cs.find((x) => x.name === d.containerName);
      if (!target) errors.push(`${at}: depends on unknown container ${d.containerName}`);
      else if (d.condition === 'HEALTHY' && !target.healthCheck)
        errors.push(`${at}: HEALTHY needs a healthCheck on ${d.containerName}`);
    }
    if (c.healthCheck) {
      const h = c.healthCheck;
      if (!['CMD', 'CMD-SHELL'].includes(h.command[0]))
        errors.push(`${at}: healthCheck.command must start with CMD or CMD-SHELL`);
      const range = (k: string, lo: number, hi: number) =>
        h[k] !== undefined && (h[k] < lo || h[k] > hi) && errors.push(`${at}: healthCheck.${k} must be ${lo}..${hi}`);
      range('interval', 5, 300);
      range('timeout', 2, 120);
      range('retries', 1, 10);
      range('startPeriod', 0, 300);
    }
    for (const p of c.portMappings ?? [])
      if (td.networkMode === 'awsvpc' && p.hostPort !== undefined && p.hostPort !== p.containerPort)
        errors.push(`${at}: awsvpc needs hostPort = containerPort`);
    if (c.logConfiguration?.logDriver === 'awslogs') {
      const o = c.logConfiguration.options ?? {};
      for (const k of ['awslogs-group', 'awslogs-region']) if (!o[k]) errors.push(`${at}: awslogs needs ${k}`);
      if (fargate && !o['awslogs-stream-prefix']) errors.push(`${at}: awslogs on Fargate needs awslogs-stream-prefix`);
    }
  }
  return errors;
}
