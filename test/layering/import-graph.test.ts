/**
 * Layering rules of src/, checked on the import graph (static imports, re-exports and
 * dynamic import() of relative paths; type-only imports count too):
 * - nothing outside src/cli/ imports src/cli/;
 * - nothing inside src/ imports the package barrel src/index.ts;
 * - no import cycles;
 * - nothing in src/ imports test or demo tooling (test/, tools/, bench/).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const src = join(root, 'src');

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTs(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** Relative import specifiers of a module's text, without comments. */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec !== undefined && spec.startsWith('.')) out.push(spec);
  }
  return out;
}

/** The graph: module path (relative to the repository) -> imported module paths. */
function buildGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of listTs(src)) {
    const from = relative(root, file);
    const targets = importsOf(readFileSync(file, 'utf8')).map((spec) => relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'));
    graph.set(from, targets);
  }
  return graph;
}

/** Every cycle's modules (strongly connected components with more than one module, or a self-import). */
export function cyclesOf(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!));
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return out;
}

describe('import graph of src/', () => {
  const graph = buildGraph();

  it('finds the modules and their imports', () => {
    // Guards the checks below against a parser that sees nothing.
    expect(graph.size).toBeGreaterThan(40);
    expect(graph.get('src/cli/main.ts')!.length).toBeGreaterThan(3);
    expect(importsOf("import { a } from './a.js';\nimport type { B } from '../b.js';\nexport * from './c.js';\nconst m = await import('./d.js');\n// import x from './e.js'")).toEqual(['./a.js', '../b.js', './c.js', './d.js']);
  });

  it('keeps src/cli/ as the top layer: nothing else in src/ imports it', () => {
    const offenders = [...graph].flatMap(([from, to]) => (from.startsWith('src/cli/') ? [] : to.filter((t) => t.startsWith('src/cli/')).map((t) => `${from} -> ${t}`)));
    expect(offenders).toEqual([]);
  });

  it('never imports the package barrel src/index.ts from inside src/', () => {
    const offenders = [...graph].flatMap(([from, to]) => to.filter((t) => t === 'src/index.ts').map(() => from));
    expect(offenders).toEqual([]);
  });

  it('never imports test, bench or demo tooling from src/', () => {
    const offenders = [...graph].flatMap(([from, to]) => to.filter((t) => !t.startsWith('src/')).map((t) => `${from} -> ${t}`));
    expect(offenders).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('detects a cycle when there is one', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cyclesOf(g)).toEqual([['a', 'b', 'c']]);
  });
});

describe('published package', () => {
  it('ships no test or demo tooling and keeps the local AWS servers dev-only', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[]; dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.files.some((f) => f.includes('tools') || f.includes('test'))).toBe(false);
    expect(listTs(src).map((f) => relative(root, f)).filter((f) => /local-servers|fault-proxy|demo-aws-local/.test(f))).toEqual([]);
    for (const dev of ['kinesalite', 'dynalite']) {
      expect(pkg.dependencies[dev]).toBeUndefined();
      expect(pkg.devDependencies[dev]).toBeDefined();
    }
  });
});
