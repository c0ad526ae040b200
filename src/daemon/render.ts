/**
 * Rendered files (`daemon --render FILE=SOURCE`): secrets written to files, typically on a task
 * volume the application mounts read-only, and rewritten when they change.
 *
 * - SOURCE is `NAME` (the payload's raw bytes; a binary secret's decoded bytes) or `KIND:ARG`.
 *   Secret names cannot hold `:`, so the two never clash. The kinds are a table (RENDER_KINDS);
 *   the daemon may pass more (issue 11's `config:PATH` plugs in there, with no change here).
 * - Every file is written atomically: a temp file in the same directory (so the rename cannot
 *   cross file systems), created with the final mode, written, fsynced, renamed over the target,
 *   then the directory fsynced so the rename itself survives a crash. A reader sees the old file
 *   or the new one, never a mix. A temp file left by a crash (ours are named
 *   `.<file>.ecs-secrets-tmp-*`) is removed at the next start, before anything is written.
 * - A file is rewritten only when its bytes change (compared by digest, so no secret is kept
 *   twice in memory); the sources are checked after every prefetch round, i.e. once per TTL.
 * - Until every file has been written once, /health answers 503 (the application's
 *   `dependsOn: HEALTHY` then guarantees the files exist when it starts).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { validateSecretRef } from '../core/labels';
import { type SecretRecord, payloadBytes } from '../core/service';
import { type Format, renderVariables } from '../delivery/formats';
import { type SelectedValue, parseSelector, resolveSelection, toEnvironment } from '../delivery/selection';
import type { PrefetchSelection } from './prefetch';
import { type ConfigService, type OutputFormat, renderConfig, validateConfigPath } from '../config/service';

export const DEFAULT_RENDER_MODE = '0440';
const TEMP_MARK = '.ecs-secrets-tmp-';

/** What a render source may read: the prefetched secrets (kept fresh by the prefetcher). */
export interface RenderInputs {
  /** The latest active record of a prefetched secret, undefined if it has none (yet). */
  record(name: string): SecretRecord | undefined;
  /** The prefetched names under a prefix that have an active version; undefined before the first listing. */
  namesUnder(prefix: string): string[] | undefined;
}

/** One kind of rendered content: what it needs prefetched, and how it turns into bytes. */
export interface RenderSource {
  /** Secrets to prefetch for it (added to --prefetch / --prefetch-prefix). */
  needs: PrefetchSelection;
  /** The file's bytes; undefined while an input is missing (an existing file is then left alone). */
  render(inputs: RenderInputs): Promise<Buffer | undefined>;
}

/** Parses the ARG of `KIND:ARG` (a usage error if it is malformed) into a source; `file` is the target's path. */
export type RenderKind = (arg: string, file: string) => RenderSource;

/** The raw kind: a secret's payload bytes, decoded from base64 for a binary secret. */
export function rawSource(nameIn: string): RenderSource {
  const name = validateSecretRef(nameIn);
  return {
    needs: { names: [name], prefixes: [] },
    render: async (inputs) => {
      const r = inputs.record(name);
      if (!r) return undefined;
      return payloadBytes(r);
    },
  };
}

/**
 * A dotenv or JSON file of a selection (`PREFIX*` or `NAME,NAME`, each NAME or VAR=NAME), with the
 * same variable names and quoting as `export` (src/delivery). A binary secret cannot be a variable:
 * that is an error naming it, logged, and the file is not written.
 */
export function selectionSource(format: Format): RenderKind {
  return (selector) => {
    const selection = parseSelector(selector);
    // Without a prefix the variables are known now: a collision is a usage error at start.
    if (selection.prefixes.length === 0) resolveSelection(selection);
    return {
      needs: { names: selection.names.map((n) => n.name), prefixes: selection.prefixes },
      render: async (inputs) => {
        const available: string[] = [];
        for (const p of selection.prefixes) {
          const names = inputs.namesUnder(p);
          if (!names || names.length === 0) return undefined;
          available.push(...names);
        }
        const values: SelectedValue[] = [];
        for (const { name, variable } of resolveSelection(selection, available)) {
          const r = inputs.record(name);
          if (!r) return undefined;
          values.push({ name, variable, payload: r.payload, encoding: r.encoding });
        }
        return Buffer.from(renderVariables(toEnvironment(values, format), format), 'utf8');
      },
    };
  };
}

/**
 * `config:PATH`: the decrypted configuration document at PATH (src/config), in the format the
 * file's extension names: `.json` → JSON, `.env` → dotenv, anything else → YAML (the form most
 * documents are written in). It reads the table itself at every check (documents are not part of
 * the prefetch), so a new version shows up within one TTL. A document that does not exist yet
 * leaves the file unwritten (and /health at 503), like a missing secret. `config` is called at
 * render time: the daemon parses --render before the backend is open.
 */
