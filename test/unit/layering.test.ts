// The layer order of src/ (written at the top of docs/architecture.md, read from there) and no import
// cycles: the import graph is read with TypeScript's own pre-processor, so type-only imports,
// `export … from`, dynamic import() and the .cjs files' require() all count and comments do not.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../..');
const SOURCE = /\.(ts|cjs|mjs)$/;

// Violations found in today's tree, each as the test prints it. This list must end empty: the test
// also fails when a listed violation no longer occurs, so it can only shrink. Never add to it to make
// a new import pass; move the code to the right layer instead.
const KNOWN_VIOLATIONS: readonly string[] = [];

interface Layer {
  rank: number;
  name: string;
  entries: string[];
}

/** The numbered list under "## Layer order" in docs/architecture.md. */
function parseLayerOrder(markdown: string): Layer[] {
  const section = markdown.split(/^## Layer order\s*$/m)[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error('docs/architecture.md has no "## Layer order" section');
  const layers: Layer[] = [];
  for (const line of section.split('\n')) {
    const match = /^(\d+)\. ([\w-]+): (.*)$/.exec(line);
    if (!match) continue;
    const entries = [...(match[3] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    layers.push({ rank: Number(match[1]), name: match[2] ?? '', entries });
  }
  return layers;
}

function layerOf(file: string, layers: Layer[]): Layer | undefined {
  // The longest matching entry wins, so a file can be placed apart from its folder.
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of layers) {
    for (const entry of layer.entries) {
      const hit = entry.endsWith('/') ? file.startsWith(entry) : file === entry;
      if (hit && (best === undefined || entry.length > best.length)) best = { layer, length: entry.length };
    }
  }
  return best?.layer;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return SOURCE.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** file → the src/ files it imports (paths relative to the repository). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const path of sourceFiles(join(REPO, 'src'))) {
    const info = ts.preProcessFile(readFileSync(path, 'utf8'), true, true);
    const targets = new Set<string>();
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      let target = resolve(dirname(path), fileName);
      if (statSync(target, { throwIfNoEntry: false })?.isDirectory()) target = join(target, 'index.ts');
      const rel = relative(REPO, target);
      if (rel.startsWith('src/')) targets.add(rel);
    }
    graph.set(relative(REPO, path), [...targets].sort());
  }
  return graph;
}

/** Tarjan's strongly connected components; those of more than one file are import cycles. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node) ?? 0);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(next) ?? 0));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** One concrete loop through a cycle's first file, to show the reader a path to break. */
function loopThrough(component: string[], graph: Map<string, string[]>): string[] {
  const members = new Set(component);
  const start = component[0] ?? '';
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() ?? '';
    for (const next of graph.get(node) ?? []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const path = [node];
        for (let at = previous.get(node); at !== undefined; at = previous.get(at)) path.unshift(at);
        return [...path, start];
      }
      if (!previous.has(next) && next !== start) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return component;
}

function violations(): { found: string[]; loops: string[] } {
  const layers = parseLayerOrder(readFileSync(join(REPO, 'docs/architecture.md'), 'utf8'));
  const graph = importGraph();
  const found: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file, layers);
    if (from === undefined) {
      found.push(`unplaced: ${file} is under no entry of the layer order`);
      continue;
    }
    for (const target of targets) {
      const to = layerOf(target, layers);
      if (to !== undefined && to.rank > from.rank) {
        found.push(`upward: ${file} [${from.rank} ${from.name}] → ${target} [${to.rank} ${to.name}]`);
      }
    }
  }
  // A cycle is listed edge by edge (each import between two files of one cycle), so breaking one
  // edge removes exactly its line and the others stay as they were.
  const loops: string[] = [];
  for (const component of cycles(graph)) {
    const members = new Set(component);
    for (const file of component) {
      for (const target of graph.get(file) ?? []) if (members.has(target)) found.push(`cycle: ${file} → ${target}`);
    }
    loops.push(`  ${loopThrough(component, graph).join(' → ')} (${component.length} files)`);
  }
  return { found: found.sort(), loops };
}

describe('layering of src/', () => {
  it('reads the layer order of docs/architecture.md', () => {
    const layers = parseLayerOrder(readFileSync(join(REPO, 'docs/architecture.md'), 'utf8'));
    expect(layers.map((l) => `${l.rank} ${l.name}`)).toEqual([
      '1 base',
      '2 access',
      '3 contracts',
      '4 features',
      '5 programs',
      '6 cli',
    ]);
    expect(layers.flatMap((l) => l.entries).every((e) => e.startsWith('src/'))).toBe(true);
  });

  it('has no import cycle and no upward import beyond the known ones', () => {
    const { found, loops } = violations();
    const known = new Set(KNOWN_VIOLATIONS);
    const added = found.filter((v) => !known.has(v));
    const gone = KNOWN_VIOLATIONS.filter((v) => !found.includes(v));
    const lines: string[] = [];
    if (added.length > 0) {
      lines.push(`${added.length} new violation(s) of the layer order in docs/architecture.md:`, ...added);
      if (loops.length > 0) lines.push('cycles, one loop each:', ...loops);
    }
    if (gone.length > 0) {
      lines.push(`${gone.length} listed in KNOWN_VIOLATIONS no longer occur(s); delete from the list:`, ...gone);
    }
    expect(lines.join('\n')).toBe('');
  });
});
