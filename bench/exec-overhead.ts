/**
 * exec start-up overhead: from spawning `ecs-secrets exec --name SECRET -- node -e ...` to the
 * child's first output, against spawning the same child directly. The difference is what exec
 * adds to a task's start: its own start-up, opening the backend, and reading the secret (against
 * the bench's stand-ins, so network latency to AWS is not in it). Median of `runs` alternating
 * pairs, so both sides see the same machine load.
 */
import { spawn } from 'node:child_process';
import { CLI, childEnv } from './procs';

/** The child: prints one byte as soon as it runs, then exits. */
const CHILD = [process.execPath, '-e', "process.stdout.write('u')"];

function timeToFirstOutput(argv: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let at: number | undefined;
    let stderr = '';
    child.stdout!.once('data', () => (at = performance.now()));
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 && at !== undefined
        ? resolve(at - t0)
        : reject(new Error(`${argv.slice(0, 4).join(' ')} failed (${code}): ${stderr.slice(0, 300)}`)),
    );
  });
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];

export async function execOverhead(
  env: Record<string, string>,
  app: string,
  secret: string,
  runs = 5,
): Promise<Record<string, number>> {
  const viaExec: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < runs; i++) {
    viaExec.push(
      await timeToFirstOutput(
        [process.execPath, CLI, 'exec', '--application-name', app, '--name', `S=${secret}`, '--', ...CHILD],
        env,
      ),
    );
    direct.push(await timeToFirstOutput(CHILD, env));
  }
  return {
    'exec.childStartMs': median(viaExec),
    'exec.directStartMs': median(direct),
    'exec.overheadMs': median(viaExec.map((v, i) => v - direct[i])),
  };
}
