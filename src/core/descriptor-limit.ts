/**
 * The process's open-descriptor limit (RLIMIT_NOFILE), raised from its soft to its hard value.
 *
 * Many environments start processes with a soft limit of 1,024 under a much higher hard limit; a
 * server that every local user can connect to (the daemon, the embedded store's owner) then runs
 * out of descriptors long before the host does, and its own outgoing calls fail with it. Node has
 * no setrlimit, and a native addon for one call is not worth its build: `prlimit` (util-linux,
 * present in Debian-based images including ours) changes a running process's limit by pid. Where
 * it is missing (macOS, a distroless image) the limit stays as it was; the connection bounds
 * (below the limit) still hold, and the answer says so.
 */
import { execFileSync } from 'node:child_process';

export interface DescriptorLimit {
  /** The soft limit now in force. */
  soft: number;
  hard: number;
  /** Whether the soft limit was raised by this call. */
  raised: boolean;
}

const PRLIMIT_TIMEOUT_MS = 5_000;

function prlimit(args: string[]): string {
  return execFileSync('prlimit', ['--pid', String(process.pid), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: PRLIMIT_TIMEOUT_MS,
  });
}

function current(): { soft: number; hard: number } | undefined {
  const [soft, hard] = prlimit(['--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD']).trim().split(/\s+/);
  const parsed = { soft: Number(soft), hard: Number(hard) };
  return Number.isSafeInteger(parsed.soft) && Number.isSafeInteger(parsed.hard) ? parsed : undefined;
}

let settled: DescriptorLimit | undefined;

/**
 * Raise the soft limit to the hard one (once per process); undefined when it cannot be read
 * (no prlimit). Never throws: a limit left as it was is not a reason to refuse to start.
 */
export function raiseDescriptorLimit(): DescriptorLimit | undefined {
  if (settled) return settled;
  try {
    const before = current();
    if (!before) return undefined;
    if (before.soft >= before.hard) {
      settled = { ...before, raised: false };
      return settled;
    }
    prlimit([`--nofile=${before.hard}:`]);
    const after = current() ?? before;
    settled = { ...after, raised: after.soft > before.soft };
    return settled;
  } catch {
    return undefined;
  }
}
