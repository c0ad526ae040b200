/**
 * Reading what a user points a command at (a payload file, a configuration document, standard
 * input for `-`) with a cap on what is kept, and the one table of the words a failed read is
 * reported in.
 */
import * as fs from 'node:fs';
import { AppError } from './errors';

/** Why a file could not be read, in a few words an operator acts on (never the message, which may repeat input). */
export function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? 'unreadable';
}

export interface CappedInput {
  /** At most the cap's worth of the input (a chunk more at the end is possible: compare `size`). */
  data: Buffer;
  /**
   * The input's size as far as known: exact below the cap; past it a file's from fstat, standard
   * input's counted up to `countTo` (one chunk more at most), so errors can name the real size.
   */
  size: number;
}

/**
 * Read FILE, or standard input for `-`, keeping at most about `cap` bytes. A read that fails is a
 * usage error "cannot read WHAT "FILE": why"; what is too large is the caller's to judge from `size`.
 */
export async function readCapped(location: string, cap: number, what: string, countTo = cap): Promise<CappedInput> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  const stream = location === '-' ? process.stdin : fs.createReadStream(location, { highWaterMark: 16 * 1024 });
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (kept < cap) {
        chunks.push(buf);
        kept += buf.length;
      }
      if (total < cap) continue;
      if (location !== '-') {
        // The file's size, not the bytes read so far (a pipe's stat says 0: then what was read).
        total = Math.max(total, (await fs.promises.stat(location)).size);
        break;
      }
      if (total > countTo) break;
    }
  } catch (err) {
    throw new AppError('usage', `cannot read ${what} ${JSON.stringify(location)}: ${describeReadError(err)}`);
  } finally {
    if (location !== '-') (stream as fs.ReadStream).destroy();
  }
  return { data: Buffer.concat(chunks), size: total };
}