export function configSource(config: () => ConfigService): RenderKind {
  return (arg, file) => {
    const docPath = validateConfigPath(arg);
    const ext = path.extname(file).toLowerCase();
    const format: OutputFormat = ext === '.json' ? 'json' : ext === '.env' ? 'dotenv' : 'yaml';
    return {
      needs: { names: [], prefixes: [] },
      render: async () => {
        try {
          return Buffer.from(await renderConfig(config(), docPath, format), 'utf8');
        } catch (err) {
          if (err instanceof AppError && err.kind === 'not_found') return undefined;
          throw err;
        }
      },
    };
  };
}

/** The kinds written `KIND:ARG`. The daemon adds `config:PATH` (configSource) to these. */
export const RENDER_KINDS: Readonly<Record<string, RenderKind>> = {
  dotenv: selectionSource('dotenv'),
  json: selectionSource('json'),
};

export interface RenderTarget {
  /** Absolute path of the file. */
  file: string;
  /** The flag's value, for messages. */
  spec: string;
  source: RenderSource;
}

/** Parse `--render` values; every mistake is a usage error naming the value. */
export function parseRenderTargets(
  values: readonly string[],
  kinds: Readonly<Record<string, RenderKind>> = RENDER_KINDS,
): RenderTarget[] {
  const seen = new Set<string>();
  return values.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1)
      throw new AppError(
        'usage',
        `invalid --render ${JSON.stringify(spec)}: expected FILE=NAME or FILE=KIND:ARG (kinds: ${Object.keys(kinds).join(', ') || 'none'})`,
      );
    const file = path.resolve(spec.slice(0, eq));
    const what = spec.slice(eq + 1);
    if (seen.has(file)) throw new AppError('usage', `--render names ${JSON.stringify(file)} twice`);
    seen.add(file);
    const colon = what.indexOf(':');
    let source: RenderSource;
    if (colon < 0) source = rawSource(what);
    else {
      const kind = kinds[what.slice(0, colon)];
      if (!kind)
        throw new AppError(
          'usage',
          `invalid --render ${JSON.stringify(spec)}: unknown kind ${JSON.stringify(what.slice(0, colon))} (use NAME or one of: ${Object.keys(
            kinds,
          )
            .map((k) => `${k}:`)
            .join(', ')})`,
        );
      source = kind(what.slice(colon + 1), file);
    }
    return { file, spec, source };
  });
}

/** `--render-mode`: octal permission bits, e.g. 0440 or 440. */
export function parseRenderMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value))
    throw new AppError(
      'usage',
      `invalid --render-mode ${JSON.stringify(value)}: expected octal permissions such as 0440`,
    );
  return parseInt(value, 8);
}

const tempPrefix = (file: string) => `.${path.basename(file)}${TEMP_MARK}`;

/**
 * At start, before anything is written: each target's directory must exist and be writable (a
 * usage error otherwise: the task definition is wrong, and retrying cannot fix it), the target
 * must not be a directory, and temp files a crashed run of ours left next to it are removed.
 */
export function prepareTargets(targets: readonly RenderTarget[], logger?: Logger): void {
  for (const t of targets) {
    const dir = path.dirname(t.file);
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch (err) {
      throw new AppError(
        'usage',
        `--render ${JSON.stringify(t.spec)}: directory ${JSON.stringify(dir)} ${describeFsError(err)}`,
      );
    }
    if (!st.isDirectory())
      throw new AppError('usage', `--render ${JSON.stringify(t.spec)}: ${JSON.stringify(dir)} is not a directory`);
    try {
      if (fs.statSync(t.file).isDirectory())
        throw new AppError('usage', `--render ${JSON.stringify(t.spec)}: ${JSON.stringify(t.file)} is a directory`);
    } catch (err) {
      if (err instanceof AppError) throw err;
    }
    // Create and remove a temp file: the only test that covers read-only mounts, ACLs and root alike.
    const probe = path.join(dir, `${tempPrefix(t.file)}probe-${process.pid}`);
    try {
      fs.closeSync(fs.openSync(probe, 'wx', 0o600));
      fs.unlinkSync(probe);
    } catch (err) {
      throw new AppError(
        'usage',
        `--render ${JSON.stringify(t.spec)}: directory ${JSON.stringify(dir)} is not writable (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith(tempPrefix(t.file))) continue;
      const file = path.join(dir, f);
      // Only what our writer leaves: a file (or a link, removed itself, never followed). Anything
      // else under that name (a folder another user made in a shared directory) is not ours to
      // remove, and costs nothing: each write uses a fresh random temp name.
      try {
        if (fs.lstatSync(file).isDirectory()) {
          logger?.warn({ file }, 'render: left alone a folder named like our temp files');
          continue;
        }
        fs.rmSync(file, { force: true });
      } catch (err) {
        throw new AppError(
          'usage',
          `--render ${JSON.stringify(t.spec)}: cannot remove ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      logger?.warn({ file }, 'render: removed a temp file left by an earlier run');
    }
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ENOTDIR') return 'is not a directory';
  if (code === 'EACCES') return 'cannot be reached (permission denied)';
  return `cannot be used (${code ?? 'error'})`;
}

/** Write `data` to `file` atomically with `mode`. Never leaves the temp file behind. */
export async function writeAtomic(file: string, data: Buffer, mode: number): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `${tempPrefix(file)}${process.pid}-${randomBytes(6).toString('hex')}`);
  let renamed = false;
  try {
    const fh = await fs.promises.open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode); // the umask may have taken bits away at creation
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    renamed = true;
  } finally {
    if (!renamed) await fs.promises.rm(tmp, { force: true });
  }
  // The rename is durable only once the directory entry is on disk.
  const dh = await fs.promises.open(dir, 'r');
  try {
    await dh.sync().catch(() => undefined); // some file systems refuse fsync on a directory: nothing more to do there
  } finally {
    await dh.close();
  }
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface TargetState {
  target: RenderTarget;
  /** SHA-256 of what the file holds (as we last wrote or found it); undefined until written once. */
  written?: string;
  /** The file as we left it (device, inode, size, mtime): a change on disk means someone else wrote it. */
  stamp?: string;
  warnedMissing: boolean;
}

