/**
 * Amazon DynamoDB Local (AWS's own engine, a Java program) as a second DynamoDB engine behind the
 * stand-in (issue 12, property 14): suites that use the stand-ins run on dynalite, and once more on
 * DynamoDB Local when its jar is available, so a difference between dynalite and AWS's behaviour
 * shows up as a failing test. The stand-in forwards to it, so request counting and fault injection
 * work the same on both engines.
 *
 * Which engine: ECS_SECRETS_TEST_DYNAMODB=dynalite (default) or dynamodb-local (jest.config.js sets
 * it for the second run). Where the jar is: DYNAMODB_LOCAL_JAR, else the npm package
 * amplify-dynamodb-simulator (emulator/DynamoDBLocal.jar) if it is installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type DynamoEngine = 'dynalite' | 'dynamodb-local';

export function dynamoEngine(): DynamoEngine {
  const v = process.env.ECS_SECRETS_TEST_DYNAMODB ?? 'dynalite';
  if (v !== 'dynalite' && v !== 'dynamodb-local')
    throw new Error(`ECS_SECRETS_TEST_DYNAMODB must be dynalite or dynamodb-local, not ${v}`);
  return v;
}

/** The DynamoDBLocal.jar to run, or undefined when there is none on this machine. */
export function findDynamoDbLocalJar(): string | undefined {
  const fromEnv = process.env.DYNAMODB_LOCAL_JAR;
  if (fromEnv) return fs.existsSync(fromEnv) ? fromEnv : undefined;
  try {
    const pkg = require.resolve('amplify-dynamodb-simulator/package.json');
    const jar = path.join(path.dirname(pkg), 'emulator', 'DynamoDBLocal.jar');
    return fs.existsSync(jar) ? jar : undefined;
  } catch {
    return undefined;
  }
}

export interface DynamoDbLocal {
  endpoint: string;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
// A worker that dies without closing its stand-ins must not leave a JVM behind.
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/**
 * Start DynamoDB Local in memory on a free 127.0.0.1 port and wait until it answers. -sharedDb:
 * without it DynamoDB Local keeps one database per access key and region, and the suites use
 * several access keys (for KMS permissions) on one table.
 */
export async function startDynamoDbLocal(opts: { startTimeoutMs?: number } = {}): Promise<DynamoDbLocal> {
  const jar = findDynamoDbLocalJar();
  if (!jar)
    throw new Error('DynamoDB Local is not installed: set DYNAMODB_LOCAL_JAR or install amplify-dynamodb-simulator');
  const port = await freePort();
  const dir = path.dirname(jar);
  const child = spawn(
    'java',
    [
      '-Xmx256m',
      `-Djava.library.path=${path.join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      jar,
      '-inMemory',
      '-sharedDb',
      '-port',
      String(port),
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (output += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  const endpoint = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  // A JVM on a loaded machine takes seconds to start: poll until it answers any request.
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with ${child.exitCode}: ${output}`);
    try {
      await fetch(endpoint, { method: 'POST' });
      return { endpoint, close };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`DynamoDB Local did not start within ${opts.startTimeoutMs ?? 60_000} ms: ${output}`);
    }
    await sleep(100);
  }
}
