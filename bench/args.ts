import { DEFAULT_IDLE_SECONDS } from './propagation';

/** The bench's flags. Small on purpose: `npm run bench -- --duration 10 --reps 3 --out result.json`. */

export interface BenchOptions {
  /** Seconds of measured load per server per repetition. */
  duration: number;
  /** Seconds of unmeasured load before each measured one (JIT, connection set-up). */
  warmup: number;
  reps: number;
  connections: number;
  /** Distinct secrets read into the daemon's cache before the memory figure. */
  secrets: number;
  /** Never-read secrets read one by one per repetition for the cold-read figure. */
  cold: number;
  /** Runs of `exec` against the child alone per repetition for the exec start-up figures (their median). */
  execRuns: number;
  /** Run the daemon with a token (X-ECS-Secrets-Token on every request), as a careful operator would. */
  token: boolean;
  out?: string;
  /** Directory for the daemon's V8 CPU profiles (node --cpu-prof), for finding the hot spots. */
  cpuProf?: string;
  /** Extra node flags for the daemon process, e.g. V8 heap settings a container might use. */
  daemonNodeArgs: string[];
  /** Cores (0.25 = a quarter) the daemon and the bare server each get, in turn, for the quota rows (cgroup CPU controller). */
  cpuQuota?: number;
  /** Connections for the quota rows (a sidecar serves a handful of application workers). */
  quotaConnections: number;
  /** The node binary for the daemon, the CLI and the bare server (default: the one running the bench). */
  node?: string;
  /** Seconds of the memory soak on each backend (0: no soak). */
  soakSeconds: number;
  /** Secrets the soak stores before its load. */
  soakSecrets: number;
  /** Only the soak: skip the repetitions. */
  soakOnly: boolean;
  /** The backends the soak runs on. */
  soakBackends: Array<'local' | 'aws'>;
  /** SSM parameters (3 versions each) the import figure imports. */
  importParameters: number;
  /** CLI rotations the propagation latency is measured over. */
  propagationRotations: number;
  /** Seconds an idle daemon at the new defaults is watched for its backend reads. */
  idleSeconds: number;
  /** Only the propagation figures (latency and idle cost): skip the repetitions and the soak. */
  propagationOnly: boolean;
  /** Only the import figure, `reps` times: skip the daemon, the repetitions' other figures and the soak. */
  importOnly: boolean;
}

export const USAGE = `Usage: node dist/bench/bench.js [flags]

  --duration S     measured load per server per repetition, seconds, 0.1 or more (default 10)
  --warmup S       unmeasured load before each measured one, seconds (default min(2, duration))
  --reps N         repetitions; the median is reported (default 3)
  --connections N  autocannon connections (default 32)
  --secrets N      distinct secrets cached before the memory figure (default 1000)
  --cold N         never-read secrets read one by one per repetition (default 20)
  --exec-runs N    exec start-ups (each with the child alone) per repetition, their median
                   reported (default 5)
  --no-token       run the daemon without a token (default: with one, sent on every request)
  --out FILE       also write the figures as JSON to FILE
  --cpu-prof DIR   write the daemon's V8 CPU profiles to DIR (node --cpu-prof)
  --daemon-node-args "FLAGS"
                   extra node flags for the daemon process (default: none), e.g.
                   "--max-semi-space-size=2" to measure a container's heap settings
  --cpu-quota C    also measure hot reads with the daemon, then the bare server, confined to
                   C cores (e.g. 0.25) by the cgroup CPU controller (needs root)
  --quota-connections N
                   connections for the --cpu-quota rows (default 8)
  --node PATH      run the daemon, the CLI and the bare server with this node binary, e.g. the
                   image's Node 24 (default: the node running the bench)
  --soak-seconds S the memory soak: each backend's daemon under a mixed load for S seconds,
                   its RSS slope reported (default 240: the embedded
                   store settles after about 2 minutes; 0 skips it)
  --soak-secrets N secrets of 64 B to 64 KiB the soak stores first (default 2000)
  --soak-only      run only the soak
  --soak-backend B local, aws or both (default both)
  --import-parameters N
                   SSM parameters of 3 versions each the import figure imports (default 1000)
  --propagation-rotations N
                   CLI rotations the propagation latency is measured over (default 50)
  --idle-seconds S an idle daemon at the new defaults holding the N secrets is counted for S
                   seconds (default ${DEFAULT_IDLE_SECONDS}: one whole 600 s TTL); the 30 s TTL it is compared
                   with for one to four of its TTLs
  --propagation-only
                   run only the propagation figures
  --import-only    run only the import figure, --reps times (each run and the median shown);
                   with --cpu-prof DIR the import processes' CPU profiles go to DIR
`;

