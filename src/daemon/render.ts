/**
 * Rendered files (`daemon --render FILE=SOURCE`): what each file holds, and when it is written.
 * Secrets go to files, typically on a task volume the application mounts read-only, and are
 * rewritten when they change. (render-targets.ts parses the flag; render-files.ts writes.)
 *
 * - A file is rewritten only when its bytes change (compared by digest, so no secret is kept
 *   twice in memory), or when someone else changed it on disk; the sources are checked after
 *   every prefetch round, i.e. once per TTL.
 * - Until every file has been written once, /health answers 503 (the application's
 *   `dependsOn: HEALTHY` then guarantees the files exist when it starts).
 */
import { writeFileAtomic } from '../core/atomic-file';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { type SecretRecord, payloadBytes } from '../core/secrets-service';
import { type ConfigService, renderConfig } from '../config/documents-service';
import { renderVariables } from '../delivery/formats';
import { type SelectedValue, resolveSelection, toEnvironment } from '../delivery/selection';
import { digest, keepIfSame, stampOf } from './render-files';
import type { RenderContent, RenderTarget } from './render-targets';

/** What a render source may read: the prefetched secrets (kept fresh by the prefetcher). */
export interface RenderInputs {
  /** The latest active record of a prefetched secret, undefined if it has none (yet). */
  record(name: string): SecretRecord | undefined;
  /** The prefetched names under a prefix that have an active version; undefined before the first listing. */
  namesUnder(prefix: string): string[] | undefined;
}

/** The file's bytes; undefined while an input is missing (an existing file is then left alone). */
type Render = () => Promise<Buffer | undefined>;

/** How each kind of content turns into bytes. */
function renderFor(content: RenderContent, inputs: RenderInputs, config: ConfigService): Render {
  switch (content.kind) {
    case 'raw':
      return async () => {
        const r = inputs.record(content.name);
        return r ? payloadBytes(r) : undefined;
      };
    // A binary secret cannot be a variable: that is an error naming it, logged, and the file is not written.
    case 'dotenv':
    case 'json':
      return async () => {
        const { selection, kind } = content;
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
        return Buffer.from(renderVariables(toEnvironment(values, kind), kind), 'utf8');
      };
    // Documents are not prefetched: the table is read at every check, so a new version shows up
    // within one TTL. A document that does not exist yet leaves the file unwritten (and /health
    // at 503), like a missing secret.
    case 'config':
      return async () => {
        try {
          return Buffer.from(await renderConfig(config, content.path, content.format), 'utf8');
        } catch (err) {
          if (err instanceof AppError && err.kind === 'not_found') return undefined;
          throw err;
        }
      };
  }
}

interface TargetState {
  file: string;
  render: Render;
  /** SHA-256 of what the file holds (as we last wrote or found it); undefined until written once. */
  written?: string;
  /** The file as we left it (device, inode, size, mtime): a change on disk means someone else wrote it. */
  stamp?: string;
  warnedMissing: boolean;
}

export interface RendererOptions {
  targets: readonly RenderTarget[];
  mode: number;
  inputs: RenderInputs;
  /** Where `config:PATH` documents are read. */
  config: ConfigService;
  logger: Logger;
}

export class Renderer {
  private readonly states: TargetState[];
  private checking: Promise<void> | undefined;

  constructor(private readonly opts: RendererOptions) {
    this.states = opts.targets.map((t) => ({
      file: t.file,
      render: renderFor(t.content, opts.inputs, opts.config),
      warnedMissing: false,
    }));
  }

  /** Why /health must wait, or undefined once every file has been written once. */
  waitingFor(): string | undefined {
    const pending = this.states.filter((s) => s.written === undefined).map((s) => s.file);
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
    const { mode, logger } = this.opts;
    for (const s of this.states) {
      const { file } = s;
      try {
        const data = await s.render();
        if (data === undefined) {
          if (!s.warnedMissing)
            logger.warn({ file }, 'render: an input is missing; the file is left as it is until it exists');
          s.warnedMissing = true;
          continue;
        }
        s.warnedMissing = false;
        const sum = digest(data);
        if (s.written === undefined && (await keepIfSame(file, sum, mode))) {
          s.written = sum;
          s.stamp = await stampOf(file);
          continue;
        }
        // Same bytes, and the file is still the one we left: nothing to do. A file replaced or
        // edited since (by another process with access to the volume) is written again.
        const changedOnDisk = s.stamp !== undefined && (await stampOf(file)) !== s.stamp;
        if (sum === s.written && !changedOnDisk) continue;
        if (changedOnDisk && sum === s.written)
          logger.warn({ file }, 'render: the file was changed on disk by someone else; writing it again');
        await writeFileAtomic(file, data, mode);
        data.fill(0);
        logger.info({ file, bytes: data.length, first: s.written === undefined }, 'render: file written');
        s.written = sum;
        s.stamp = await stampOf(file);
      } catch (err) {
        logger.error(
          { file, error: (err as Error).message },
          'render: cannot write the file; retrying at the next refresh',
        );
      }
    }
  }
}
