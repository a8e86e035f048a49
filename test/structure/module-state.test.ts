/**
 * No module-level mutable state (issue 15): state belongs to an instance owned
 * by whoever creates it (the Sidecar, the telemetry bootstrap, a probe) and is
 * handed to the code that needs it, so two of them in one process (tests, a
 * reload) cannot see each other's. A top-level declaration in src/ is flagged
 * when it is
 *
 *  - a `let` or `var` (a binding that can be re-pointed), or
 *  - a `const` made with `new Map(`, `new Set(`, `new WeakMap(`, `new WeakSet(`
 *    (a collection that can be filled), unless the allow-list below names it
 *    with the reason it is a lookup table nobody changes.
 *
 * Top-level `const` arrays and object literals are not flagged: src/ uses them
 * as tables of names (`as const`, Readonly<Record>); the check would need the
 * type checker to tell a mutated one, and review catches those.
 *
 * The declarations are read with the TypeScript compiler's parser, not a
 * regex. The rule is first shown to catch made-up violations.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/paths';

const SRC = join(ROOT, 'src');

/**
 * The only top-level mutable bindings allowed, `module:name` → why.
 */
const ALLOWED: Readonly<Record<string, string>> = {
  // the SDK bootstrap: the OTel API's providers are process-global by design (metrics/trace/logs
  // .setGlobal*), so "telemetry already started" is a process fact; shutdown() clears it
  'telemetry/sdk.ts:active': 'the SDK bootstrap registers the global providers once per process',
  // immutable lookup tables: built once from constants at load, only read afterwards
  'probes/registry.ts:byKind': 'kind → ProbeKind, built from the PROBE_KINDS list, only read',
  'errors.ts:NETWORK_CODES': 'a constant set of errno codes, only read',
  'server/badge-svg.ts:NARROW': 'a constant set of narrow glyphs, only read',
  'server/badge-svg.ts:WIDE': 'a constant set of wide glyphs, only read',
  'server/probes.ts:ALLOWED_PARAMS': 'a constant set of query parameters, only read',
  'server/ratelimit.ts:UNLIMITED_PATHS': 'a constant set of paths, only read',
  'server/ratelimit.ts:STATUS_ASSET_PATHS': 'a constant set of paths, only read',
  'telemetry/server-metrics.ts:KNOWN_METHODS': 'a constant set of HTTP methods, only read',
};

const COLLECTIONS = new Set(['Map', 'Set', 'WeakMap', 'WeakSet']);

/** `module:name — why` for each top-level declaration of `text` the rule flags */
function moduleState(module: string, text: string): string[] {
  const file = ts.createSourceFile(module, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  for (const statement of file.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    const list = statement.declarationList;
    const constant = (list.flags & ts.NodeFlags.Const) !== 0;
    for (const declaration of list.declarations) {
      const names = bindingNames(declaration.name);
      const line = file.getLineAndCharacterOfPosition(declaration.getStart(file)).line + 1;
      let init = declaration.initializer;
      while (init && (ts.isAsExpression(init) || ts.isSatisfiesExpression(init) || ts.isParenthesizedExpression(init))) init = init.expression;
      const why = !constant
        ? `top-level ${(list.flags & ts.NodeFlags.Let) !== 0 ? 'let' : 'var'}`
        : init && ts.isNewExpression(init) && ts.isIdentifier(init.expression) && COLLECTIONS.has(init.expression.text)
          ? `top-level const new ${init.expression.text}(…)`
          : undefined;
      if (why) for (const name of names) found.push(`${module}:${name} (line ${line}) — ${why}`);
    }
  }
  return found;
}

function bindingNames(name: ts.BindingName): string[] {
  if (ts.isIdentifier(name)) return [name.text];
  return name.elements.flatMap((element) => (ts.isOmittedExpression(element) ? [] : bindingNames(element.name)));
}

const keyOf = (finding: string) => finding.slice(0, finding.indexOf(' ('));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function srcModuleState(): string[] {
  return sourceFiles(SRC).flatMap((file) => moduleState(relative(SRC, file).split('\\').join('/'), readFileSync(file, 'utf8')));
}

test('the rule catches made-up module state: let, var, a const Map/Set/WeakMap; not constants or state inside a class or function', () => {
  const made = [
    'let count = 0;',
    'var legacy: string | undefined;',
    'export let [first, { second }] = [1, { second: 2 }];',
    'const cache = new Map<string, number>();',
    'const seen = new Set<string>() as Set<string>;',
    'const byObject = new WeakMap<object, string>();',
    // not flagged: constants, and state owned by an instance or a call
    "const NAMES = ['a', 'b'] as const;",
    'const LIMIT = 3;',
    'const when = new Date(0);',
    'export class Owner { private readonly cache = new Map<string, number>(); private n = 0; }',
    'export function make() { let n = 0; const seen = new Set<string>(); return () => seen.add(String(n++)); }',
  ].join('\n');
  assert.deepEqual(moduleState('made/up.ts', made), [
    'made/up.ts:count (line 1) — top-level let',
    'made/up.ts:legacy (line 2) — top-level var',
    'made/up.ts:first (line 3) — top-level let',
    'made/up.ts:second (line 3) — top-level let',
    'made/up.ts:cache (line 4) — top-level const new Map(…)',
    'made/up.ts:seen (line 5) — top-level const new Set(…)',
    'made/up.ts:byObject (line 6) — top-level const new WeakMap(…)',
  ]);
});

test('src/ has no module-level mutable state outside the SDK bootstrap and the commented allow-list', () => {
  const found = srcModuleState();
  assert.ok(found.some((f) => f.startsWith('telemetry/sdk.ts:active ')), 'the scan reads src/ (it finds the SDK bootstrap)');
  const unexpected = found.filter((f) => !(keyOf(f) in ALLOWED));
  assert.deepEqual(unexpected, []);
});

test('the allow-list names only what is still there', () => {
  const keys = new Set(srcModuleState().map(keyOf));
  assert.deepEqual(
    Object.keys(ALLOWED).filter((key) => !keys.has(key)),
    [],
    'an entry whose declaration is gone (or became an instance field) leaves the list',
  );
});
