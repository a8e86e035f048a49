/**
 * The one-way house (issue 15): src/ modules import in one direction only —
 *
 *   vocabulary (redact, errors, version, telemetry/semconv)
 *     → config → probes, policy → health → notify, persist → telemetry, server
 *       → wiring (sidecar, cli, commands, startup, check-once, cli-args)
 *
 * — server/ and telemetry/, one layer, do not import each other (the wiring
 * connects telemetry's renderers and recorders to the server's ports) —
 * and there is no import circle, counting `import type` too (a type-only
 * circle is still two modules that cannot be understood apart). The imports
 * are read with the TypeScript compiler's own pre-processor, not a regex.
 * Each rule is first shown to catch a made-up violation.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/paths';

const SRC = join(ROOT, 'src');
const VOCABULARY = new Set(['redact.ts', 'errors.ts', 'version.ts', 'telemetry/semconv.ts']);
const LAYER: Readonly<Record<string, number>> = { config: 1, probes: 2, policy: 2, health: 3, notify: 4, persist: 4, store: 4, telemetry: 5, server: 5 };
const WIRING = 6;

function layerOf(module: string): number {
  if (VOCABULARY.has(module)) return 0;
  const top = module.split('/')[0]!;
  return module.includes('/') ? (LAYER[top] ?? WIRING) : WIRING;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** module (path under src/) → the src modules it imports (type imports included) */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const deps: string[] = [];
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const base = resolve(dirname(file), fileName);
      const target = [`${base}.ts`, join(base, 'index.ts')].find((candidate) => existsSync(candidate));
      assert.ok(target, `${relative(SRC, file)} imports ${fileName}, which is not a module under src/`);
      deps.push(relative(SRC, target).split('\\').join('/'));
    }
    graph.set(relative(SRC, file).split('\\').join('/'), deps);
  }
  return graph;
}

/** the import circles (Tarjan's strongly connected components with more than one module, or a self-import) */
function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** imports that point at a later layer */
function backwards(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const wrong: string[] = [];
  for (const [from, deps] of graph) for (const to of deps) if (layerOf(to) > layerOf(from)) wrong.push(`${from} → ${to}`);
  return wrong;
}

/** imports from modules of one directory into another (the vocabulary, e.g. telemetry/semconv.ts, is everyone's) */
function crossings(graph: ReadonlyMap<string, readonly string[]>, from: string, to: string): string[] {
  const wrong: string[] = [];
  for (const [module, deps] of graph) {
    if (!module.startsWith(`${from}/`)) continue;
    for (const dep of deps) if (dep.startsWith(`${to}/`) && !VOCABULARY.has(dep)) wrong.push(`${module} → ${dep}`);
  }
  return wrong;
}

test('the checks catch a made-up circle and a made-up backwards import', () => {
  const made = new Map<string, string[]>([
    ['server/a.ts', ['server/b.ts']],
    ['server/b.ts', ['server/a.ts']],
    ['config/c.ts', ['health/d.ts']],
    ['health/d.ts', []],
  ]);
  assert.deepEqual(circles(made), [['server/a.ts', 'server/b.ts']]);
  assert.deepEqual(backwards(made), ['config/c.ts → health/d.ts']);
  const sameLayer = new Map<string, string[]>([
    ['telemetry/e.ts', ['server/f.ts', 'telemetry/semconv.ts']],
    ['server/f.ts', ['telemetry/semconv.ts']],
  ]);
  assert.deepEqual(crossings(sameLayer, 'telemetry', 'server'), ['telemetry/e.ts → server/f.ts']);
  assert.deepEqual(crossings(sameLayer, 'server', 'telemetry'), []);
});

test('src/ has no import circle, type imports included', () => {
  const graph = importGraph();
  assert.ok(graph.size > 50 && (graph.get('sidecar.ts')?.length ?? 0) > 10, 'the graph was read (sidecar.ts imports the modules it wires)');
  assert.deepEqual(circles(graph), []);
});

test('imports go one way: vocabulary → config → probes, policy → health → notify, persist → telemetry, server → wiring', () => {
  const graph = importGraph();
  assert.deepEqual(backwards(graph), []);
  // the vocabulary is names only: it imports nothing of ours
  for (const module of VOCABULARY) assert.deepEqual(graph.get(module), [], `${module} imports nothing from src/`);
  // only the wiring knows the Sidecar
  const knowsSidecar = [...graph].filter(([, deps]) => deps.includes('sidecar.ts')).map(([m]) => m);
  for (const module of knowsSidecar) assert.equal(layerOf(module), WIRING, `${module} imports the Sidecar`);
});

test('server/ and telemetry/ do not import each other: the wiring connects what telemetry renders and records to the ports the server declares', () => {
  // server/metrics-route.ts MetricsRenderer (telemetry/metrics.ts PrometheusRenderer) and server/app.ts
  // RequestMetrics (telemetry/server-metrics.ts HttpServerMetrics) are matched by shape where sidecar.ts passes them on
  const graph = importGraph();
  assert.deepEqual(crossings(graph, 'telemetry', 'server'), []);
  assert.deepEqual(crossings(graph, 'server', 'telemetry'), []);
});
