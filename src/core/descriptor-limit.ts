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
import * as fs from 'node:fs';

export interface DescriptorLimit {
  /** The soft limit now in force. */
  soft: number;
  hard: number;
  /** Whether the soft limit was raised by this call. */
  raised: boolean;
}

const PRLIMIT_TIMEOUT_MS = 5_000;

/**
 * The limit as the kernel shows it in /proc/self/limits: read, not spawned, so a one-shot command
 * that owns the embedded store for a few hundred milliseconds spawns prlimit only when there is
 * something to raise. ("unlimited" is not a number: treated as unreadable, nothing to raise.)
 */
function current(): { soft: number; hard: number } | undefined {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  const parsed = { soft: Number(line?.[1]), hard: Number(line?.[2]) };
  return Number.isSafeInteger(parsed.soft) && Number.isSafeInteger(parsed.hard) ? parsed : undefined;
}

let settled: DescriptorLimit | undefined;

/**
 * Raise the soft limit to the hard one (once per process); undefined when it cannot be read (no
 * /proc). Never throws: a limit left as it was (no prlimit, or prlimit refused) is not a reason to
 * refuse to start, and the answer then says the soft limit still in force.
 */
export function raiseDescriptorLimit(): DescriptorLimit | undefined {
  if (settled) return settled;
  let before: { soft: number; hard: number } | undefined;
  try {
    before = current();
  } catch {
    return undefined;
  }
  if (!before) return undefined;
  if (before.soft < before.hard) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:`], {
        stdio: 'ignore',
        timeout: PRLIMIT_TIMEOUT_MS,
      });
    } catch {
      // Left as it was; said by `raised` below.
    }
  }
  const after = current() ?? before;
  settled = { ...after, raised: after.soft > before.soft };
  return settled;
}