/** Who and what a path is now, without following a link: compared with what we left. */
async function stampOf(file: string): Promise<string | undefined> {
  try {
    const st = await fs.promises.lstat(file);
    return st.isFile() ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` : undefined;
  } catch {
    return undefined;
  }
}

export interface RendererOptions {
  targets: readonly RenderTarget[];
  mode: number;
  inputs: RenderInputs;
  logger: Logger;
}

export class Renderer {
  private readonly states: TargetState[];
  private checking: Promise<void> | undefined;

  constructor(private readonly opts: RendererOptions) {
    this.states = opts.targets.map((target) => ({ target, warnedMissing: false }));
  }

  /** Why /health must wait, or undefined once every file has been written once. */
  waitingFor(): string | undefined {
    const pending = this.states.filter((s) => s.written === undefined).map((s) => s.target.file);
    return pending.length === 0 ? undefined : `render waiting (files not written yet: ${pending.join(', ')})`;
  }

  /** Render every file and write those whose bytes changed. Calls never overlap. */
  check(): Promise<void> {
    const run = (this.checking ?? Promise.resolve()).then(() => this.checkAll());
    this.checking = run.finally(() => {
      if (this.checking === run) this.checking = undefined;
    });
    return run;
  }

  private async checkAll(): Promise<void> {
    for (const s of this.states) {
      const { file } = s.target;
      try {
        const data = await s.target.source.render(this.opts.inputs);
        if (data === undefined) {
          if (!s.warnedMissing)
            this.opts.logger.warn({ file }, 'render: an input is missing; the file is left as it is until it exists');
          s.warnedMissing = true;
          continue;
        }
        s.warnedMissing = false;
        const sum = digest(data);
        if (s.written === undefined && (await this.alreadyThere(file, sum))) {
          s.written = sum;
          s.stamp = await stampOf(file);
          continue;
        }
        // Same bytes, and the file is still the one we left: nothing to do. A file replaced or
        // edited since (by another process with access to the volume) is written again.
        const changedOnDisk = s.stamp !== undefined && (await stampOf(file)) !== s.stamp;
        if (sum === s.written && !changedOnDisk) continue;
        if (changedOnDisk && sum === s.written)
          this.opts.logger.warn({ file }, 'render: the file was changed on disk by someone else; writing it again');
        await writeAtomic(file, data, this.opts.mode);
        data.fill(0);
        this.opts.logger.info({ file, bytes: data.length, first: s.written === undefined }, 'render: file written');
        s.written = sum;
        s.stamp = await stampOf(file);
      } catch (err) {
        this.opts.logger.error(
          { file, error: (err as Error).message },
          'render: cannot write the file; retrying at the next refresh',
        );
      }
    }
  }

  /**
   * A file left by an earlier run of this container with the same bytes: keep it (fix its mode),
   * no rewrite. Only a regular file of our own user: a link (never followed) or another user's
   * file with the right bytes is replaced, so the file the application reads is always ours.
   */
  private async alreadyThere(file: string, sum: string): Promise<boolean> {
    try {
      const st = await fs.promises.lstat(file);
      if (!st.isFile() || st.uid !== process.getuid?.() || digest(await fs.promises.readFile(file)) !== sum)
        return false;
      if ((st.mode & 0o777) !== this.opts.mode) await fs.promises.chmod(file, this.opts.mode);
      return true;
    } catch {
      return false;
    }
  }
}
