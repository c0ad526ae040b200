/**
 * Progress on stderr, never stdout (the JSON summary's) and never a value: a bar on a terminal
 * (cli-progress), one line per secret otherwise (CI logs, `2> file`).
 */
import type { SingleBar } from 'cli-progress';

export interface Progress {
  secretDone(entry: { source: string; name: string }, outcome: string): void;
  stop(): void;
}

export function createProgress(total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const { SingleBar, Presets } = require('cli-progress') as typeof import('cli-progress');
    const bar: SingleBar = new SingleBar(
      { stream, format: 'import [{bar}] {value}/{total} secrets | {name}', hideCursor: true },
      Presets.shades_classic,
    );
    bar.start(total, 0, { name: '' });
    return {
      secretDone: (entry) => bar.increment(1, { name: entry.name }),
      stop: () => bar.stop(),
    };
  }
  let done = 0;
  return {
    secretDone: (entry, outcome) => {
      done++;
      stream.write(`import ${done}/${total}: ${entry.source} -> ${entry.name}: ${outcome}\n`);
    },
    stop: () => {},
  };
}
