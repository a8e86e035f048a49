/**
 * Every instrument is created in one place from an injected Meter (issue 15):
 *
 *  - telemetry/instruments.ts is the only module that creates instruments
 *    (`createCounter(`, `createHistogram(`, `createUpDownCounter(`,
 *    `createGauge(`, `createObservable…(`), from the Meter it is given;
 *  - telemetry/sdk.ts, the SDK bootstrap, is the only module that takes a
 *    Meter or a MeterProvider from the API (`getMeter(`, `getMeterProvider(`,
 *    `setGlobalMeterProvider(`) and hands the Meter to instruments.ts;
 *  - everything else records through the recorders it is handed (probes/,
 *    notify/, config/reload.ts declare the ports they need).
 *
 * Calls are found with the TypeScript compiler's parser (a comment or a
 * string naming them is not a call). The rule is first shown to catch
 * made-up violations.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { ROOT } from '../helpers/paths';

const SRC = join(ROOT, 'src');

/** the module allowed to make each kind of call */
const CREATES_INSTRUMENTS = 'telemetry/instruments.ts';
const TAKES_METER = 'telemetry/sdk.ts';

const CREATE = /^create(Counter|Histogram|UpDownCounter|Gauge|Observable\w*)$/;
const TAKE = /^(getMeter|getMeterProvider|setGlobalMeterProvider)$/;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** `module:line name()` for each call of `text` that only the instruments module or the bootstrap may make */
function misplacedCalls(module: string, text: string): string[] {
  const file = ts.createSourceFile(module, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : undefined;
      const allowed = name === undefined ? true : CREATE.test(name) ? module === CREATES_INSTRUMENTS : TAKE.test(name) ? module === TAKES_METER : true;
      if (!allowed) found.push(`${module}:${file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1} ${name}()`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

test('the rule catches made-up violations (and passes what is allowed)', () => {
  const made = [
    "import { metrics } from '@opentelemetry/api';\nconst meter = metrics.getMeter('x');\n",
    'export function f(meter) { return meter.createCounter("c"); }\n',
    'export const g = (m) => m.createObservableUpDownCounter("g", {});\n',
    "const p = metrics.getMeterProvider();\n",
    'const { getMeter } = metrics;\nconst m = getMeter("x");\n',
  ];
  assert.deepEqual(misplacedCalls('probes/x.ts', made[0]!), ['probes/x.ts:2 getMeter()']);
  assert.deepEqual(misplacedCalls('notify/x.ts', made[1]!), ['notify/x.ts:1 createCounter()']);
  assert.deepEqual(misplacedCalls('telemetry/metrics.ts', made[2]!), ['telemetry/metrics.ts:1 createObservableUpDownCounter()']);
  assert.deepEqual(misplacedCalls('config/reload.ts', made[3]!), ['config/reload.ts:1 getMeterProvider()']);
  assert.deepEqual(misplacedCalls('telemetry/slo-metrics.ts', made[4]!), ['telemetry/slo-metrics.ts:2 getMeter()']);
  // the bootstrap may take a Meter but not create instruments; the instruments module the other way round
  assert.deepEqual(misplacedCalls(TAKES_METER, made[0]!), []);
  assert.deepEqual(misplacedCalls(TAKES_METER, made[1]!), ['telemetry/sdk.ts:1 createCounter()']);
  assert.deepEqual(misplacedCalls(CREATES_INSTRUMENTS, made[1]!), []);
  assert.deepEqual(misplacedCalls(CREATES_INSTRUMENTS, made[0]!), ['telemetry/instruments.ts:2 getMeter()']);
  // words in comments and strings are not calls
  assert.deepEqual(misplacedCalls('probes/x.ts', '// meter.createCounter(x)\nconst s = "metrics.getMeter(SCOPE)";\n'), []);
});

test('instruments are created only in telemetry/instruments.ts, and a Meter is taken only by telemetry/sdk.ts', () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 50, `src/ has its modules (${files.length} found)`);
  const found = files.flatMap((file) => misplacedCalls(relative(SRC, file).split('\\').join('/'), readFileSync(file, 'utf8')));
  assert.deepEqual(found, [], `move instrument creation into ${CREATES_INSTRUMENTS} and hand the module a recorder:\n${found.join('\n')}`);
  // and both modules do what they are there for
  assert.ok(misplacedCalls(TAKES_METER, readFileSync(join(SRC, CREATES_INSTRUMENTS), 'utf8')).length > 0, 'instruments.ts creates the instruments');
  assert.ok(misplacedCalls(CREATES_INSTRUMENTS, readFileSync(join(SRC, TAKES_METER), 'utf8')).length > 0, 'sdk.ts takes the Meter');
});
