/**
 * The benchmark runs end to end in a very short mode and writes every figure. Its values are not
 * checked: speed and memory are measured by `npm run bench`, never asserted in tests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FIGURES, labelOf } from '../bench/figures';
import { runNode } from './helpers/cli';

const BENCH = path.join(__dirname, '..', 'dist', 'bench', 'bench.js');

test('npm run bench --cpu-quota 0.25, short mode: the result file has every figure, each a finite number', async () => {
  expect(fs.existsSync(BENCH)).toBe(true); // built by `npm test` (tsc) before jest runs
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bench-test-'));
  const out = path.join(dir, 'result.json');
  try {
    const r = await runNode(BENCH, [
      // Each load a quarter second, no warm-up: the figures are per request, finite for any load that served one.
      '--duration',
      '0.25',
      '--warmup',
      '0',
      '--reps',
      '1',
      '--secrets',
      '20',
      '--cold',
      '2',
      '--exec-runs',
      '1',
      '--cpu-quota',
      '0.25',
      // The soak's shortest useful run: both backends, a few samples (six, one every half second).
      '--soak-seconds',
      '3',
      '--soak-secrets',
      '40',
      '--import-parameters',
      '10',
      // Propagation: one rotation, and the idle windows at their shortest (the 30 s TTL's is one TTL).
      '--propagation-rotations',
      '1',
      '--idle-seconds',
      '6',
      '--out',
      out,
    ]);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });

    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    const keys = FIGURES.map((f) => f.key);
    expect(keys.length).toBeGreaterThan(20);
    // The quota rows need a writable cgroup CPU controller (root); without one the bench says why and skips them.
    const quotaKeys = FIGURES.filter((f) => f.quota).map((f) => f.key);
    expect(quotaKeys).toEqual(['quota.daemon.rps', 'quota.bare.rps', 'quota.ratio']);
    const quotaMeasured = typeof result.config.cpuQuota === 'object';
    if (!quotaMeasured) expect(result.config.cpuQuota).toMatch(/^skipped: no writable cgroup CPU controller \(.+\)$/);
    for (const figures of [result.figures, ...result.repetitions]) {
      for (const key of keys) {
        if (quotaKeys.includes(key) && !quotaMeasured)
          expect([key, figures[key]]).toEqual([key, null]); // NaN in JSON
        else expect([key, Number.isFinite(figures[key])]).toEqual([key, true]);
      }
    }
    // Every figure of the footprint table in bench/RESULTS.md, with its goal.
    const goalKeys = result.goals.map((g: { key: string }) => g.key);
    expect(goalKeys).toEqual(
      expect.arrayContaining([
        'cpu.ratio',
        'cpu1.ratio',
        'memory.rssIdleMiB',
        'memory.rssAfterLoadMiB',
        'startup.healthyMs',
        'fetch.wallMs',
        ...(quotaMeasured ? ['quota.ratio'] : []),
        'soak.local.plateau',
        'soak.aws.plateau',
      ]),
    );
    // The soak: both backends, each with its samples and its slope (values not checked).
    expect(result.soak.map((x: { backend: string }) => x.backend)).toEqual(['local', 'aws']);
    for (const x of result.soak) {
      expect(x.samples.length).toBeGreaterThanOrEqual(3);
      expect(Number.isFinite(x.slopeMiBPerMin)).toBe(true);
      // The other suites run beside this one: a daemon on a busy machine may miss its backend deadline
      // once (a 503). The soak's figures are about memory, so a rare error is allowed, a pattern is not.
      const total = Object.values(x.requests as Record<string, number>).reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThan(100);
      const allowed = Math.floor(total / 100);
      expect(x.errors <= allowed ? 'ok' : `${x.backend}: ${x.errors} of ${total} failed, first ${x.firstError}`).toBe(
        'ok',
      );
    }
    expect(r.stdout).toMatch(/^\| local +\|/m);
    expect(r.stdout).toMatch(/^\| aws +\|/m);
    expect(result.repetitions).toHaveLength(1);
    expect(Object.keys(result.units).sort()).toEqual([...keys].sort());
    for (const g of result.goals)
      expect(g).toEqual({
        key: expect.any(String),
        label: expect.any(String),
        goal: expect.any(String),
        value: expect.any(Number),
        met: expect.any(Boolean),
      });
    expect(result.goals.length).toBeGreaterThanOrEqual(9);
    expect(result).toMatchObject({
      date: expect.any(String),
      command: expect.stringContaining('--duration 0.25'),
      machine: { nproc: expect.any(Number), node: process.version, serverNode: process.version },
      config: {
        daemon: expect.stringContaining('daemon'),
        connections: 32,
        secrets: 20,
        reps: 1,
        node: process.version,
      },
    });

    // The same figures are printed as a table.
    const labels = { secrets: 20, connections: 32, quota: 0.25, quotaConnections: 8 };
    for (const f of FIGURES.filter((x) => x.goal)) expect(r.stdout).toContain(labelOf(f, labels));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 240_000);

test('npm run bench --import-only: only the import figure, once per repetition, with its median', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bench-import-'));
  const out = path.join(dir, 'result.json');
  try {
    const r = await runNode(BENCH, ['--import-only', '--reps', '2', '--import-parameters', '10', '--out', out]);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^import\.versionsPerSecond \(median of 2\): \d+\.\d$/m);
    const result = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(Object.keys(result.figures)).toEqual(['import.versionsPerSecond']);
    expect(result.runs).toHaveLength(2);
    for (const v of [result.figures['import.versionsPerSecond'], ...result.runs]) expect(v).toBeGreaterThan(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
