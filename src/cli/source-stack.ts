/**
 * `--debug` stack traces that name our TypeScript files, not lines of the minified bundle. The
 * bundle ships with its source map (dist/src/cli.js.map, chained through tsc's maps to src/*.ts);
 * node maps stacks only when started with --enable-source-maps, which would parse that map on
 * every start of every command. So the map is read here, only when a stack is about to be
 * printed, with node's own SourceMap.
 */
import * as fs from 'node:fs';
import { SourceMap } from 'node:module';
import * as path from 'node:path';

/** `stack` with each frame in a file that has a source map rewritten to the original file:line:column. */
export function mapStack(stack: string): string {
  const maps = new Map<string, SourceMap | undefined>();
  const load = (file: string) => {
    if (!maps.has(file)) {
      try {
        maps.set(file, new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8'))));
      } catch {
        maps.set(file, undefined); // no map beside it (tsc's unbundled files, node's own): left as is
      }
    }
    return maps.get(file);
  };
  return stack.replace(/(\/[^\s():]+\.js):(\d+):(\d+)/g, (frame, file: string, line: string, column: string) => {
    const entry = load(file)?.findEntry(Number(line) - 1, Number(column) - 1) as
      | { originalSource?: string; originalLine?: number; originalColumn?: number }
      | undefined;
    if (!entry?.originalSource || entry.originalLine === undefined || entry.originalColumn === undefined) return frame;
    const source = entry.originalSource.startsWith('file://')
      ? new URL(entry.originalSource).pathname
      : path.resolve(path.dirname(file), entry.originalSource);
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  });
}
