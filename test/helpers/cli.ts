/** Spawn the built CLI as a user would (npm test builds dist/ first). */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

export const CLI = path.join(__dirname, '..', '..', 'dist', 'src', 'cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  cwd?: string;
}

/**
 * The parent's environment minus anything that could point the SDK at real AWS or hide our own
 * behaviour, and minus NODE_EXTRA_CA_CERTS: node parses every certificate in that file before it
 * runs any code (about 40 ms of CPU per process on a 2-core machine whose variable names the
 * system bundle), and the processes the tests start speak plain HTTP to 127.0.0.1 only.
 */
export function baseEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AWS_') || k.startsWith('ECS_SECRETS_')) delete env[k];
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runNode(CLI, args, opts);
}

/** Run a built script with node, in the cleaned environment, collecting its output. */
export function runNode(script: string, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...baseEnv(), ...opts.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [script, ...args], {
      env: env as NodeJS.ProcessEnv,
      cwd: opts.cwd,
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Parse stdout as one JSON document, with the whole result in the failure message. */
export function json<T = unknown>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON: ${JSON.stringify(r)}`);
  }
}
