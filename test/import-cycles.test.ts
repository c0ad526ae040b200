/**
 * The layout promise: no module in src/ imports one that imports it back, directly or through
 * others. The graph comes from the TypeScript compiler's own import scanner and module resolution
 * (type-only imports and lazy require() calls included: a cycle through either still couples the
 * two modules), so it sees what `tsc` sees.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const SRC = path.join(__dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** module → the src/ modules it imports. */
export function importGraph(files: string[]): Map<string, string[]> {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    resolveJsonModule: true,
  };
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const deps = info.importedFiles
      .map((i) => ts.resolveModuleName(i.fileName, file, options, ts.sys).resolvedModule?.resolvedFileName)
      .filter((f): f is string => !!f?.startsWith(SRC + path.sep) && f.endsWith('.ts'));
    graph.set(file, [...new Set(deps)]);
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as the list of modules around it. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return cycles;
}

const rel = (f: string) => path.relative(SRC, f);

test('the scanner sees the imports (the graph is not empty, and the entry point reaches every command)', () => {
  const graph = importGraph(sourceFiles(SRC));
  expect(graph.get(path.join(SRC, 'cli.ts'))?.map(rel)).toEqual(['startup/bundled-module.ts']);
  expect(graph.get(path.join(SRC, 'ecs-secrets.ts'))?.map(rel)).toEqual(['cli/main.ts']);
  expect(graph.get(path.join(SRC, 'cli', 'main.ts'))?.map(rel)).toEqual(
    expect.arrayContaining(['cli/commands/create.ts', 'cli/commands/daemon.ts']),
  );
});

test('a cycle is found when there is one (the check can fail)', () => {
  const a = '/x/a.ts',
    b = '/x/b.ts',
    c = '/x/c.ts';
  expect(
    findCycles(
      new Map([
        [a, [b]],
        [b, [c]],
        [c, [a]],
      ]),
    ),
  ).toEqual([[a, b, c, a]]);
  expect(
    findCycles(
      new Map([
        [a, [b]],
        [b, [c]],
        [c, []],
      ]),
    ),
  ).toEqual([]);
});

test('no module in src/ imports one that imports it back', () => {
  const cycles = findCycles(importGraph(sourceFiles(SRC))).map((c) => c.map(rel).join(' → '));
  expect(cycles).toEqual([]);
});

/** The files the module map in docs/development.md lists under src/ (an indented tree: two spaces a level, the name first). */
function moduleMapFiles(page: string): string[] {
  const block = /```\nsrc\/\n([\s\S]*?)\n(?=\S)/.exec(page);
  if (!block) throw new Error('docs/development.md has no module map starting with "src/"');
  const dirs: string[] = [];
  const files: string[] = [];
  for (const line of block[1].split('\n')) {
    const m = /^( +)(\S+)/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 2 - 1;
    dirs.length = depth;
    if (m[2].endsWith('/')) dirs.push(m[2].slice(0, -1));
    else files.push([...dirs, m[2]].join('/'));
  }
  return files.sort();
}

test('the module map in docs/development.md lists exactly the files in src/', () => {
  const page = fs.readFileSync(path.join(__dirname, '..', 'docs', 'development.md'), 'utf8');
  const actual = sourceFiles(SRC)
    .map((f) => rel(f).split(path.sep).join('/'))
    .sort();
  expect(moduleMapFiles(page)).toEqual(actual);
});
