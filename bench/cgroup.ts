/**
 * A CPU quota for one process at a time, through the kernel's cgroup CPU controller: what a Fargate
 * task's `cpu: 256` (a quarter of a vCPU) does to a sidecar. The bench creates one child group,
 * moves the daemon (then the bare server) into it for a load, moves it back, and removes the group
 * at the end. Needs root and a writable controller: cgroup v2 (`cpu.max`) or v1
 * (`cpu.cfs_quota_us`), whichever this machine has; otherwise `open()` says why and the bench skips
 * the quota rows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const PERIOD_US = 100_000; // the kernel's default period: the quota is a share of every 100 ms

export interface CpuQuota {
  /** e.g. "cgroup v1 cpu.cfs_quota_us=25000 per 100000 µs in /sys/fs/cgroup/cpu/ecs-secrets-bench-123" */
  description: string;
  /** Confine `pid` (all its threads) to the quota until `release`. */
  confine(pid: number): void;
  /** Move `pid` back to the group it came from. */
  release(pid: number): void;
  /** Remove the group (nothing may be left in it). */
  remove(): void;
}

/** Where a controller hierarchy is mounted: v1 `cpu` (possibly co-mounted as cpu,cpuacct), or the v2 unified tree. */
function mounts(): { v1?: string; v2?: string } {
  const out: { v1?: string; v2?: string } = {};
  for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, dir, type, opts] = line.split(' ');
    if (type === 'cgroup2') out.v2 ??= dir;
    else if (type === 'cgroup' && opts.split(',').includes('cpu')) out.v1 ??= dir;
  }
  return out;
}

/** The group `pid` is in, in the hierarchy of `v1` (its controller list names cpu) or v2 (`0::`). */
function groupOf(pid: number, v1: boolean): string {
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [id, controllers, p] = [
      line.slice(0, line.indexOf(':')),
      line.slice(line.indexOf(':') + 1, line.lastIndexOf(':')),
      line.slice(line.lastIndexOf(':') + 1),
    ];
    if (v1 ? controllers.split(',').includes('cpu') : id === '0' && controllers === '') return p || '/';
  }
  return '/';
}

function tryV1(root: string, quota: number): CpuQuota {
  const parent = path.join(root, groupOf(process.pid, true));
  const dir = path.join(parent, `ecs-secrets-bench-${process.pid}`);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
    fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), String(Math.round(quota * PERIOD_US)));
  } catch (err) {
    fs.rmdirSync(dir);
    throw err;
  }
  const homes = new Map<number, string>();
  return {
    description: `cgroup v1 cpu.cfs_quota_us=${Math.round(quota * PERIOD_US)} per ${PERIOD_US} µs in ${dir}`,
    confine(pid) {
      homes.set(pid, path.join(root, groupOf(pid, true)));
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid)); // cgroup.procs moves every thread of the process
    },
    release(pid) {
      try {
        fs.writeFileSync(path.join(homes.get(pid) ?? parent, 'cgroup.procs'), String(pid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // the process is gone already
      }
    },
    remove: () => fs.rmdirSync(dir),
  };
}

function tryV2(root: string, quota: number): CpuQuota {
  const parent = path.join(root, groupOf(process.pid, false));
  // v2: a group with processes of its own cannot hand controllers to children ("no internal
  // processes"), so the cpu controller must already be enabled for the parent's children.
  const enabled = fs.readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  if (!enabled.includes('cpu')) {
    try {
      fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+cpu');
    } catch (err) {
      throw new Error(
        `the cpu controller is not enabled in ${parent}/cgroup.subtree_control and cannot be (${(err as Error).message})`,
      );
    }
  }
  const dir = path.join(parent, `ecs-secrets-bench-${process.pid}`);
  fs.mkdirSync(dir);
  try {
    fs.writeFileSync(path.join(dir, 'cpu.max'), `${Math.round(quota * PERIOD_US)} ${PERIOD_US}`);
  } catch (err) {
    fs.rmdirSync(dir);
    throw err;
  }
  const homes = new Map<number, string>();
  return {
    description: `cgroup v2 cpu.max="${Math.round(quota * PERIOD_US)} ${PERIOD_US}" in ${dir}`,
    confine(pid) {
      homes.set(pid, path.join(root, groupOf(pid, false)));
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    },
    release(pid) {
      try {
        fs.writeFileSync(path.join(homes.get(pid) ?? parent, 'cgroup.procs'), String(pid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    },
    remove: () => fs.rmdirSync(dir),
  };
}

/** A quota of `quota` cores (0.25 = a quarter), or the reasons neither controller could be used. */
export function openCpuQuota(quota: number): CpuQuota | { unavailable: string } {
  const m = mounts();
  const why: string[] = [];
  // v2 first where its cpu controller is there: on a v2-only host it is the only choice, and on a
  // hybrid host (v1 cpu mounted, the v2 tree without controllers) the v1 attempt follows.
  for (const [name, root, open] of [
    ['v2', m.v2, tryV2],
    ['v1', m.v1, tryV1],
  ] as const) {
    if (!root) {
      why.push(`cgroup ${name}: not mounted`);
      continue;
    }
    if (name === 'v2' && !fs.readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('cpu')) {
      why.push(`cgroup v2 at ${root}: no cpu controller (it is held by v1)`);
      continue;
    }
    try {
      return open(root, quota);
    } catch (err) {
      why.push(`cgroup ${name} at ${root}: ${(err as Error).message}`);
    }
  }
  return { unavailable: why.join('; ') };
}
