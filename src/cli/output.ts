/**
 * Results for people: `--output table` prints aligned columns on the commands that list things
 * (list, history, label list, import). JSON on one line stays the default: scripts and the
 * original's users parse it.
 */
import type { CommandContext } from './command';

export const OUTPUT_OPTION = {
  type: 'string',
  choices: ['json', 'table'],
  default: 'json',
  describe: 'json (one line, the default) or table (aligned columns, for people)',
} as const;

export interface OutputArgs {
  output: string;
}

/** A column: its header and how a row fills it (absent values print as "-", lists joined by commas). */
export type Column<R> = readonly [header: string, cell: (row: R) => unknown];

/** Rows as text: a header line, then one line per row, columns two spaces apart. */
export function formatTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const cells = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, cell]) => show(cell(r))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i].length)));
  return cells
    .map(
      (line) =>
        `${line
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

function show(v: unknown): string {
  if (v === undefined || v === null || v === '') return '-';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.join(',');
  return String(v);
}

/** Print `result` as JSON, or, with --output table, as the text `table` makes of it. */
export function printResult<T>(args: OutputArgs, ctx: CommandContext, result: T, table: (r: T) => string): void {
  if (args.output === 'table') ctx.write(table(result));
  else ctx.print(result);
}