export class UsageError extends Error {}

function number(flag: string, value: string | undefined, min: number, integer: boolean): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new UsageError(
      `--${flag} needs ${integer ? 'a whole number' : 'a number'} >= ${min}, got ${JSON.stringify(value ?? '')}`,
    );
  return n;
}

export function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    duration: 10,
    warmup: NaN,
    reps: 3,
    connections: 32,
    secrets: 1000,
    cold: 20,
    execRuns: 5,
    token: true,
    daemonNodeArgs: [],
    quotaConnections: 8,
    soakSeconds: 240,
    soakSecrets: 2000,
    soakOnly: false,
    soakBackends: ['local', 'aws'],
    importParameters: 1000,
    propagationRotations: 50,
    idleSeconds: DEFAULT_IDLE_SECONDS,
    propagationOnly: false,
    importOnly: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--duration':
        // Short loads are for checking that the bench runs (its figures are per request, finite for any
        // load that served one); the figures worth reading take seconds.
        o.duration = number('duration', value(), 0.1, false);
        break;
      case '--warmup':
        o.warmup = number('warmup', value(), 0, false);
        break;
      case '--reps':
        o.reps = number('reps', value(), 1, true);
        break;
      case '--connections':
        o.connections = number('connections', value(), 1, true);
        break;
      case '--secrets':
        o.secrets = number('secrets', value(), 1, true);
        break;
      case '--cold':
        o.cold = number('cold', value(), 1, true);
        break;
      case '--exec-runs':
        o.execRuns = number('exec-runs', value(), 1, true);
        break;
      case '--no-token':
        o.token = false;
        break;
      case '--out':
        o.out = value();
        if (!o.out) throw new UsageError('--out needs a file name');
        break;
      case '--cpu-prof':
        o.cpuProf = value();
        if (!o.cpuProf) throw new UsageError('--cpu-prof needs a directory');
        break;
      case '--daemon-node-args': {
        const v = value();
        if (v === undefined) throw new UsageError('--daemon-node-args needs a value (quote it: "--flag=1 --other")');
        o.daemonNodeArgs = v.split(/\s+/).filter(Boolean);
        if (o.daemonNodeArgs.some((a) => !a.startsWith('-')))
          throw new UsageError('--daemon-node-args takes node flags only');
        break;
      }
      case '--cpu-quota':
        o.cpuQuota = number('cpu-quota', value(), 0.01, false);
        break;
      case '--quota-connections':
        o.quotaConnections = number('quota-connections', value(), 1, true);
        break;
      case '--node':
        o.node = value();
        if (!o.node) throw new UsageError('--node needs the path of a node binary');
        break;
      case '--soak-seconds':
        o.soakSeconds = number('soak-seconds', value(), 0, false);
        break;
      case '--soak-secrets':
        o.soakSecrets = number('soak-secrets', value(), 1, true);
        break;
      case '--import-parameters':
        o.importParameters = number('import-parameters', value(), 1, true);
        break;
      case '--propagation-rotations':
        o.propagationRotations = number('propagation-rotations', value(), 1, true);
        break;
      case '--idle-seconds':
        o.idleSeconds = number('idle-seconds', value(), 1, false);
        break;
      case '--propagation-only':
        o.propagationOnly = true;
        break;
      case '--import-only':
        o.importOnly = true;
        break;
      case '--soak-only':
        o.soakOnly = true;
        break;
      case '--soak-backend': {
        const v = value();
        if (v !== 'local' && v !== 'aws' && v !== 'both')
          throw new UsageError('--soak-backend needs local, aws or both');
        o.soakBackends = v === 'both' ? ['local', 'aws'] : [v];
        break;
      }
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown flag ${JSON.stringify(arg)}`);
    }
  }
  if (o.soakOnly && o.soakSeconds === 0) throw new UsageError('--soak-only needs --soak-seconds above 0');
  if (Number.isNaN(o.warmup)) o.warmup = Math.min(2, o.duration);
  return o;
}
